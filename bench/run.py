"""``run_bench``: every section in one run, written to results.json (NaN → null)."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

__all__ = ["BenchOptions", "run_bench", "write_results"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SIZES = (1000, 10_000, 100_000)
QUICK_SIZES = (200, 500)


@dataclass(frozen=True)
class BenchOptions:
    model_path: str
    corpus_dir: Path
    out: Path = REPO / "bench" / "results.json"
    sizes: tuple[int, ...] = DEFAULT_SIZES
    quick: bool = False
    questions: int = 20
    rounds: int = 3
    server: bool = True
    cold_start: bool = True
    cache_dir: Path = REPO / "bench" / "cache"
    chunk_size: int = 900
    k: int = 8
    work_dir: Path | None = None  # default: a temporary directory, removed afterwards
    pool_limit: int | None = None  # corpus sentences the synthetic chunks draw on (None: all)
    embedder: Any = None  # an already-loaded Embedder to reuse (tests); None: load model_path


def _clean(value: Any) -> Any:
    """JSON without NaN: a measurement that could not be made is null, never a number."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_results(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(_clean(results), indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)


# Quick mode indexes only these (small, dose-rich) files so the smoke test stays short.
QUICK_FILES = ("aza-label-dosing.md", "aza-lupus.md", "thiopurine-pharmacogenomics.md")


def _corpus_for(opts: BenchOptions, work: Path) -> Path:
    if not opts.quick:
        return opts.corpus_dir
    files = [opts.corpus_dir / name for name in QUICK_FILES if (opts.corpus_dir / name).is_file()]
    if not files:
        files = sorted(opts.corpus_dir.glob("*.md"))[:3]
    dest = work / "corpus-quick"
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    return dest


def _commit() -> str:
    """The commit measured, with "+dirty" when the work tree had uncommitted changes."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _section(
    results: dict[str, Any], name: str, log: Callable[[str], None], fn: Callable[[], Any]
) -> Any:
    """Run one section; a failure is recorded in results.json (and shown), never hidden."""
    log(f"{name} ...")
    t0 = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
        results[name] = {
            "error": f"{type(exc).__name__}: {exc}",
            "trace": traceback.format_exc()[-2000:],
        }
        log(f"{name} FAILED: {type(exc).__name__}: {exc}")
        return None
    results[name] = value
    value["section_s"] = round(time.perf_counter() - t0, 2)
    log(f"{name} done in {value['section_s']:.1f} s")
    return value


def run_bench(opts: BenchOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    from bench import sections as sec
    from bench.questions import pick_questions
    from bench.report import evaluate_targets
    from evals.schema import load_questions
    from guardrails import load_limits
    from ingest.chunking import chunk_document, embedding_text
    from ingest.embeddings import Embedder
    from ingest.loaders import load_corpus
    from ingest.model import StoreConfig
    from ingest.pipeline import run_ingest
    from ingest.store import open_index

    started = time.perf_counter()
    questions = pick_questions(opts.questions)
    rounds = opts.rounds
    work = (
        Path(opts.work_dir) if opts.work_dir else Path(tempfile.mkdtemp(prefix="dosewise-bench-"))
    )
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "meta": {
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench", *sys.argv[1:]])
            if sys.argv[0].endswith("__main__.py")
            else "run_bench()",
            "options": _clean(
                {f.name: getattr(opts, f.name) for f in fields(opts) if f.name != "embedder"}
            ),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "load_avg_start": list(os.getloadavg()),
            "questions": len(questions),
            "rounds": rounds,
            "commit": _commit(),
            "timed_questions": "every timed ask is a question text never asked before (an inert tag); "
            "cached repeats are reported apart as cached_repeat",
        }
    }
    try:
        embedder = opts.embedder or Embedder(opts.model_path)
        t0 = time.perf_counter()
        embedder.encode(["warm up"])
        results["meta"]["model_load_s"] = round(time.perf_counter() - t0, 3)
        limits = load_limits()
        corpus_dir = _corpus_for(opts, work)
        docs, _skipped = load_corpus([corpus_dir])
        chunks = [c for d in docs for c in chunk_document(d, opts.chunk_size)]
        results["meta"]["corpus_dir"] = str(corpus_dir)
        results["meta"]["corpus_documents"] = len(docs)
        results["meta"]["corpus_chunks"] = len(chunks)

        # The first ingest lands where the warm-ask, plain-chain and cold-start sections read it,
        # laid out as Settings lays out data_dir (so a fresh `dosewise ask` process finds it).
        data = work / "embedded"
        dirs = [data] + [work / f"ingest-{r}" for r in range(1, 1 if opts.quick else 2)]
        vectors: list[list[float]] = []

        def embedding() -> dict[str, Any]:
            nonlocal vectors
            out, vectors = sec.embedding_section(
                embedder, corpus_dir, chunks, opts.chunk_size, dirs, "dosewise"
            )
            return out

        if _section(results, "embedding", log, embedding) is None:
            vectors = embedder.encode([embedding_text(c) for c in chunks])
            run_ingest(
                [corpus_dir],
                StoreConfig(path=str(data / "chroma"), collection="dosewise"),
                embedder,
                chunk_size=opts.chunk_size,
                data_dir=data,
                progress=False,
            )
        real_pairs = list(zip(chunks, vectors, strict=True))

        cfg = StoreConfig(path=str(data / "chroma"), collection="dosewise")
        gold, _issues = load_questions(REPO / "evals" / "gold.jsonl")
        _section(
            results,
            "query_encoder",
            log,
            lambda: sec.query_encoder_section(
                embedder,
                questions,
                [embedding_text(c) for c in chunks],
                1 if opts.quick else 2,
                lambda emb: sec._assistant(open_index(cfg, embedder), emb, limits, opts.k, data),
                gold[:12] if opts.quick else gold,
                opts.k,
            ),
        )

        assistant = sec._assistant(open_index(cfg, embedder), embedder, limits, opts.k, data)
        warm = _section(
            results, "warm_ask", log, lambda: sec.ask_latency(assistant, questions, rounds)
        )

        _section(
            results,
            "guard",
            log,
            lambda: sec.guard_section(
                chunks, limits, 20 if opts.quick else 200, 2 if opts.quick else 5
            ),
        )

        def imported() -> dict[str, Any]:
            # Documents without front matter (text, HTML, PDF, SPL XML): ingest throughput and
            # the cost of statement extraction; `python -m bench.imported --docs DIR` for a real
            # folder such as the BYOD dev set.
            from bench.imported import imported_section, write_synthetic_folder

            folder = work / "imported-docs"
            written = write_synthetic_folder(folder, 6 if opts.quick else 30)
            out = imported_section(embedder, folder, work, opts.chunk_size)
            out["synthetic_written"] = written
            return out

        _section(results, "imported", log, imported)

        if warm is not None:
            _section(
                results,
                "baseline",
                log,
                lambda: sec.baseline_section(
                    corpus_dir, embedder, work, questions, rounds, assistant, opts.k
                ),
            )
        else:
            results["baseline"] = {"skipped": "warm ask failed"}

        _section(
            results,
            "scale",
            log,
            lambda: sec.scale_section(
                embedder,
                limits,
                real_pairs,
                opts.sizes,
                work,
                opts.cache_dir,
                questions,
                rounds,
                opts.k,
                log,
                pool_limit=opts.pool_limit,
            ),
        )

        if opts.cold_start:
            _section(
                results,
                "cold_start",
                log,
                lambda: sec.cold_start_section(
                    REPO, data, corpus_dir, questions[0], 1 if opts.quick else 3
                ),
            )
            _section(
                results,
                "cli_cold",
                log,
                lambda: sec.cli_cold_section(
                    REPO, data, corpus_dir, chunks, work, 1 if opts.quick else 3
                ),
            )
            _section(
                results,
                "app_cold",
                log,
                lambda: sec.app_cold_section(
                    REPO, data, corpus_dir, questions[0], 1 if opts.quick else 2
                ),
            )
        else:
            for name in ("cold_start", "cli_cold", "app_cold"):
                results[name] = {"skipped": "--no-cold-start"}

        if opts.server and warm is not None:
            _section(
                results,
                "server",
                log,
                lambda: sec.server_section(
                    embedder, limits, real_pairs, work, questions, rounds, opts.k, assistant
                ),
            )
        else:
            results["server"] = {"skipped": "--no-server" if not opts.server else "warm ask failed"}
    finally:
        results["meta"]["load_avg_end"] = list(os.getloadavg())
        results["meta"]["total_seconds"] = round(time.perf_counter() - started, 1)
        results["targets"] = evaluate_targets(results)
        write_results(results, opts.out)
        if opts.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return results
