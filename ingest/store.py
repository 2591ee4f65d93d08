"""The Chroma index: embedded (PersistentClient) or server (HttpClient), swapped atomically.

Each ingest that changes something writes a complete new collection ``{name}__g{n}`` (copying
unchanged chunks with their stored embeddings) and only then flips a pointer: the metadata of a
tiny ``{name}__pointer`` collection, a single write in both modes. A reader always follows the
pointer, so a crash or ``kill -9`` mid-ingest leaves the previous generation intact; the next
writer deletes the half-built one. Old generations are deleted after the flip; a reader still on
one re-reads the pointer and retries once.

A reader that holds a generation in memory (the exact search of a small store) never queries
Chroma, so no failed query tells it of a flip: it calls :meth:`Index.follow` before each search.
In embedded mode the writer also replaces a small marker file beside the store after each flip,
so ``follow`` costs one ``stat`` (a pointer read costs ~0.4 ms); without the marker (a server,
or a store written before the marker existed) it reads the pointer.
"""

from __future__ import annotations

import os

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import datetime as dt  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterable, Sequence  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import chromadb  # noqa: E402
import chromadb.config  # noqa: E402
from chromadb.errors import ChromaError, InternalError, NotFoundError  # noqa: E402

from ingest.chunking import embedding_text  # noqa: E402
from ingest.embeddings import Embedder  # noqa: E402
from ingest.errors import IngestError, StoreUnavailableError  # noqa: E402
from ingest.model import Chunk, SourceRef, StoreConfig  # noqa: E402

__all__ = [
    "Index",
    "chunk_fingerprint",
    "chunk_from_record",
    "chunk_to_metadata",
    "open_index",
]

# Bump when the embedded text or the metadata layout changes: every chunk then re-embeds once.
_LAYOUT_VERSION = "1"
_BATCH = 256
_READ_PAGE = 5000
T = TypeVar("T")

# Test seam: called with a stage name ("batch", "before_flip") while a generation is written,
# so a test can kill the writer at a known point. None in normal runs.
_test_hook: Callable[[str], None] | None = None


def _hook(stage: str) -> None:
    if _test_hook is not None:
        _test_hook(stage)


def _client_settings() -> chromadb.config.Settings:
    return chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)


# --- Chunk <-> Chroma record ---------------------------------------------------------------


def _base_metadata(chunk: Chunk) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "section": chunk.section,
        "section_path": json.dumps(list(chunk.section_path)),
        "start": chunk.start,
        "end": chunk.end,
        "content_hash": chunk.content_hash,
        "source_ids": json.dumps(list(chunk.source_ids)),
        "sources": json.dumps(
            [
                {
                    "id": s.id,
                    "reference": s.reference,
                    "kind": s.kind,
                    "section": s.section,
                    "url": s.url,
                }
                for s in chunk.sources
            ]
        ),
        "drugs_json": json.dumps(list(chunk.drugs)),
        "indications": json.dumps(list(chunk.indications)),
        "audience": chunk.audience,
        "review_status": chunk.review_status,
        "last_reviewed": chunk.last_reviewed,
        "path": chunk.path,
        "doc_kind": chunk.doc_kind,
    }
    if chunk.brand_names:
        # Only when present, so chunks without brands keep their fingerprints (no re-embed).
        meta["brand_names"] = json.dumps(list(chunk.brand_names))
    return meta


def chunk_fingerprint(chunk: Chunk) -> str:
    """Changes whenever anything stored for the chunk would change (text, metadata, layout)."""
    payload = json.dumps(_base_metadata(chunk), sort_keys=True) + "\x1f" + embedding_text(chunk)
    return hashlib.sha256((_LAYOUT_VERSION + payload).encode("utf-8")).hexdigest()[:32]


def chunk_to_metadata(chunk: Chunk) -> dict[str, Any]:
    """Chroma metadata values must be scalars (or non-empty scalar lists): tuples are JSON-encoded;
    ``drugs`` is also stored as a plain list so ``where={"drugs": {"$contains": name}}`` filters."""
    meta = _base_metadata(chunk)
    meta["fingerprint"] = chunk_fingerprint(chunk)
    if chunk.drugs:
        meta["drugs"] = list(chunk.drugs)
    return meta


def _tuple(meta: dict[str, Any], key: str) -> tuple[str, ...]:
    raw = meta.get(key)
    return tuple(json.loads(raw)) if isinstance(raw, str) and raw else ()


def chunk_from_record(chunk_id: str, text: str | None, meta: dict[str, Any] | None) -> Chunk:
    """Rebuild a :class:`Chunk` from what Chroma (or ``langchain_chroma``) returns."""
    m = dict(meta or {})
    sources = tuple(SourceRef(**s) for s in json.loads(m.get("sources") or "[]"))
    return Chunk(
        id=chunk_id,
        doc_id=str(m.get("doc_id", "")),
        title=str(m.get("title", "")),
        section_path=_tuple(m, "section_path"),
        text=text or "",
        start=int(m.get("start", 0)),
        end=int(m.get("end", 0)),
        content_hash=str(m.get("content_hash", "")),
        source_ids=_tuple(m, "source_ids"),
        sources=sources,
        drugs=_tuple(m, "drugs_json"),
        indications=_tuple(m, "indications"),
        audience=str(m.get("audience", "clinician")),
        review_status=str(m.get("review_status", "draft")),
        last_reviewed=str(m.get("last_reviewed", "")),
        path=str(m.get("path", "")),
        doc_kind=str(m.get("doc_kind", "article")),
        brand_names=_tuple(m, "brand_names"),
    )


def _batches(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- the index -----------------------------------------------------------------------------


class Index:
    """A read view of the active generation, plus the writer operations the pipeline uses."""

    def __init__(self, client: Any, config: StoreConfig, embedder: Embedder) -> None:
        self._client = client
        self.config = config
        self.embedder = embedder
        self._ef = embedder.as_chroma()
        self._gen_re = re.compile(rf"^{re.escape(config.collection)}__g(\d+)$")
        self._pointer_name = f"{config.collection}__pointer"
        self._pointer: dict[str, Any] = {}
        self._collection: Any = None
        self._size: tuple[str, int] | None = None  # (collection name, chunk count)
        self._marker = (
            os.path.join(config.path, f"dosewise-{config.collection}.generation")
            if config.mode == "embedded"
            else None
        )
        self._seen: tuple[int, int, int] | None = None  # the marker as the last refresh saw it
        self.refresh()

    # -- reading --

    @property
    def generation(self) -> int:
        return int(self._pointer.get("generation", 0))

    @property
    def collection_name(self) -> str | None:
        name = self._pointer.get("active")
        return str(name) if name else None

    def refresh(self) -> None:
        """Re-read the pointer (another process may have flipped it)."""
        # The marker is read before the pointer: a flip between the two shows up next time.
        self._seen = self._marker_stamp()
        fields = self._pointer_fields()
        collection = None
        name = fields.get("active")
        if name:
            try:
                collection = self._client.get_collection(str(name), embedding_function=self._ef)
            except (NotFoundError, ValueError):
                # Pointer names a collection someone deleted by hand: read as empty; the next
                # ingest rebuilds everything.
                collection = None
        # Assigned together, after the reads: a concurrent reader sees the old pair or the new.
        self._pointer, self._collection = fields, collection

    def follow(self) -> bool:
        """Re-read the pointer if a writer may have flipped it since the last read; True when
        the active generation changed. One ``stat`` of the marker file when it is unchanged."""
        stamp = self._marker_stamp()
        if stamp is not None and stamp == self._seen:
            return False
        before = self.collection_name
        self._seen = stamp  # read before the pointer: a flip after this read shows next time
        if self._pointer_fields().get("active") == before:
            return False  # one read, not two: a server answers each with a round trip
        self.refresh()
        return self.collection_name != before

    def _pointer_fields(self) -> dict[str, Any]:
        """The pointer's metadata as stored now ({} when there is no pointer yet)."""
        try:
            pointer = self._client.get_collection(self._pointer_name, embedding_function=self._ef)
        except (NotFoundError, ValueError):
            return {}
        return dict(pointer.metadata or {})

    def _marker_stamp(self) -> tuple[int, int, int] | None:
        if self._marker is None:
            return None
        try:
            st = os.stat(self._marker)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _mark_flip(self, name: str) -> None:
        """Replace the marker (a new inode each time), so readers' ``follow`` sees the flip."""
        if self._marker is None:
            return
        tmp = f"{self._marker}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(name)
            os.replace(tmp, self._marker)
        except OSError:
            # Readers then find no marker (or a stale one) and read the pointer instead: a
            # missing marker costs speed, not correctness; a stale one is removed.
            for path in (tmp, self._marker):
                try:
                    os.remove(path)
                except OSError:
                    pass

    def _read(self, fn: Callable[[Any], T], empty: T) -> T:
        for attempt in (0, 1):
            if self._collection is None:
                return empty
            used = self._collection.name
            try:
                return fn(self._collection)
            except (NotFoundError, ValueError, InternalError) as exc:
                # Our generation was replaced and deleted under us: follow the pointer once.
                # A delete that lands mid-query surfaces as InternalError ("Missing metadata
                # segment"); that one is retried only if the pointer really moved, so a genuine
                # internal error is never hidden.
                if attempt:
                    raise
                self.refresh()
                if isinstance(exc, InternalError) and self.collection_name == used:
                    raise
        return empty

    def count(self) -> int:
        return self._read(self._count_of, 0)

    def _count_of(self, col: Any) -> int:
        # A generation never changes once the pointer names it, so its size is read once:
        # col.count() costs ~14 ms per query at 100k chunks.
        if self._size is None or self._size[0] != col.name:
            self._size = (col.name, int(col.count()))
        return self._size[1]

    def _nearest(
        self,
        col: Any,
        embedding: Sequence[float],
        k: int,
        where: dict[str, Any] | None,
        include: list[str],
    ) -> Any:
        n = self._count_of(col)
        if n == 0 or k <= 0:
            return None
        return col.query(
            query_embeddings=[list(embedding)],
            n_results=min(k, n),
            where=where or None,
            include=include,
        )

    def query(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[Chunk, float]]:
        """Nearest chunks with their cosine distance (0 = identical), best first."""

        def run(col: Any) -> list[tuple[Chunk, float]]:
            res = self._nearest(col, embedding, k, where, ["documents", "metadatas", "distances"])
            if res is None:
                return []
            return [
                (chunk_from_record(i, d, m), float(dist))
                for i, d, m, dist in zip(
                    res["ids"][0],
                    res["documents"][0],
                    res["metadatas"][0],
                    res["distances"][0],
                    strict=True,
                )
            ]

        return self._read(run, [])

    def query_ids(
        self, embedding: Sequence[float], k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """Like :meth:`query`, ids only: reading the hits' text and metadata is most of a
        query's cost (9 of 12 ms for 30 hits), wasted when the caller holds the chunks."""

        def run(col: Any) -> list[tuple[str, float]]:
            res = self._nearest(col, embedding, k, where, ["distances"])
            if res is None:
                return []
            return [
                (str(i), float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)
            ]

        return self._read(run, [])

    def vectors(self, limit: int) -> tuple[list[str], Any] | None:
        """Every chunk id of the active generation with its stored embedding (a float32 matrix,
        rows L2-normalised, as the cosine space compares them), or None when the generation
        holds more than ``limit`` chunks: a small store is searched exactly in memory, which
        costs a tenth of a Chroma query; a large one stays with HNSW."""
        import numpy as np

        def run(col: Any) -> tuple[list[str], Any] | None:
            n = self._count_of(col)
            if n == 0 or n > limit:
                return None
            ids: list[str] = []
            rows: list[Any] = []
            offset = 0
            while True:
                res = col.get(include=["embeddings"], limit=_READ_PAGE, offset=offset)
                if not res["ids"]:
                    break
                ids.extend(str(i) for i in res["ids"])
                rows.append(np.asarray(res["embeddings"], dtype=np.float32))
                offset += len(res["ids"])
            if len(ids) != n:
                return None  # the generation changed under us: stay with HNSW
            matrix = np.concatenate(rows) if rows else np.zeros((0, 0), np.float32)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            matrix /= np.where(norms > 0, norms, 1.0)
            return ids, matrix

        return self._read(run, None)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; unknown ids are left out."""
        if not ids:
            return []

        def run(col: Any) -> list[Chunk]:
            res = col.get(ids=list(ids), include=["documents", "metadatas"])
            found = {
                i: chunk_from_record(i, d, m)
                for i, d, m in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
            }
            return [found[i] for i in ids if i in found]

        return self._read(run, [])

    def _records(self, include: list[str]) -> Iterable[tuple[str, str | None, dict[str, Any]]]:
        col = self._collection
        if col is None:
            return
        offset = 0
        while True:
            # Each get() has a fixed cost of ~250 ms at 100k chunks whatever its size, so read
            # in the largest pages Chroma accepts.
            res = col.get(include=include, limit=_READ_PAGE, offset=offset)
            if not res["ids"]:
                return
            docs = res.get("documents") or [None] * len(res["ids"])
            for i, d, m in zip(res["ids"], docs, res["metadatas"], strict=True):
                yield i, d, dict(m or {})
            offset += len(res["ids"])

    def all_chunks(self) -> list[Chunk]:
        empty: list[Chunk] = []
        chunks = self._read(
            lambda _c: [
                chunk_from_record(i, d, m) for i, d, m in self._records(["documents", "metadatas"])
            ],
            empty,
        )
        return sorted(chunks, key=lambda c: (c.doc_id, c.start))

    def fingerprints(self) -> dict[str, tuple[str, str]]:
        """``{chunk_id: (fingerprint, path)}`` of the active generation (for the incremental diff)."""
        return self._read(
            lambda _c: {
                i: (str(m.get("fingerprint", "")), str(m.get("path", "")))
                for i, _d, m in self._records(["metadatas"])
            },
            {},
        )

    def stats(self) -> dict[str, Any]:
        per_drug_chunks: Counter[str] = Counter()
        per_drug_docs: dict[str, set[str]] = {}
        docs: set[str] = set()
        chunks = 0
        none: list[tuple[str, str | None, dict[str, Any]]] = []
        for _i, _d, m in self._read(lambda _c: list(self._records(["metadatas"])), none):
            chunks += 1
            doc = str(m.get("doc_id", ""))
            docs.add(doc)
            for drug in _tuple(m, "drugs_json"):
                per_drug_chunks[drug] += 1
                per_drug_docs.setdefault(drug, set()).add(doc)
        updated_at = str(self._pointer.get("updated_at", ""))
        age_s: float | None = None
        if updated_at:
            age_s = (
                dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(updated_at)
            ).total_seconds()
        return {
            "mode": self.config.mode,
            "collection": self.collection_name,
            "generation": self.generation,
            "documents": len(docs),
            "chunks": chunks,
            "per_drug": {
                d: {"documents": len(per_drug_docs[d]), "chunks": per_drug_chunks[d]}
                for d in sorted(per_drug_chunks)
            },
            "updated_at": updated_at or None,
            "age_s": age_s,
        }

    def langchain_vectorstore(self) -> Any:
        """A ``langchain_chroma.Chroma`` on the active generation, embedding with our model."""
        from langchain_chroma import Chroma

        if not self.collection_name:
            raise IngestError("the index is empty: run `dosewise ingest` first")
        return Chroma(
            client=self._client,
            collection_name=self.collection_name,
            embedding_function=self.embedder.as_langchain(),
            create_collection_if_not_exists=False,
        )

    # -- writing (the pipeline holds the file lock around these) --

    def _generation_collections(self) -> dict[int, str]:
        found: dict[int, str] = {}
        for col in self._client.list_collections():
            name = col if isinstance(col, str) else col.name
            m = self._gen_re.match(name)
            if m:
                found[int(m.group(1))] = name
        return found

    def _delete(self, name: str) -> None:
        try:
            self._client.delete_collection(name)
        except (NotFoundError, ValueError):
            pass

    def write_generation(
        self,
        keep_ids: Sequence[str],
        new: Sequence[tuple[Chunk, Sequence[float]]],
        *,
        documents: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Build generation n+1 from ``keep_ids`` (copied with their stored embeddings) plus
        ``new`` (chunk, embedding) pairs, flip the pointer to it and drop older generations."""
        self.refresh()
        active = self.collection_name
        existing = self._generation_collections()
        for name in existing.values():
            if name != active:  # left behind by a crashed writer
                self._delete(name)
        number = max([self.generation, *existing]) + 1
        name = f"{self.config.collection}__g{number}"
        target = self._client.create_collection(
            name, embedding_function=self._ef, configuration={"hnsw": {"space": "cosine"}}
        )
        batch = max(1, min(_BATCH, int(self._client.get_max_batch_size())))
        if keep_ids:
            if self._collection is None:
                raise IngestError("cannot keep chunks: the index has no active generation")
            for ids in _batches(list(keep_ids), batch):
                res = self._collection.get(
                    ids=list(ids), include=["embeddings", "documents", "metadatas"]
                )
                if len(res["ids"]) != len(ids):
                    raise IngestError(
                        "the active generation changed while copying it; retry the ingest"
                    )
                target.add(
                    ids=res["ids"],
                    embeddings=res["embeddings"],
                    documents=res["documents"],
                    metadatas=res["metadatas"],
                )
                _hook("batch")
                if on_batch:
                    on_batch(0)
        for group in _batches(list(new), batch):
            target.add(
                ids=[c.id for c, _ in group],
                embeddings=[list(v) for _, v in group],
                documents=[c.text for c, _ in group],
                metadatas=[chunk_to_metadata(c) for c, _ in group],  # type: ignore[misc]
            )
            _hook("batch")
            if on_batch:
                on_batch(len(group))
        expected = len(keep_ids) + len(new)
        if int(target.count()) != expected:
            raise IngestError(
                f"generation {number} has {target.count()} chunks, expected {expected}; the previous "
                "index is still active"
            )
        _hook("before_flip")
        pointer = self._client.get_or_create_collection(
            self._pointer_name, embedding_function=self._ef
        )
        pointer.modify(
            metadata={
                "active": name,
                "generation": number,
                "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "chunks": expected,
                "documents": documents,
            }
        )
        self._mark_flip(name)
        if active and active != name:
            self._delete(active)
        self.refresh()
        return number


# --- opening -------------------------------------------------------------------------------


def _server_client(config: StoreConfig) -> Any:
    import httpx

    where = f"{config.host}:{config.port}"
    hint = (
        f"start it with `chroma run --path DIR --host {config.host} --port {config.port}` "
        "or use DOSEWISE_CHROMA_MODE=embedded"
    )
    deadline = time.monotonic() + config.timeout_s
    try:
        with socket.create_connection((config.host, config.port), timeout=config.timeout_s):
            pass
        remaining = max(0.5, deadline - time.monotonic())
        resp = httpx.get(f"http://{where}/api/v2/heartbeat", timeout=remaining)
        resp.raise_for_status()
    except (OSError, httpx.HTTPError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise StoreUnavailableError(
            f"Chroma server at {where} is not reachable within {config.timeout_s:g} s ({reason}); {hint}"
        ) from None
    try:
        client = chromadb.HttpClient(
            host=config.host, port=config.port, settings=_client_settings()
        )
    except (ChromaError, ValueError, httpx.HTTPError) as exc:
        raise StoreUnavailableError(f"cannot use the Chroma server at {where}: {exc}") from None
    # chromadb's HTTP session has no timeout at all; bound it so a stalled server cannot hang us.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:
        session.timeout = httpx.Timeout(max(60.0, config.timeout_s), connect=config.timeout_s)
    return client


def open_index(config: StoreConfig, embedder: Embedder) -> Index:
    """Open (never create) the index; an index never ingested is empty, generation 0."""
    if config.mode == "server":
        client = _server_client(config)
    elif config.mode == "embedded":
        try:
            os.makedirs(config.path, exist_ok=True)
            client = chromadb.PersistentClient(path=config.path, settings=_client_settings())
        except (OSError, ChromaError, ValueError, RuntimeError) as exc:
            raise StoreUnavailableError(
                f"cannot open the Chroma store at {config.path!r}: {exc}"
            ) from None
    else:
        raise StoreUnavailableError(
            f"unknown Chroma mode {config.mode!r} (use 'embedded' or 'server')"
        )
    return Index(client, config, embedder)
