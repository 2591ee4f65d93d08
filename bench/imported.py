"""``python -m bench.imported [--docs DIR] [--synthetic N] [--out FILE]``: ingest throughput on
imported documents (no front matter) and the cost of dose-statement extraction.

Reported, on one folder of text, HTML, PDF (and SPL XML) documents:

- loading: files read, drugs/indications/sections detected (docs/s; the drug lexicon's one-time
  load is timed apart);
- chunking (chunks/s);
- statement extraction: ``statements_for_chunk`` over every chunk, ms per chunk;
- end to end: ``run_ingest`` into a throw-away embedded store (docs/s, chunks/s), and the share
  of that time statement extraction takes.

``--docs DIR`` measures a folder you have (the dev set: ``python -m evals.byod_devset --out
/tmp/byod`` then ``--docs /tmp/byod/docs``); without it a synthetic folder of mixed formats is
written first (our own made-up protocols: nothing is read from ../shared). Numbers only, never
asserted: speed targets live in the results file. Writes bench/imported_results.json (``--out``);
``python -m bench`` runs the same section on a small synthetic folder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["imported_section", "main", "write_synthetic_folder"]

REPO = Path(__file__).resolve().parents[1]
SPL_FIXTURES = REPO / "tests" / "fixtures" / "spl"
FORMATS = ("txt", "html", "pdf")

# Real drug names (so the lexicon recognises them), made-up protocol text in our own words.
_DRUGS = (
    ("vancomycin", "25 mg/kg", "15 mg/kg every 12 hours", "4 g per day"),
    ("apixaban", "10 mg twice daily", "5 mg twice daily", "20 mg per day"),
    ("levetiracetam", "60 mg/kg", "500 mg twice daily", "4500 mg per day"),
    ("gentamicin", "7 mg/kg", "5 mg/kg once daily", "7 mg/kg per day"),
    ("enoxaparin", "1.5 mg/kg", "1 mg/kg every 12 hours", "180 mg per day"),
    ("metoprolol", "25 mg", "50 mg twice daily", "400 mg per day"),
)


def _protocol(i: int) -> tuple[str, str, list[tuple[str, list[str]]]]:
    drug, loading, maintenance, maximum = _DRUGS[i % len(_DRUGS)]
    title = f"{drug.capitalize()} protocol {i + 1}"
    sections = [
        ("BACKGROUND", [f"This ward protocol {i + 1} covers {drug} for adults admitted to the unit."]),
        ("DOSAGE AND ADMINISTRATION", [
            f"The first dose of {drug} is {loading}.",
            f"Maintenance is {maintenance}, adjusted to response.",
            f"Do not exceed {maximum}.",
        ]),
        ("RENAL IMPAIRMENT", [f"With creatinine clearance below 30 mL/min, give {drug} at half the usual dose."]),
        ("MONITORING", [f"Check kidney function every 48 hours while on {drug}."]),
    ]  # fmt: skip
    return drug, title, sections


def _write_pdf(path: Path, title: str, lines: Sequence[str]) -> None:
    from evals.byod_devset import write_pdf  # the dev set's PDF writer: one page here

    write_pdf(path, title, [lines])


def write_synthetic_folder(out: Path, n: int) -> dict[str, int]:
    """``n`` made-up protocols, in turn as text, HTML (the dosing as a table) and PDF (a figure
    wrapped before its unit), plus the repository's two invented SPL labels. Returns counts."""
    out.mkdir(parents=True, exist_ok=True)
    counts: Counter[str] = Counter()
    for i in range(n):
        drug, title, sections = _protocol(i)
        fmt = FORMATS[i % len(FORMATS)]
        path = out / f"{drug}-protocol-{i + 1}.{fmt}"
        if fmt == "txt":
            parts = [title, ""]
            for heading, texts in sections:
                parts += [heading, *texts, ""]
            path.write_text("\n".join(parts), encoding="utf-8")
        elif fmt == "html":
            body = []
            for heading, texts in sections:
                body.append(f"<h2>{html.escape(heading.title())}</h2>")
                if heading.startswith("DOSAGE"):
                    rows = "".join(
                        f"<tr><td>Step {j + 1}</td><td>{html.escape(t)}</td></tr>"
                        for j, t in enumerate(texts)
                    )
                    body.append(f"<table><tr><th>Step</th><th>Instruction</th></tr>{rows}</table>")
                else:
                    body += [f"<p>{html.escape(t)}</p>" for t in texts]
            path.write_text(
                f"<html><head><title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
                f"{''.join(body)}</body></html>",
                encoding="utf-8",
            )
        else:
            lines = [title, ""]
            for heading, texts in sections:
                lines.append(heading)
                for t in texts:
                    # The first number of a line is wrapped before its unit, as PDFs do.
                    head, sep, tail = t.partition(" mg")
                    lines += [head, f"mg{tail}"] if sep else [t]
                lines.append("")
            _write_pdf(path, title, lines)
        counts[fmt] += 1
    for label in sorted(SPL_FIXTURES.glob("*.xml")) if SPL_FIXTURES.is_dir() else []:
        shutil.copy(label, out / label.name)
        counts["xml"] += 1
    return dict(counts)


def _per_s(count: int, seconds: float) -> float | None:
    return round(count / seconds, 2) if seconds > 0 else None


def imported_section(
    embedder: Any,
    docs_dir: Path,
    work: Path,
    chunk_size: int = 900,
    *,
    collection: str = "imported",
) -> dict[str, Any]:
    """Time loading, chunking, statement extraction and a full ingest of ``docs_dir``."""
    from ingest.chunking import chunk_document
    from ingest.lexicon import default_lexicon
    from ingest.loaders import load_corpus
    from ingest.model import StoreConfig
    from ingest.pipeline import run_ingest
    from ingest.statements import statements_for_chunk

    t0 = time.perf_counter()
    # The lexicon (~107k names) loads once per process, on first use: timed apart from reading.
    default_lexicon().drugs_in("warm up with vancomycin")
    lexicon_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    docs, skipped = load_corpus([docs_dir])
    load_s = time.perf_counter() - t0
    kinds = Counter(d.doc_kind for d in docs)

    t0 = time.perf_counter()
    chunks = [c for d in docs for c in chunk_document(d, chunk_size)]
    chunk_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    per_role: Counter[str] = Counter()
    for c in chunks:
        for st in statements_for_chunk(c):
            per_role[str(getattr(st.role, "value", st.role))] += 1
    statements_s = time.perf_counter() - t0

    data = work / f"ingest-{collection}"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    config = StoreConfig(path=str(data / "chroma"), collection=collection)
    t0 = time.perf_counter()
    report = run_ingest(
        [docs_dir], config, embedder, chunk_size=chunk_size, data_dir=data, progress=False
    )
    ingest_s = time.perf_counter() - t0
    written = report.chunks_added + report.chunks_updated
    return {
        "docs_dir": str(docs_dir),
        "documents": len(docs),
        "documents_by_kind": dict(sorted(kinds.items())),
        "skipped": len(skipped),
        "documents_with_a_drug": sum(1 for d in docs if d.drugs),
        "chunks": len(chunks),
        "lexicon_load_s": round(lexicon_s, 3),
        "load_s": round(load_s, 3),
        "load_docs_per_s": _per_s(len(docs), load_s),
        "chunk_s": round(chunk_s, 3),
        "chunk_chunks_per_s": _per_s(len(chunks), chunk_s),
        "statements": sum(per_role.values()),
        "statements_per_role": dict(per_role.most_common()),
        "statement_extraction_s": round(statements_s, 3),
        "statement_ms_per_chunk": round(1000 * statements_s / len(chunks), 3) if chunks else None,
        "ingest_s": round(ingest_s, 2),
        "ingest_docs_per_s": _per_s(len(docs), ingest_s),
        "ingest_chunks_per_s": _per_s(written, ingest_s),
        "ingest_chunks_written": written,
        # Extraction runs once inside the ingest too (on the same chunks): its share of the time.
        "statement_share_of_ingest": round(statements_s / ingest_s, 4) if ingest_s > 0 else None,
    }


def table(section: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for the printed table (also used by ``python -m bench``'s report)."""
    if "documents" not in section:
        return []
    kinds = ", ".join(f"{n} {k}" for k, n in section["documents_by_kind"].items())
    share = section.get("statement_share_of_ingest")
    return [
        ("imported docs: documents (kinds) / chunks", f"{section['documents']} ({kinds}) / {section['chunks']}"),
        ("imported docs: load + detect", f"{section['load_s']:.2f} s = {section['load_docs_per_s']} docs/s "
                                        f"(+ lexicon once {section['lexicon_load_s']:.2f} s)"),
        ("imported docs: ingest end to end", f"{section['ingest_s']:.1f} s = {section['ingest_docs_per_s']} docs/s, "
                                             f"{section['ingest_chunks_per_s']} chunks/s"),
        ("imported docs: statement extraction", f"{section['statement_ms_per_chunk']} ms/chunk, "
                                                f"{section['statements']} statements, "
                                                f"{100 * share if share is not None else float('nan'):.1f} % of ingest"),
    ]  # fmt: skip


def run_imported_bench(
    docs: Path | None, synthetic: int, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    from ingest.embeddings import Embedder
    from settings import Settings

    settings = Settings()
    embedder = Embedder(settings.model_path)
    embedder.encode(["warm up"])
    folder = docs
    written: dict[str, int] = {}
    if folder is None:
        folder = work / "docs"
        log(f"writing {synthetic} synthetic documents to {folder}")
        written = write_synthetic_folder(folder, synthetic)
    log(f"ingesting {folder}")
    section = imported_section(embedder, folder, work, settings.chunk_size)
    section["source"] = "synthetic" if docs is None else "given folder"
    if written:
        section["synthetic_written"] = written
    return section


def main(argv: list[str] | None = None) -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(
        prog="python -m bench.imported",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--docs", type=Path, default=None, help="a folder of documents to ingest")
    parser.add_argument(
        "--synthetic", type=int, default=60, help="synthetic documents when no --docs"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "imported_results.json")
    args = parser.parse_args(argv)
    if args.docs is not None and not args.docs.is_dir():
        print(f"error: {args.docs} is not a folder", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="dosewise-imported-bench-"))
    t0 = time.perf_counter()
    try:
        section = run_imported_bench(
            args.docs,
            max(1, args.synthetic),
            work,
            log=lambda m: print(f"bench.imported: {m}", file=sys.stderr),
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = {
        "imported": section,
        "meta": {
            "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - t0, 1),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
            "command": "python -m bench.imported"
            + (f" --docs {args.docs}" if args.docs else f" --synthetic {args.synthetic}"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    width = max(len(k) for k, _ in table(section))
    for name, value in table(section):
        print(f"{name:<{width}}  {value}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
