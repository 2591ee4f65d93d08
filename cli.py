"""The `dosewise` command line: an entry point that builds Settings and passes plain values down.

Each command imports its package lazily so that `dosewise --help` stays instant.
"""

from __future__ import annotations

import typer

from settings import Settings

app = typer.Typer(
    name="dosewise",
    help="Offline drug-dosing answers whose every number is verified against its source.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    return Settings()


# Commands are added below, one function each (ingest, stats, ask, check, eval, bench, ...).


@app.command()
def ingest(
    paths: list[str] = typer.Argument(  # noqa: B008 - typer declares arguments this way
        None, help="Files or directories to index (default: the corpus directory)."
    ),
    lock_timeout: float = typer.Option(30.0, help="Seconds to wait for another ingest to finish."),
    progress: bool = typer.Option(True, help="Show a progress bar (on a terminal only)."),
) -> None:
    """Index the corpus into Chroma: incremental, atomic, one writer at a time.

    Exit status 1 when a file was skipped (each is listed with its reason), 2 when the ingest
    could not run (store unreachable, another ingest holding the lock)."""
    from ingest.embeddings import Embedder
    from ingest.errors import IngestError
    from ingest.pipeline import format_summary, run_ingest

    settings = _settings()
    targets = list(paths) if paths else [str(settings.corpus_dir)]
    try:
        report = run_ingest(
            targets,
            settings.store,
            Embedder.shared(settings.model_path),
            chunk_size=settings.chunk_size,
            data_dir=settings.data_dir,
            progress=progress,
            lock_timeout_s=lock_timeout,
        )
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(format_summary(report))
    if report.skipped:
        raise typer.Exit(1)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never ingested"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


@app.command()
def stats(as_json: bool = typer.Option(False, "--json", help="Print the stats as JSON.")) -> None:
    """What the index holds: documents, chunks, per drug, generation and age."""
    import json

    from ingest.embeddings import Embedder
    from ingest.errors import IngestError
    from ingest.store import open_index

    settings = _settings()
    try:
        # The model path is only recorded, never loaded: stats embeds nothing.
        info = open_index(settings.store, Embedder.shared(settings.model_path)).stats()
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(
        f"index: {info['mode']} {info['collection'] or '(empty)'}, generation {info['generation']}, "
        f"updated {_age(info['age_s'])}"
    )
    typer.echo(f"documents: {info['documents']}  chunks: {info['chunks']}")
    for drug, counts in info["per_drug"].items():
        typer.echo(f"  {drug}: {counts['documents']} documents, {counts['chunks']} chunks")


@app.command("eval")
def eval_(
    questions: list[str] = typer.Option(  # noqa: B008 - typer declares options this way
        None, "--questions", help="Question JSONL file (repeatable; default: the gold set)."
    ),
    answers: list[str] = typer.Option(  # noqa: B008
        None, "--answers", help="Answer JSONL file for the guard alone (repeatable)."
    ),
    out: str = typer.Option(None, "--out", help="Output directory (default: <data_dir>/eval)."),
    baseline: bool = typer.Option(False, "--baseline", help="Also run the plain LangChain baseline."),
    mutate: bool = typer.Option(True, help="Mutation test of the guard on verified answers."),
    gate: bool = typer.Option(False, "--gate", help="Exit 1 when below evals/thresholds.toml."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Evaluate on question/answer files: writes results.json, report.md, report.html and plots.

    With no --questions/--answers the packaged gold set runs. Exit status 2 on unusable input."""
    from pathlib import Path

    from evals.errors import EvalInputError
    from evals.gate import check_thresholds, load_thresholds
    from evals.report import print_headline
    from evals.run import run_eval
    from evals.system import build_assistant, build_baseline
    from ingest.errors import IngestError

    settings = _settings()
    packaged = Path(__file__).resolve().parent / "evals"
    q_files = list(questions or [])
    a_files = list(answers or [])
    if not q_files and not a_files:
        q_files = [str(packaged / "gold.jsonl")]
        a_files = [str(packaged / "gold_answers.jsonl")]
    out_dir = Path(out) if out else settings.data_dir / "eval"
    missing = [f for f in q_files + a_files if not Path(f).is_file()]
    if missing:
        typer.echo(f"error: file not found: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    try:
        assistant, embedder = build_assistant(
            settings.store, settings.model_path, settings.data_dir, settings.corpus_dir,
            chunk_size=settings.chunk_size, k=settings.retrieval_k,
        )
        base = build_baseline(settings.corpus_dir, embedder, settings.data_dir) if baseline else None
        result = run_eval(q_files, a_files, out_dir, assistant=assistant, baseline=base,
                          progress=progress, mutate=mutate)
    except (EvalInputError, IngestError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    print_headline(result)
    typer.echo(f"wrote {', '.join(result.files.get(k, '') for k in ('results', 'report_md', 'report_html'))}"
               f" in {result.seconds:.1f} s")
    if gate:
        failures = check_thresholds(result.summary, result.guard_summary, load_thresholds())
        for f in failures:
            typer.echo(f"below threshold: {f}", err=True)
        if failures:
            raise typer.Exit(1)


@app.command("bench")
def bench_(
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes, few questions: a smoke run."),
    sizes: str = typer.Option(None, "--sizes", help="Store sizes in chunks, e.g. 1000,10000,100000."),
    out: str = typer.Option(None, "--out", help="Where to write results.json (default: bench/results.json)."),
    server: bool = typer.Option(True, help="Also benchmark against a Chroma server on loopback."),
    cold_start: bool = typer.Option(True, help="Also time a fresh process to its first answer."),
) -> None:
    """Benchmark speed and scale (encode vs ingest, warm ask, guard, 1k-100k chunks, plain chain,
    cold start, server mode); prints a table and writes results.json. Exit 1 if a section failed."""
    from bench.__main__ import main as bench_main

    argv = ["--quick"] if quick else []
    if sizes:
        argv += ["--sizes", sizes]
    if out:
        argv += ["--out", out]
    if not server:
        argv.append("--no-server")
    if not cold_start:
        argv.append("--no-cold-start")
    code = bench_main(argv)
    if code:
        raise typer.Exit(code)
