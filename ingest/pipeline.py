"""``run_ingest``: corpus files → chunks → embeddings → a new Chroma generation, incrementally.

The index mirrors exactly the files under ``paths``: a chunk whose id and fingerprint are already
stored is copied with its stored embedding, a new or changed one is embedded, a chunk of a deleted
file goes away. Nothing changed → nothing is written and the generation stays. A file that fails
to load keeps the chunks of its last good version (reported as a warning), so a typo in front
matter never silently drops a document from the index. One writer at a time: a file lock in
``data_dir``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ingest.chunking import chunk_document, embedding_text, sections
from ingest.embeddings import Embedder
from ingest.errors import IngestLockedError
from ingest.loaders import DEFAULT_MAX_BYTES, load_corpus
from ingest.model import Chunk, Document, IngestReport, StoreConfig
from ingest.statements import StatementStore, statements_for_chunk
from ingest.store import Index, chunk_fingerprint, open_index

__all__ = ["format_summary", "run_ingest"]

_EMBED_BATCH = 64


def _section_at(body: str, offset: int) -> str:
    for path, start, end in sections(body):
        if start <= offset <= end:
            return " > ".join(path) or "(before the first heading)"
    return ""


def _limit_warnings(docs: Sequence[Document]) -> list[str]:
    """Doses in the corpus that no limit row of the guard admits for any of the document's drugs
    and indications. Optional and tolerant: silent when guardrails does not provide the table."""
    try:
        from guardrails import load_limits, parse_quantities
    except ImportError:
        return []
    try:
        table: Any = load_limits()
        limited = set(table.drugs)
    except Exception as exc:  # the guard is another package: never let it break an ingest
        return [f"dose limits not checked: {type(exc).__name__}: {exc}"]
    warnings: list[str] = []
    for doc in docs:
        drugs = [d for d in doc.drugs if d in limited]
        if not drugs:
            continue
        indications: tuple[str | None, ...] = doc.indications or (None,)
        try:
            for q in parse_quantities(doc.body):
                if q.kind != "dose":
                    continue
                verdicts = [table.check(d, q, ind) for d in drugs for ind in indications]
                if not any(ok for ok, _ in verdicts):
                    line = doc.body.count("\n", 0, q.span[0]) + 1
                    # Drug and section too: an imported label's dose must be findable by name.
                    where = _section_at(doc.body, q.span[0])
                    warnings.append(
                        f"{doc.path} (body line {line}, section '{where}'): "
                        f"{'/'.join(drugs)} '{q.text}' {verdicts[0][1]}"
                    )
        except Exception as exc:
            warnings.append(f"{doc.path}: dose limits not checked ({type(exc).__name__}: {exc})")
    return warnings


def _embed(
    embedder: Embedder, chunks: Sequence[Chunk], progress: bool
) -> list[tuple[Chunk, list[float]]]:
    from tqdm import tqdm

    show = progress and sys.stderr.isatty()
    pairs: list[tuple[Chunk, list[float]]] = []
    with tqdm(total=len(chunks), unit="chunk", desc="embedding", disable=not show) as bar:
        for i in range(0, len(chunks), _EMBED_BATCH):
            group = chunks[i : i + _EMBED_BATCH]
            vectors = embedder.encode([embedding_text(c) for c in group])
            pairs.extend(zip(group, vectors, strict=True))
            bar.update(len(group))
    return pairs


def run_ingest(
    paths: Iterable[str | Path],
    config: StoreConfig,
    embedder: Embedder,
    *,
    chunk_size: int,
    data_dir: str | Path,
    progress: bool = True,
    lock_timeout_s: float = 30.0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    labels: Iterable[str | Path] = (),
) -> IngestReport:
    """``labels``: FDA SPL label files, folders or zips indexed together with ``paths``. The
    index mirrors ``paths`` plus ``labels``: a label left out of a later run is removed."""
    started = time.perf_counter()
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    lock_path = data / "ingest.lock"
    lock = FileLock(str(lock_path), timeout=lock_timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise IngestLockedError(
            f"another ingest is running (lock {lock_path} still held after {lock_timeout_s:g} s); "
            "wait for it to finish and run again"
        ) from None
    try:
        return _ingest_locked(
            list(paths),
            config,
            embedder,
            chunk_size,
            progress,
            max_bytes,
            started,
            list(labels),
            data,
        )
    finally:
        lock.release()


def _ingest_locked(
    paths: list[str | Path],
    config: StoreConfig,
    embedder: Embedder,
    chunk_size: int,
    progress: bool,
    max_bytes: int,
    started: float,
    labels: list[str | Path] | None = None,
    data_dir: str | Path = "data",
) -> IngestReport:
    docs, skipped = load_corpus(paths, max_bytes=max_bytes, labels=labels or ())
    chunks = [c for d in docs for c in chunk_document(d, chunk_size)]
    warnings = _limit_warnings(docs)
    index: Index = open_index(config, embedder)
    stored = index.fingerprints()

    new_ids = {c.id for c in chunks}
    keep: list[str] = []
    to_write: list[Chunk] = []
    added = updated = 0
    for c in chunks:
        prev = stored.get(c.id)
        if prev is None:
            added += 1
            to_write.append(c)
        elif prev[0] != chunk_fingerprint(c):
            updated += 1
            to_write.append(c)
        else:
            keep.append(c.id)

    loaded_paths = {d.path for d in docs}
    skipped_paths = {s.path for s in skipped} - loaded_paths
    held: dict[str, list[str]] = {}
    for cid, (_fp, path) in stored.items():
        if cid not in new_ids and path in skipped_paths:
            held.setdefault(path, []).append(cid)
    for path, ids in sorted(held.items()):
        warnings.append(f"{path}: kept {len(ids)} chunk(s) of its last good version (file skipped)")
    kept_from_skipped = [cid for ids in held.values() for cid in ids]
    removed = len(stored) - len(keep) - updated - len(kept_from_skipped)

    # Statements before the flip: every chunk the new generation can return must have its
    # rows. They are read in a thread while the model embeds (mostly outside the GIL).
    store = StatementStore.in_dir(data_dir)
    fingerprints = {c.id: chunk_fingerprint(c) for c in chunks}
    need = store.missing(fingerprints.values())
    with ThreadPoolExecutor(max_workers=1) as pool:
        extracted = pool.submit(
            lambda: [
                (fingerprints[c.id], statements_for_chunk(c))
                for c in chunks
                if fingerprints[c.id] in need
            ]  # fmt: skip
        )
        pairs = _embed(embedder, to_write, progress) if (added or updated or removed) else []
        store.add(extracted.result())
    generation = index.generation
    if added or updated or removed:
        generation = index.write_generation(
            keep + kept_from_skipped,
            pairs,
            documents=len(docs) + len(held),
        )
    live = set(fingerprints.values()) | {stored[cid][0] for cid in kept_from_skipped}
    if added or updated or removed or need or store.generation() != str(generation):
        store.set_live(generation, live)
    return IngestReport(
        files_seen=len(docs) + len(skipped),
        chunks_added=added,
        chunks_updated=updated,
        chunks_removed=removed,
        chunks_unchanged=len(keep),
        skipped=tuple(skipped),
        seconds=time.perf_counter() - started,
        generation=str(generation),
        warnings=tuple(warnings),
    )


def format_summary(report: IngestReport) -> str:
    """The one line printed at the end of an ingest."""
    return (
        f"ingest: {report.files_seen} files, "
        f"{report.chunks_added} chunks added, {report.chunks_updated} updated, "
        f"{report.chunks_removed} removed, {report.chunks_unchanged} unchanged, "
        f"{len(report.skipped)} skipped, {report.seconds:.1f} s, "
        f"{report.chunks_per_second:.1f} chunks/s, generation {report.generation}"
    )
