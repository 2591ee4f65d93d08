"""Run question and answer files through Dosewise (and optionally the baseline) and score them.

The assistant and baseline are passed in (collaborators, not globals), so the CLI, the test
suite's CI gate and notebooks drive the same code. Anything an item does wrong — an exception in
the system, a bad line in a file — is recorded in the results, never raised, never skipped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals.metrics import (
    GuardOutcome,
    ItemOutcome,
    aggregate_guard,
    aggregate_items,
    citation_scores,
    match_numbers,
    retrieval_scores,
)
from evals.schema import AnswerItem, LoadIssue, PatientSpec, QuestionItem
from evals.schema import load_answers as _load_answers
from evals.schema import load_questions as _load_questions
from guardrails import PatientInputError, check_answer, parse_quantities, validate_patient
from guardrails.model import AnswerVerdict, Passage, PatientContext

__all__ = ["EvalResult", "run_eval", "score_guard", "score_question"]

_VERIFIED = ("supported", "derived")


@dataclass(frozen=True)
class EvalResult:
    items: tuple[ItemOutcome, ...]
    baseline_items: tuple[ItemOutcome, ...]
    guard: tuple[GuardOutcome, ...]
    summary: dict[str, Any]
    baseline_summary: dict[str, Any] | None
    guard_summary: dict[str, Any]
    issues: tuple[LoadIssue, ...]
    seconds: float
    files: dict[str, str] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    # The guard on real LLM drafts labelled number by number (evals/drafts.py); None: not run.
    drafts_summary: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "drafts_summary": self.drafts_summary,
            "summary": self.summary,
            "baseline_summary": self.baseline_summary,
            "guard_summary": self.guard_summary,
            "issues": [vars(i) for i in self.issues],
            "seconds": self.seconds,
            "stage_seconds": self.stage_seconds,
            "items": [i.to_json() for i in self.items],
            "baseline_items": [i.to_json() for i in self.baseline_items],
            "guard": [g.to_json() for g in self.guard],
        }


def _decimal_or_raw(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return value
    return value


def patient_mapping(spec: PatientSpec | None) -> dict[str, Any] | None:
    """The patient exactly as a caller would hand it to ``Assistant.ask``: the system, not the
    harness, must validate it (``expected.error`` items test that it does)."""
    if spec is None:
        return None
    return {
        "weight_kg": _decimal_or_raw(spec.weight_kg),
        "tpmt": spec.tpmt,
        "nudt15": spec.nudt15,
        "comedications": list(spec.comedications),
        "egfr": spec.egfr,
        "crcl": spec.crcl,
        "age_years": spec.age_years,
    }


def patient_context(spec: PatientSpec | None) -> PatientContext | None:
    """A validated context for re-running the guard (raises PatientInputError)."""
    if spec is None:
        return None
    return validate_patient(
        _decimal_or_raw(spec.weight_kg),
        spec.tpmt,
        spec.nudt15,
        tuple(spec.comedications),
        egfr=spec.egfr,
        crcl=spec.crcl,
        age_years=spec.age_years,
    )


_REFERENCES = re.compile(r"\n\n\*\*(?:Sources|Where this comes from)\*\*\n")


def answer_body(result: Any) -> str:
    """The part of a shown answer the guard checked: without the fallback note the chain puts
    in front and the bibliographic reference list it appends (years and pages are not claims)."""
    text = str(result.answer)
    note = str(getattr(result, "note", "") or "")
    prefix = f"_{note}_\n\n"
    if note and text.startswith(prefix):
        text = text[len(prefix) :]
    cuts = [m.start() for m in _REFERENCES.finditer(text)]
    return text[: cuts[-1]] if cuts else text


def _ask_conversation(assistant: Any, item: QuestionItem) -> Any:
    """Earlier turns are asked first and passed on as the app passes them (AnswerResults)."""
    turns: list[Any] = []
    for earlier in item.history:
        turns.append(assistant.ask(earlier, history=tuple(turns)))
    return turns


def _ranked_doc_ids(result: Any) -> tuple[str, ...]:
    ranked = [r.doc_id for r in getattr(result, "retrieved", ())]
    if not ranked:  # a system that reports only what it cited is still scored
        ranked = [c.doc_id for c in getattr(result, "citations", ())]
    return tuple(ranked)


def passages_from_result(result: Any) -> dict[int, str]:
    """Full text behind each citation number (the chain's excerpt is the whole chunk)."""
    return {c.n: c.excerpt for c in getattr(result, "citations", ())}


def guard_passages(result: Any) -> tuple[Passage, ...]:
    """The passages the chain gave the guard for this answer, rebuilt from the result."""
    chunks = {r.text: r for r in getattr(result, "retrieved", ())}
    return tuple(
        chunks[c.excerpt].passage(c.n)
        if c.excerpt in chunks
        else Passage(n=c.n, text=c.excerpt, doc_id=c.doc_id, section=c.section)
        for c in sorted(getattr(result, "citations", ()), key=lambda c: c.n)
    )


def _claims_verified(result: Any) -> tuple[int, int, list[tuple[int, int]]]:
    claims = list(getattr(result, "claims", ()))
    verified = sum(1 for c in claims if c.status in _VERIFIED)
    derived = [tuple(c.span) for c in claims if c.status == "derived"]
    return len(claims), verified, derived  # type: ignore[return-value]


def _must_not_contain(item: QuestionItem, shown_text: str) -> tuple[str, ...]:
    low = shown_text.lower()
    return tuple(s for s in item.expected.must_not_contain if s and s.lower() in low)


def score_question(item: QuestionItem, assistant: Any, *, k: int = 8) -> ItemOutcome:
    return _score_question(item, assistant, k)[0]


def _score_question(item: QuestionItem, assistant: Any, k: int) -> tuple[ItemOutcome, Any]:
    exp = item.expected
    base: dict[str, Any] = {
        "id": item.id,
        "system": "dosewise",
        "tags": tuple(item.tags),
        "question": item.question,
        "expected_sources": tuple(exp.sources),
        "expected_numbers": tuple(exp.numbers),
        "out_of_corpus": exp.out_of_corpus,
        "expects_error": exp.error is not None,
    }
    try:
        turns = _ask_conversation(assistant, item)
    except Exception as exc:  # noqa: BLE001
        turns = []
        history_error = f"history turn failed: {type(exc).__name__}: {exc}"
    else:
        history_error = ""
    t0 = time.perf_counter()
    try:
        if history_error:
            raise RuntimeError(history_error)
        result = assistant.ask(
            item.question, history=tuple(turns), patient=patient_mapping(item.patient)
        )
    except PatientInputError as exc:
        elapsed = (time.perf_counter() - t0) * 1000.0
        rejected = ItemOutcome(
            **base,
            status="rejected",
            answer=str(exc),
            latency_ms=elapsed,
            rejection_ok=exp.error is not None,
            abstention_ok=None,
        )
        return rejected, None
    except Exception as exc:  # noqa: BLE001 - a crash is a result to report, not to raise
        elapsed = (time.perf_counter() - t0) * 1000.0
        crashed = ItemOutcome(
            **base,
            status="error",
            answer="",
            latency_ms=elapsed,
            error=f"{type(exc).__name__}: {exc}",
            rejection_ok=False if exp.error is not None else None,
            abstention_ok=False if exp.error is None else None,
        )
        return crashed, None
    elapsed = (time.perf_counter() - t0) * 1000.0
    status = str(result.status)
    shown = status == "verified"
    answer = answer_body(result) if shown else ""
    nums = match_numbers(exp.numbers, answer)
    total, verified, derived = _claims_verified(result) if shown else (0, 0, [])
    # Independent of the claim list: every number in the shown text must have a verified claim.
    claim_spans = [tuple(c.span) for c in result.claims if c.status in _VERIFIED] if shown else []
    uncovered = [
        q
        for q in (parse_quantities(answer) if shown else ())
        if not any(s[0] < q.span[1] and q.span[0] < s[1] for s in claim_spans)
    ]
    ranked = _ranked_doc_ids(result)
    r4, rk, rr = retrieval_scores(exp.sources, ranked, k)
    cite = citation_scores(answer, passages_from_result(result), derived) if shown else None
    full = str(result.answer) if shown or status == "blocked" else ""
    in_scope = exp.error is None
    scored = ItemOutcome(
        **base,
        status=status,
        answer=result.answer,
        latency_ms=elapsed,
        retrieved_doc_ids=tuple(dict.fromkeys(ranked)),
        recall_at_4=r4,
        recall_at_k=rk,
        reciprocal_rank=rr,
        numbers_found=nums.found,
        numbers_missing=nums.missing,
        numbers_shown=nums.shown,
        numbers_on_target=nums.on_target,
        sources_shown=len(getattr(result, "citations", ()) or ()) if shown else 0,
        words_shown=len(answer.split()),
        claims_total=total,
        claims_verified=verified,
        unverified_shown=(total - verified) + len(uncovered),
        citation=cite,
        abstention_ok=((status == "abstained") == exp.out_of_corpus) if in_scope else None,
        rejection_ok=(status == "rejected") if exp.error is not None else None,
        must_not_contain_hits=_must_not_contain(item, full),
        extra={
            "drug": result.drug,
            "note": result.note,
            "timings_ms": dict(result.timings_ms),
            **_drugs_cited(item, result),
        },
    )
    return scored, result


def _drugs_cited(item: QuestionItem, result: Any) -> dict[str, Any]:
    """The main drug of each cited document (from the retrieved chunks' metadata) and the
    drugs the item expects (``expected.drugs``, optional), for "answers about another drug"."""
    main: dict[str, str] = {}
    for chunk in getattr(result, "retrieved", ()):
        drugs = (getattr(chunk, "metadata", None) or {}).get("drugs") or ()
        if drugs:
            main.setdefault(chunk.doc_id, str(drugs[0]).lower())
    cited = {c.doc_id: main.get(c.doc_id, "") for c in getattr(result, "citations", ())}
    expected = [str(d).lower() for d in (getattr(item.expected, "drugs", None) or ())]
    return {"cited_drugs": cited, "expected_drugs": expected}


def score_baseline(item: QuestionItem, baseline: Any) -> ItemOutcome:
    exp = item.expected
    try:
        res = baseline.ask(item.question)
    except Exception as exc:  # noqa: BLE001
        return ItemOutcome(
            id=item.id,
            system="baseline",
            tags=tuple(item.tags),
            question=item.question,
            status="error",
            answer="",
            latency_ms=0.0,
            error=f"{type(exc).__name__}: {exc}",
            out_of_corpus=exp.out_of_corpus,
            expects_error=exp.error is not None,
        )
    nums = match_numbers(exp.numbers, res.answer)
    r4, rk, rr = retrieval_scores(exp.sources, res.doc_ids, baseline.k)
    in_scope = exp.error is None
    return ItemOutcome(
        id=item.id,
        system="baseline",
        tags=tuple(item.tags),
        question=item.question,
        status="shown",
        answer=res.answer,
        latency_ms=res.latency_ms,
        retrieved_doc_ids=tuple(dict.fromkeys(res.doc_ids)),
        expected_sources=tuple(exp.sources),
        recall_at_4=r4,
        recall_at_k=rk,
        reciprocal_rank=rr,
        expected_numbers=tuple(exp.numbers),
        numbers_found=nums.found,
        numbers_missing=nums.missing,
        numbers_shown=nums.shown,
        numbers_on_target=nums.on_target,
        # No guard: every number it shows is unverified by construction.
        claims_total=nums.shown,
        claims_verified=0,
        unverified_shown=nums.shown,
        out_of_corpus=exp.out_of_corpus,
        expects_error=exp.error is not None,
        # It never abstains and never looks at patient input.
        abstention_ok=(not exp.out_of_corpus) if in_scope else None,
        rejection_ok=False if exp.error is not None else None,
        must_not_contain_hits=_must_not_contain(item, res.answer),
    )


def _verdict(v: AnswerVerdict) -> tuple[str, tuple[str, ...], str]:
    failed = tuple(f"{c.claim.text}: {c.status.value}" for c in (v.failed or ()))
    return ("pass" if v.passed and not v.error else "block"), failed, v.error or ""


def score_guard(
    item_id: str,
    origin: str,
    kind: str,
    expect: str,
    answer: str,
    passages: Sequence[Passage],
    *,
    patient: PatientContext | None = None,
    limits: Any = None,
    drug: str | None = None,
    detail: str = "",
) -> GuardOutcome:
    verdict = check_answer(answer, passages, patient=patient, limits=limits, drug=drug)
    label, failed, error = _verdict(verdict)
    return GuardOutcome(
        id=item_id,
        origin=origin,
        kind=kind,
        expect=expect,
        verdict=label,
        claims=len(verdict.claims),
        failed=failed,
        error=error,
        detail=detail,
        # A mutant is the gold answer plus one change: "detail" names it; the text is not kept.
        answer="" if origin == "mutation" else answer,
    )


def passages_for_question(assistant: Any, question: str) -> tuple[tuple[Passage, ...], Any]:
    """Passages for an answer-file item, retrieved as the chain retrieves them for an LLM draft:
    the top ``k`` chunks for the question, numbered 1..k in rank order. The chain's LangChain
    retriever is used when it has one, so a question the chain would abstain on (no drug named)
    still gets its passages; the answer's drug comes from the chain's own reading of it."""
    result = assistant.ask(question)
    k = int(getattr(assistant, "k", 8))
    if hasattr(assistant, "as_retriever"):
        chunks = [d.metadata.get("retrieved") for d in assistant.as_retriever().invoke(question)]
        ranked = [c for c in chunks if c is not None][:k]
    else:
        ranked = list(result.retrieved[:k])
    ps = tuple(r.passage(i) for i, r in enumerate(ranked, start=1))
    return ps, result


def _mutants(answer: str, cap: int | None, passages: Sequence[Passage] = ()) -> list[Any]:
    """The guard's mutants of an answer (number mutants, and scope mutants that move a true
    figure to another drug, role or indication the passages distinguish); with ``cap``, an
    even spread over mutation kinds (round-robin, deterministic) so long answers do not
    dominate the run's time."""
    from guardrails import mutations

    mutants = list(mutations.mutate_answer(answer)) + mutations.scope_mutants(answer, passages)
    if cap is None or len(mutants) <= cap:
        return mutants
    by_kind: dict[str, list[Any]] = {}
    for m in mutants:
        by_kind.setdefault(m.kind, []).append(m)
    picked: list[Any] = []
    queues = [list(v) for _k, v in sorted(by_kind.items())]
    while len(picked) < cap and any(queues):
        for q in queues:
            if q and len(picked) < cap:
                # Alternate ends so both early and late claims of the answer are mutated.
                picked.append(q.pop(0) if len(picked) % 2 == 0 else q.pop())
    return picked


def _detail(m: Any, answer: str) -> str:
    """ "original -> mutated" for the report: the claim and what replaced it."""
    start, end = m.span
    grown = len(m.mutated_text) - len(answer)
    return f"{m.original} -> {m.mutated_text[start : end + grown]}"


def _guard_on_answers(
    answers: Sequence[AnswerItem], assistant: Any, limits: Any, mutate: bool, cap: int | None
) -> list[GuardOutcome]:
    out: list[GuardOutcome] = []
    for a in answers:
        try:
            passages, result = passages_for_question(assistant, a.question)
        except Exception as exc:  # noqa: BLE001
            out.append(
                GuardOutcome(
                    a.id,
                    "answers_file",
                    "original",
                    a.expect,
                    "block",
                    error=f"retrieval failed: {exc}",
                    answer=a.answer,
                )
            )
            continue
        out.append(
            score_guard(
                a.id,
                "answers_file",
                "original",
                a.expect,
                a.answer,
                passages,
                limits=limits,
                drug=result.drug,
            )
        )
        if mutate and a.expect == "pass":
            for m in _mutants(a.answer, cap, passages):
                out.append(
                    score_guard(
                        f"{a.id}~{m.kind}",
                        "mutation",
                        m.kind,
                        "block",
                        m.mutated_text,
                        passages,
                        limits=limits,
                        drug=result.drug,
                        detail=_detail(m, a.answer),
                    )
                )
    return out


def _guard_on_gold(
    results: Sequence[tuple[QuestionItem, Any]], limits: Any, cap: int | None
) -> list[GuardOutcome]:
    """The mutation test on the system's own verified answers: the unmutated answer must pass
    the guard again, and every mutant of it must be blocked."""
    out: list[GuardOutcome] = []
    for item, result in results:
        passages = guard_passages(result)
        try:
            patient = patient_context(item.patient)
        except PatientInputError:
            continue
        kw = {"patient": patient, "limits": limits, "drug": result.drug}
        body = answer_body(result)
        out.append(score_guard(item.id, "gold_verified", "original", "pass", body, passages, **kw))
        for m in _mutants(body, cap, passages):
            out.append(
                score_guard(
                    f"{item.id}~{m.kind}",
                    "mutation",
                    m.kind,
                    "block",
                    m.mutated_text,
                    passages,
                    detail=_detail(m, body),
                    **kw,
                )
            )
    return out


def _drafts(path: str | Path | None, limits: Any) -> dict[str, Any] | None:
    """The LLM-draft set's summary, with the hand-written paraphrases' under "paraphrases"."""
    from evals.drafts import (
        DEFAULT_DRAFTS,
        DEFAULT_PARAPHRASES,
        load_drafts,
        score_drafts,
        summarise,
    )

    def one(p: Path) -> dict[str, Any] | None:
        if not p.exists():
            return None
        try:
            drafts = load_drafts(p)
        except (OSError, ValueError) as exc:  # reported, never raised: the rest of the run stands
            return {"error": str(exc)}
        return summarise(score_drafts(drafts, limits))

    out = one(Path(path) if path is not None else DEFAULT_DRAFTS)
    para = one(DEFAULT_PARAPHRASES) if path is None else None
    if out is not None and para is not None and "error" not in out:
        out["paraphrases"] = para
    return out


def run_eval(
    questions_files: Sequence[str | Path],
    answers_files: Sequence[str | Path],
    out_dir: str | Path,
    *,
    assistant: Any,
    baseline: Any = None,
    progress: bool = True,
    limits: Any = None,
    k: int | None = None,
    mutate: bool = True,
    max_mutants_per_answer: int | None = 13,  # one of each mutation kind
    write: bool = True,
    drafts_file: str | Path | None = None,
) -> EvalResult:
    """``drafts_file``: a labelled LLM-draft set (default: the packaged evals/llm_drafts.jsonl,
    when present); its guard figures are reported beside the composer-answer ones."""
    t0 = time.perf_counter()
    issues: list[LoadIssue] = []
    questions: list[QuestionItem] = []
    for qf in questions_files:
        items, bad = _load_questions(qf)
        questions += items
        issues += bad
    answers: list[AnswerItem] = []
    for af in answers_files:
        items_a, bad = _load_answers(af)
        answers += items_a
        issues += bad
    limits = limits if limits is not None else getattr(assistant, "limits", None)
    k = k or int(getattr(assistant, "k", 8))

    ours: list[ItemOutcome] = []
    theirs: list[ItemOutcome] = []
    verified_results: list[tuple[QuestionItem, Any]] = []
    bar = tqdm(questions, desc="questions", unit="q", disable=not progress)
    for item in bar:
        outcome, raw = _score_question(item, assistant, k)
        ours.append(outcome)
        if outcome.status == "verified" and raw is not None:
            verified_results.append((item, raw))
        if baseline is not None:
            theirs.append(score_baseline(item, baseline))
    stages = {"questions": time.perf_counter() - t0}
    guard: list[GuardOutcome] = []
    if mutate and verified_results:
        guard += _guard_on_gold(verified_results, limits, max_mutants_per_answer)
    # Answer files are small and hand-made: every mutant of their correct answers is checked.
    stages["mutation_test"] = time.perf_counter() - t0 - stages["questions"]
    guard += _guard_on_answers(answers, assistant, limits, mutate, None)
    stages["answer_files"] = time.perf_counter() - t0 - sum(stages.values())
    drafts_summary = _drafts(drafts_file, limits)
    stages["llm_drafts"] = time.perf_counter() - t0 - sum(stages.values())

    result = EvalResult(
        items=tuple(ours),
        baseline_items=tuple(theirs),
        guard=tuple(guard),
        summary=aggregate_items(ours),
        baseline_summary=aggregate_items(theirs) if baseline is not None else None,
        guard_summary=aggregate_guard(guard),
        issues=tuple(issues),
        seconds=time.perf_counter() - t0,
        stage_seconds={k: round(v, 2) for k, v in stages.items()},
        drafts_summary=drafts_summary,
    )
    if write:
        from evals.report import write_reports

        files = write_reports(result, Path(out_dir))
        result = EvalResult(**{**result.__dict__, "files": files})
    return result
