"""The `dosewise` command line: an entry point that builds Settings and passes plain values down.

Each command imports its package lazily so that `dosewise --help` stays instant.
"""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from guardrails.model import Passage
    from settings import Settings

app = typer.Typer(
    name="dosewise",
    help="Offline drug-dosing answers whose every number is verified against its source.",
    no_args_is_help=True,
    add_completion=False,
)


def _settings() -> Settings:
    # Imported here: pydantic-settings is not needed for `--help` or `check --passages`.
    from settings import Settings

    return Settings()


# Commands are added below, one function each (ingest, stats, ask, check, eval, bench, ...).


@app.command()
def ingest(
    paths: list[str] = typer.Argument(  # noqa: B008 - typer declares arguments this way
        None, help="Files or directories to index (default: the corpus directory)."
    ),
    lock_timeout: float = typer.Option(30.0, help="Seconds to wait for another ingest to finish."),
    progress: bool = typer.Option(True, help="Show a progress bar (on a terminal only)."),
    labels: list[str] = typer.Option(  # noqa: B008 - typer declares options this way
        None,
        "--labels",
        help="FDA SPL label XML file, folder or zip to index along with the corpus (repeatable).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Show what would be read, the drugs found and the dose "
        "statements per role, without writing anything.",
    ),
) -> None:
    """Index the corpus into Chroma: incremental, atomic, one writer at a time.

    The index mirrors exactly what one run is given: PATHS (default: the corpus directory) plus
    every --labels PATH. Labels are added to the corpus, never instead of it; a label left out of
    a later ingest is removed from the index, so pass the same --labels each time.

    Exit status 1 when a file was skipped (each is listed with its reason), 2 when the ingest
    could not run (store unreachable, another ingest holding the lock)."""
    from ingest.embeddings import Embedder
    from ingest.errors import IngestError
    from ingest.pipeline import format_summary, run_ingest

    settings = _settings()
    targets = list(paths) if paths else [str(settings.corpus_dir)]
    if dry_run:
        _dry_run(targets, list(labels or []), settings.chunk_size)
        return
    embedder = Embedder.shared(settings.model_path)
    try:
        report = run_ingest(
            targets,
            settings.store,
            embedder,
            chunk_size=settings.chunk_size,
            data_dir=settings.data_dir,
            progress=progress,
            lock_timeout_s=lock_timeout,
            labels=list(labels or []),
        )
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for skipped in report.skipped:
        typer.echo(f"skipped {skipped.path}: {skipped.reason}", err=True)
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(format_summary(report))
    _prepare_for_questions(settings, embedder)
    if report.skipped:
        raise typer.Exit(1)


def _dry_run(targets: list[str], labels: list[str], chunk_size: int) -> None:
    """``ingest --dry-run``: each file that would be read, with its kind, drugs, sections and
    dose statements per role; skipped files with their reason. Nothing is embedded or written.
    Exit status 1 when a file would be skipped, as for a real ingest."""
    from collections import Counter

    from ingest.chunking import chunk_document
    from ingest.loaders import load_corpus
    from ingest.statements import statements_for_chunk

    docs, skipped = load_corpus(targets, labels=labels)
    total: Counter[str] = Counter()
    drugs: set[str] = set()
    for doc in docs:
        chunks = chunk_document(doc, chunk_size)
        roles: Counter[str] = Counter(
            st.role.value for c in chunks for st in statements_for_chunk(c)
        )
        total.update(roles)
        drugs.update(doc.drugs)
        sections = len({c.section for c in chunks})
        typer.echo(f"{doc.path} [{doc.doc_kind}] {doc.title!r}")
        typer.echo(
            f"  drugs: {', '.join(doc.drugs) or '(none found)'}"
            + (f"; indications: {', '.join(doc.indications)}" if doc.indications else "")
            + f"; {sections} sections, {len(chunks)} chunks"
        )
        per_role = ", ".join(f"{r} {n}" for r, n in roles.most_common()) or "none"
        typer.echo(f"  dose statements: {sum(roles.values())} ({per_role})")
    for s in skipped:
        typer.echo(f"skipped {s.path}: {s.reason}", err=True)
    typer.echo(
        f"dry run: {len(docs)} documents would be read, {len(skipped)} skipped, "
        f"{len(drugs)} drugs, {sum(total.values())} dose statements; nothing was written"
    )
    if skipped:
        raise typer.Exit(1)


def _prepare_for_questions(settings: Settings, embedder: object) -> None:
    """Right after an ingest: the query model's ONNX export (made once, from the local model
    files), the drug lexicon's cached table and the new generation's lexical index and
    vocabulary, so that the first question after a large import waits for none of them. None
    of them failing fails the ingest."""
    from assistant.retrieval import HybridRetriever
    from ingest.lexicon import default_lexicon
    from ingest.store import open_index

    try:
        embedder.export_query_model()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - queries then run on torch: same vectors, slower
        typer.echo(f"note: queries will use torch (no ONNX export: {type(exc).__name__})", err=True)
    try:
        default_lexicon().prepare()
    except Exception as exc:  # noqa: BLE001 - the first question reads the package instead
        typer.echo(f"warning: drug lexicon not prepared ({type(exc).__name__}: {exc})", err=True)
    try:
        index = open_index(settings.store, embedder)  # type: ignore[arg-type]
        HybridRetriever(index, embedder, data_dir=settings.data_dir).prepare()  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the first question builds it instead
        typer.echo(f"warning: lexical index not prepared ({type(exc).__name__}: {exc})", err=True)


@app.command("fetch-label")
def fetch_label_(
    setid: str = typer.Argument(..., help="DailyMed set id (a UUID) of the label."),
    dest: str = typer.Option(
        None, "--dest", help="Folder for the XML (default: <data_dir>/labels)."
    ),
    timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds before giving up."),
) -> None:
    """Download one label's SPL XML from DailyMed (needs a network; nothing else depends on it).

    Import it afterwards with `dosewise ingest --labels <file>`. Exit status 2 when offline or
    when DailyMed has no usable label for the set id."""
    from pathlib import Path

    from ingest import spl

    target_dir = Path(dest) if dest else _settings().data_dir / "labels"
    try:
        # The URL is read at call time so a test can point it at a closed loopback port.
        path = spl.fetch_label(
            setid, target_dir, timeout_s=timeout, url_template=spl.DAILYMED_SPL_URL
        )
    except spl.LabelFetchError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"saved {path}; import it with: dosewise ingest --labels {path}")


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
    from ingest.statements import StatementStore

    store = StatementStore.in_dir(settings.data_dir)
    info["statements"] = store.stats()
    _add_drug_kinds(info, settings, store)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(
        f"index: {info['mode']} {info['collection'] or '(empty)'}, generation {info['generation']}, "
        f"updated {_age(info['age_s'])}"
    )
    typer.echo(f"documents: {info['documents']}  chunks: {info['chunks']}")
    for drug, counts in info["per_drug"].items():
        kinds = ", ".join(f"{k} {n}" for k, n in counts.get("kinds", {}).items())
        typer.echo(
            f"  {drug}: {counts['documents']} documents"
            + (f" ({kinds})" if kinds else "")
            + f", {counts['chunks']} chunks, {counts.get('statements', 0)} dose statements"
        )
    st = info["statements"]
    typer.echo(
        f"dose statements: {st['statements']} ({100 * st['unknown_share']:.1f} % with an unknown "
        f"role), {st['drugs_with_statements']} drugs"
    )
    for role, n in st["by_role"].items():
        typer.echo(f"  {role}: {n}")


def _add_drug_kinds(info: dict[str, Any], settings: Settings, store: Any) -> None:
    """Per drug: how many of its documents are of each kind (article, label, text, html, pdf)
    and its dose statements, so an import shows up as what it is."""
    from ingest.embeddings import Embedder
    from ingest.store import open_index

    try:
        chunks = open_index(settings.store, Embedder.shared(settings.model_path)).all_chunks()
        per_statement = store.drug_counts()
    except Exception as exc:  # noqa: BLE001 - the listing is an extra: the counts above stand
        typer.echo(f"warning: document kinds not listed ({type(exc).__name__}: {exc})", err=True)
        return
    kinds: dict[str, dict[str, str]] = {}
    for c in chunks:
        for drug in c.drugs:
            kinds.setdefault(drug, {})[c.doc_id] = c.doc_kind
    for drug, counts in info.get("per_drug", {}).items():
        by_kind: dict[str, int] = {}
        for kind in kinds.get(drug, {}).values():
            by_kind[kind] = by_kind.get(kind, 0) + 1
        counts["kinds"] = dict(sorted(by_kind.items()))
        counts["statements"] = int(per_statement.get(drug, 0))


@app.command("eval")
def eval_(
    questions: list[str] = typer.Option(  # noqa: B008 - typer declares options this way
        None, "--questions", help="Question JSONL file (repeatable; default: the gold set)."
    ),
    answers: list[str] = typer.Option(  # noqa: B008
        None, "--answers", help="Answer JSONL file for the guard alone (repeatable)."
    ),
    out: str = typer.Option(None, "--out", help="Output directory (default: <data_dir>/eval)."),
    baseline: bool = typer.Option(
        False, "--baseline", help="Also run the plain LangChain baseline."
    ),
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
        q_files = [
            str(packaged / f) for f in ("gold.jsonl", "conversations.jsonl", "patients.jsonl")
        ]
        a_files = [str(packaged / "gold_answers.jsonl")]
    out_dir = Path(out) if out else settings.data_dir / "eval"
    missing = [f for f in q_files + a_files if not Path(f).is_file()]
    if missing:
        typer.echo(f"error: file not found: {', '.join(missing)}", err=True)
        raise typer.Exit(2)
    try:
        assistant, embedder = build_assistant(
            settings.store,
            settings.model_path,
            settings.data_dir,
            settings.corpus_dir,
            chunk_size=settings.chunk_size,
            k=settings.retrieval_k,
        )
        base = (
            build_baseline(settings.corpus_dir, embedder, settings.data_dir) if baseline else None
        )
        result = run_eval(
            q_files,
            a_files,
            out_dir,
            assistant=assistant,
            baseline=base,
            progress=progress,
            mutate=mutate,
        )
    except (EvalInputError, IngestError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    print_headline(result)
    typer.echo(
        f"wrote {', '.join(result.files.get(k, '') for k in ('results', 'report_md', 'report_html'))}"
        f" in {result.seconds:.1f} s"
    )
    if gate:
        failures = check_thresholds(result.summary, result.guard_summary, load_thresholds())
        for f in failures:
            typer.echo(f"below threshold: {f}", err=True)
        if failures:
            raise typer.Exit(1)


@app.command("bench")
def bench_(
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes, few questions: a smoke run."),
    sizes: str = typer.Option(
        None, "--sizes", help="Store sizes in chunks, e.g. 1000,10000,100000."
    ),
    out: str = typer.Option(
        None, "--out", help="Where to write results.json (default: bench/results.json)."
    ),
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


def _patient_values(
    weight_kg: float | None,
    tpmt: str | None,
    nudt15: str | None,
    comed: list[str] | None,
    egfr: float | None = None,
    crcl: float | None = None,
    age: float | None = None,
) -> dict[str, object] | None:
    values: dict[str, object] = {
        "weight_kg": None if weight_kg is None else str(weight_kg),
        "tpmt": tpmt,
        "nudt15": nudt15,
        "comedications": tuple(comed or ()),
        "egfr": None if egfr is None else str(egfr),
        "crcl": None if crcl is None else str(crcl),
        "age_years": None if age is None else str(age),
    }
    return values if any(values.values()) else None


_EGFR_HELP = "Kidney function: eGFR in mL/min/1.73 m²."
_CRCL_HELP = "Kidney function: creatinine clearance in mL/min."
_AGE_HELP = "Patient age in years."


def query_threads(settings: Settings, *, workers: int = 1) -> int | None:
    """Threads per question encode: the setting, else one thread each when several API workers
    share the cores (a second thread per encode costs ~10 % throughput under load), else the
    embedder's default (None)."""
    if settings.query_threads:
        return settings.query_threads
    return 1 if workers > 1 else None


def _open_assistant(settings: Settings, *, workers: int = 1) -> object:
    """Index, embedder, limits and the configured LLM backend (none by default)."""
    import threading

    from ingest.embeddings import Embedder

    embedder = Embedder.shared(
        settings.model_path, query_threads=query_threads(settings, workers=workers)
    )
    # The query model loads in the background while the chain's modules import (cold start).
    threading.Thread(target=embedder.query_encoder, kwargs={"export": False}, daemon=True).start()

    from assistant.chain import Assistant
    from guardrails import load_limits
    from ingest.store import open_index

    index = open_index(settings.store, embedder)
    llm = None
    if settings.llm_backend and settings.llm_backend != "none":
        from assistant.backends import get_backend  # only when configured: ~0.2 s of imports

        llm = get_backend(
            settings.llm_backend,
            model=settings.llm_model,
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model_path=settings.llamacpp_model_path,
            chat_format=settings.llamacpp_chat_format,
            timeout_s=settings.llm_timeout_s,
        )
    return Assistant(
        index,
        embedder,
        load_limits(),
        llm=llm,
        k=settings.retrieval_k,
        data_dir=settings.data_dir,
        llm_timeout_s=settings.llm_timeout_s,
        backend_name=settings.llm_backend if llm is not None else None,
    )


_MD_HEADING = re.compile(r"^#{1,6}\s+", re.MULTILINE)
_MD_STRONG = re.compile(r"\*\*(.+?)\*\*", re.DOTALL)
_MD_EMPHASIS = re.compile(r"(?<![\w*])[_*](?=\S)(.+?)(?<=\S)[_*](?![\w*])")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((\S+?)\)")
_MD_CODE = re.compile(r"`([^`]+)`")


def answer_text(markdown: str, *, terminal: bool) -> str:
    """An answer for a terminal (rendered by rich) or for a pipe (plain text: Markdown markers
    dropped, so `dosewise ask ... | grep` and mail see words, not asterisks)."""
    if terminal:
        from rich.console import Console
        from rich.markdown import Markdown

        console = Console(force_terminal=True, highlight=False)
        with console.capture() as captured:
            console.print(Markdown(markdown))
        return captured.get()
    text = _MD_HEADING.sub("", markdown)
    text = _MD_STRONG.sub(r"\1", text)
    text = _MD_EMPHASIS.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1 (\2)", text)
    return _MD_CODE.sub(r"\1", text).rstrip() + "\n"


@app.command()
def ask(
    question: str = typer.Argument(..., help="The dosing question, in quotes."),
    weight_kg: float = typer.Option(None, "--weight-kg", help="Patient weight in kg."),
    tpmt: str = typer.Option(
        None, "--tpmt", help="TPMT phenotype: normal|intermediate|poor|unknown."
    ),
    nudt15: str = typer.Option(
        None, "--nudt15", help="NUDT15 phenotype: normal|intermediate|poor|unknown."
    ),
    comed: list[str] = typer.Option(  # noqa: B008 - typer declares options this way
        None, "--comed", help="Co-medication, e.g. allopurinol (repeatable)."
    ),
    egfr: float = typer.Option(None, "--egfr", help=_EGFR_HELP),
    crcl: float = typer.Option(None, "--crcl", help=_CRCL_HELP),
    age: float = typer.Option(None, "--age", help=_AGE_HELP),
    audience: str = typer.Option("clinician", "--audience", help="clinician | patient"),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    audit: bool = typer.Option(True, help="Append the answer to the audit log."),
    explain: bool = typer.Option(False, "--explain", help="Also print why each line was chosen."),
) -> None:
    """Answer a dosing question from the indexed corpus; every number is verified before it is shown.

    Exit status 0 for a verified answer or an abstention, 1 when the answer was withheld
    (blocked), 2 for bad input or an unusable setup (no index, unknown LLM backend)."""
    import json

    from assistant.errors import AssistantError, AuditWriteError
    from ingest.errors import IngestError

    if audience not in ("clinician", "patient"):
        typer.echo("error: --audience must be clinician or patient", err=True)
        raise typer.Exit(2)
    settings = _settings()
    try:
        assistant = _open_assistant(settings)
    except (AssistantError, IngestError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    patient = _patient_values(weight_kg, tpmt, nudt15, comed, egfr, crcl, age)
    result = assistant.ask(question, patient=patient, audience=audience)  # type: ignore[attr-defined]
    if audit:
        from assistant.audit import AuditLog

        try:
            AuditLog(settings.audit_path).record(question, patient, result)
        except AuditWriteError as exc:
            typer.echo(f"warning: {exc}", err=True)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(answer_text(result.answer, terminal=sys.stdout.isatty()), nl=False)
        if result.claims:
            typer.echo(f"\n{result.badge}")
        if result.followups:
            typer.echo("Follow-ups: " + " · ".join(result.followups))
    if explain:
        typer.echo("\nWhy these lines:" if result.explanations else "\nNo composer lines to explain.",
                   err=as_json)  # fmt: skip
        for e in result.explanations:
            typer.echo(e.describe(), err=as_json)
    if result.status == "rejected":
        raise typer.Exit(2)
    if result.status == "blocked":
        raise typer.Exit(1)


def _read_passages(path: str) -> tuple[Passage, ...]:
    """Passages as JSON (a list) or JSONL, each {n, text[, doc_id, section, drugs,
    indications, doc_kind]}."""
    import json
    from pathlib import Path

    raw = Path(path).read_text(encoding="utf-8").strip()
    items = (
        json.loads(raw)
        if raw.startswith("[")
        else [json.loads(x) for x in raw.splitlines() if x.strip()]
    )
    from assistant.verdicts import passages_from_items

    return passages_from_items(items)


@app.command()
def check(
    question: str = typer.Option(..., "--question", help="The question the answer replies to."),
    answer_file: str = typer.Option(
        ..., "--answer-file", help="File holding the answer text (Markdown)."
    ),
    passages_file: str = typer.Option(
        None,
        "--passages",
        help="JSON/JSONL passages {n, text, ...}; default: retrieve from the index.",
    ),
    weight_kg: float = typer.Option(None, "--weight-kg", help="Patient weight in kg."),
    tpmt: str = typer.Option(None, "--tpmt", help="TPMT phenotype."),
    nudt15: str = typer.Option(None, "--nudt15", help="NUDT15 phenotype."),
    comed: list[str] = typer.Option(None, "--comed", help="Co-medication (repeatable)."),  # noqa: B008
    egfr: float = typer.Option(None, "--egfr", help=_EGFR_HELP),
    crcl: float = typer.Option(None, "--crcl", help=_CRCL_HELP),
    age: float = typer.Option(None, "--age", help=_AGE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Run the dose guard on an answer: every number must be supported by the passage it cites.

    Without --passages, the passages are retrieved from the index for the question and numbered
    [1]..[k] as the LLM path numbers them. Exit 0 pass, 1 blocked, 2 usage error."""
    import json
    from pathlib import Path

    from assistant.verdicts import drug_for_passages, verdict_json
    from guardrails import PatientInputError, check_answer, load_limits, validate_patient

    try:
        answer = Path(answer_file).read_text(encoding="utf-8")
    except OSError as exc:
        typer.echo(f"error: cannot read the answer file: {exc}", err=True)
        raise typer.Exit(2) from None
    values = _patient_values(weight_kg, tpmt, nudt15, comed, egfr, crcl, age)
    try:
        patient = validate_patient(**values) if values else None  # type: ignore[arg-type]
    except PatientInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if passages_file:
        try:
            passages = _read_passages(passages_file)
        except (OSError, ValueError) as exc:
            typer.echo(f"error: unusable passages file: {exc}", err=True)
            raise typer.Exit(2) from None
        drug = drug_for_passages(question, passages)
    else:
        from assistant.chain import Assistant
        from ingest.embeddings import Embedder
        from ingest.errors import IngestError
        from ingest.store import open_index

        settings = _settings()
        try:
            embedder = Embedder.shared(settings.model_path, query_threads=settings.query_threads)
            assistant = Assistant(
                open_index(settings.store, embedder),
                embedder,
                load_limits(),
                k=settings.retrieval_k,
                data_dir=settings.data_dir,
            )
            passages, drug = assistant.passages_for(question)
        except IngestError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    verdict = check_answer(answer, passages, patient, load_limits(), drug)
    if as_json:
        typer.echo(json.dumps(verdict_json(verdict, drug), indent=2, ensure_ascii=False))
    else:
        for c in verdict.claims:
            mark = "ok " if c.status.verified else "FAIL"
            ref = f" [{c.passage_n}]" if c.passage_n else ""
            typer.echo(f"{mark} {c.claim.text!r}: {c.status.value}{ref} {c.reason}".rstrip())
        typer.echo(("PASS " if verdict.passed else "BLOCKED ") + verdict.badge)
    if not verdict.passed:
        raise typer.Exit(1)


# --- Running for a team: the HTTP API, its tokens, the audit log's retention and export. -------


def _token_store(settings: Settings) -> object:
    from tokens import TokenStore

    return TokenStore(settings.token_path)


def api_app() -> object:
    """The API built from Settings: what each `dosewise serve` worker runs (uvicorn imports it
    as ``cli:api_app`` when there are several workers)."""
    from api import create_app, require_token_for
    from assistant.audit import AuditLog
    from guardrails import load_limits

    settings = _settings()
    tokens = _token_store(settings)
    required = require_token_for(settings.api_host, force=settings.require_sign_in, tokens=tokens)  # type: ignore[arg-type]
    assistant = _open_assistant(settings, workers=settings.api_workers)
    # Load the model and the lexical index now, so the first request is not the one that waits.
    assistant.passages_for("azathioprine dose")  # type: ignore[attr-defined]
    return create_app(
        assistant,
        limits=load_limits(),
        audit=AuditLog(settings.audit_path),
        tokens=tokens,  # type: ignore[arg-type]
        require_token=required,
        max_body_bytes=settings.api_max_body_bytes,
        retention_s=settings.audit_retention_s,
    )


@app.command()
def serve(
    host: str = typer.Option(
        None, "--host", help="Address to listen on (default: DOSEWISE_API_HOST, 127.0.0.1)."
    ),
    port: int = typer.Option(
        None, "--port", min=1, max=65535, help="Port (default: DOSEWISE_API_PORT, 8080)."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        min=1,
        max=64,
        help="Worker processes (default: DOSEWISE_API_WORKERS, 1).",
    ),
) -> None:
    """Serve the HTTP API (POST /v1/ask, POST /v1/check, GET /v1/stats, GET /healthz; schema at
    /openapi.json) on loopback by default. Listening anywhere else needs a token: create one
    with `dosewise token create NAME` first. Exit status 2 when it cannot start."""
    import os

    import uvicorn

    from api import ApiConfigError, require_token_for
    from assistant.audit import AuditLog
    from assistant.errors import AssistantError
    from ingest.errors import IngestError

    # Command-line choices reach the workers the way every setting does: as DOSEWISE_ variables.
    for name, value in (
        ("DOSEWISE_API_HOST", host),
        ("DOSEWISE_API_PORT", port),
        ("DOSEWISE_API_WORKERS", workers),
    ):
        if value is not None:
            os.environ[name] = str(value)
    settings = _settings()
    try:
        required = require_token_for(
            settings.api_host, force=settings.require_sign_in, tokens=_token_store(settings)
        )  # type: ignore[arg-type]
    except ApiConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for problem in AuditLog(settings.audit_path).exposure():
        typer.echo(f"warning: {problem}", err=True)
    typer.echo(
        f"Dosewise API on http://{settings.api_host}:{settings.api_port} "
        f"({'bearer token required' if required else 'loopback, no token required'}; "
        f"{settings.api_workers} worker(s); audit log {settings.audit_path})",
        err=True,
    )
    common = dict(
        host=settings.api_host,
        port=settings.api_port,
        server_header=False,
        timeout_graceful_shutdown=10,
        log_level="info",
    )
    if settings.api_workers > 1:
        uvicorn.run("cli:api_app", factory=True, workers=settings.api_workers, **common)  # type: ignore[arg-type]
        return
    try:
        application = api_app()
    except (ApiConfigError, AssistantError, IngestError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(application, **common)  # type: ignore[arg-type]


token_app = typer.Typer(
    help="Bearer tokens for the API and the app's sign-in (stored hashed).", no_args_is_help=True
)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: str = typer.Argument(
        ..., help="Who or what uses it (named in the audit log), e.g. pharmacy-ehr."
    ),
) -> None:
    """Create a token and print it once: only its salted hash is stored."""
    from tokens import TokenError

    settings = _settings()
    try:
        token = _token_store(settings).create(name)  # type: ignore[attr-defined]
    except TokenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)
    typer.echo(
        f"Token {name!r} created in {settings.token_path}; it is shown only now: "
        "send it as 'Authorization: Bearer <token>'.",
        err=True,
    )


@token_app.command("list")
def token_list() -> None:
    """Tokens by name, id, creation time and whether revoked (never the secrets)."""
    import time as _time

    from tokens import TokenError

    try:
        infos = _token_store(_settings()).list_tokens()  # type: ignore[attr-defined]
    except TokenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if not infos:
        typer.echo("no tokens")
    for info in infos:
        created = _time.strftime("%Y-%m-%d %H:%M UTC", _time.gmtime(info.created))
        state = (
            "active"
            if info.active
            else "revoked " + _time.strftime("%Y-%m-%d %H:%M UTC", _time.gmtime(info.revoked))
        )
        typer.echo(f"{info.name}\t{info.id}\tcreated {created}\t{state}")


@token_app.command("revoke")
def token_revoke(name: str = typer.Argument(..., help="Token name (or id) to revoke.")) -> None:
    """Revoke a token: running API workers and app replicas refuse it from their next request."""
    from tokens import TokenError

    try:
        count = _token_store(_settings()).revoke(name)  # type: ignore[attr-defined]
    except TokenError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {count} token(s) named {name!r}")


audit_app = typer.Typer(help="The audit log: retention and export.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("prune")
def audit_prune(
    days: int = typer.Option(
        None, "--days", min=1, help="Keep this many days (default: DOSEWISE_AUDIT_RETENTION_DAYS)."
    ),
) -> None:
    """Delete audit records older than the retention period (and feedback on them). Exit 2
    when no period is set or the log cannot be rewritten."""
    from assistant.audit import AuditLog
    from assistant.errors import AuditWriteError

    settings = _settings()
    keep_days = days or settings.audit_retention_days
    if not keep_days:
        typer.echo(
            "error: no retention period: pass --days N or set DOSEWISE_AUDIT_RETENTION_DAYS",
            err=True,
        )
        raise typer.Exit(2)
    log = AuditLog(settings.audit_path)
    try:
        report = log.prune(keep_days * 86400.0)
    except AuditWriteError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for problem in log.exposure():
        typer.echo(f"warning: {problem}", err=True)
    typer.echo(
        f"audit log {settings.audit_path}: removed {report.removed} records older than "
        f"{keep_days} days, kept {report.kept}"
        + (f", dropped {report.unreadable} unreadable lines" if report.unreadable else "")
    )


@audit_app.command("export")
def audit_export(
    redact: bool = typer.Option(
        False,
        "--redact",
        help="Drop patient fields (and text computed from them, and feedback comments).",
    ),
    out: str = typer.Option(
        None, "--out", help="Write to this file (created 0600) instead of stdout."
    ),
) -> None:
    """Every audit record as JSON lines. With --redact, for review outside the clinical team:
    patient context, patient-specific answers and derived doses, and free-text feedback go."""
    import os
    import sys

    from assistant.audit import AuditLog

    log = AuditLog(_settings().audit_path)
    if not out:
        n = log.export_jsonl(sys.stdout, redact=redact)
    else:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                n = log.export_jsonl(fh, redact=redact)
        except OSError as exc:
            typer.echo(f"error: cannot write {out}: {exc}", err=True)
            raise typer.Exit(2) from None
    typer.echo(f"exported {n} records{' (redacted)' if redact else ''}", err=True)
