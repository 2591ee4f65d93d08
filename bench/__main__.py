"""``python -m bench [--quick] [--sizes 1000,10000,100000] [--out bench/results.json]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x.replace("_", "")) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--sizes wants comma-separated integers, got {text!r}"
        ) from None
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError("--sizes wants positive integers")
    return sizes


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[1]
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    from bench.run import DEFAULT_SIZES, QUICK_SIZES, BenchOptions, run_bench
    from settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few questions and rounds")
    parser.add_argument(
        "--sizes", type=_sizes, default=None, help="store sizes in chunks, e.g. 1000,10000,100000"
    )
    parser.add_argument("--out", type=Path, default=repo / "bench" / "results.json")
    parser.add_argument(
        "--questions", type=int, default=None, help="how many benchmark questions (max 20)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="timed passes over the questions")
    parser.add_argument(
        "--no-server", dest="server", action="store_false", help="skip the Chroma server run"
    )
    parser.add_argument(
        "--no-cold-start", dest="cold_start", action="store_false", help="skip the cold start"
    )
    parser.add_argument("--cache-dir", type=Path, default=repo / "bench" / "cache")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="keep the stores here (default: temp, removed)"
    )
    args = parser.parse_args(argv)

    settings = Settings()
    corpus = (
        settings.corpus_dir if settings.corpus_dir.is_absolute() else repo / settings.corpus_dir
    )
    opts = BenchOptions(
        model_path=settings.model_path,
        corpus_dir=corpus,
        out=args.out,
        sizes=args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES),
        quick=args.quick,
        questions=args.questions or (3 if args.quick else 20),
        rounds=args.rounds or (2 if args.quick else 3),
        server=args.server,
        cold_start=args.cold_start,
        cache_dir=args.cache_dir,
        chunk_size=settings.chunk_size,
        k=settings.retrieval_k,
        work_dir=args.work_dir,
        pool_limit=60 if args.quick else None,
    )

    from rich.console import Console

    from bench.report import render_table

    err = Console(stderr=True)
    results = run_bench(opts, log=lambda msg: err.print(f"[dim]bench:[/] {msg}"))
    Console().print(render_table(results))
    print(f"wrote {opts.out}")
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    if failed:
        err.print(f"[red]sections failed:[/] {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
