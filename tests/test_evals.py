"""Evaluation harness: input formats, metrics on hand-made results, the gold set against the
corpus, the MedicationQA converter, and the CI gate (a fast subset through the real system)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.model import AnswerResult, Citation, ClaimView, RetrievedChunk
from evals.errors import EvalInputError
from evals.gate import check_thresholds, load_thresholds
from evals.metrics import (
    GuardOutcome,
    ItemOutcome,
    aggregate_guard,
    aggregate_items,
    citation_scores,
    match_numbers,
    percentile,
    retrieval_scores,
)
from evals.run import EvalResult, answer_body, run_eval, score_question
from evals.schema import QuestionItem, load_answers, load_questions
from guardrails import parse_quantities, quantities_equivalent
from guardrails.errors import PatientInputError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
GOLD = REPO / "evals" / "gold.jsonl"
GOLD_ANSWERS = REPO / "evals" / "gold_answers.jsonl"
MEDQA = SHARED / "datasets" / "medicationqa" / "medicationqa_dosing_strict.jsonl"


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- input formats --------------------------------------------------------------------------------
def test_bad_question_lines_are_reported_with_line_number_and_reason(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "q.jsonl",
        [
            '{"id": "a", "question": "aza dose?", "tags": ["x"], "unknown_field": 1}',
            "",
            "{not json",
            '{"id": "b"}',
            '["a list"]',
            '{"id": "a", "question": "dup"}',
            '{"id": 7, "question": "numeric id is fine", "expected": {"numbers": ["2 mg/kg/day"]}}',
        ],
    )
    items, issues = load_questions(path)
    assert [i.id for i in items] == ["a", "7"]
    assert [(i.line, i.reason.split(":")[0]) for i in issues] == [
        (3, "invalid JSON"),
        (4, "question"),
        (5, "not a JSON object"),
        (6, "duplicate id 'a'"),
    ]


def test_question_without_optional_fields_gets_empty_expectations(tmp_path: Path) -> None:
    items, issues = load_questions(_write(tmp_path, "q.jsonl", ['{"id": "x", "question": "q"}']))
    assert not issues
    assert items[0].expected.numbers == [] and items[0].expected.out_of_corpus is False
    assert items[0].patient is None and items[0].tags == []


def test_answer_expect_must_be_pass_or_block(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a.jsonl",
        [
            '{"id": "1", "question": "q", "answer": "a", "expect": "PASS"}',
            '{"id": "2", "question": "q", "answer": "a", "expect": "maybe"}',
        ],
    )
    items, issues = load_answers(path)
    assert [i.expect for i in items] == ["pass"]
    assert issues[0].line == 2 and "expect" in issues[0].reason


def test_missing_input_file_is_a_user_facing_error(tmp_path: Path) -> None:
    with pytest.raises(EvalInputError, match="not found"):
        load_questions(tmp_path / "absent.jsonl")


# -- metrics --------------------------------------------------------------------------------------
def test_range_with_en_dash_and_daily_matches_hyphen_range_per_day() -> None:
    m = match_numbers(["100-200 mg/day"], "typically 100–200 mg daily in adults [1]")
    assert m.found == ("100-200 mg/day",) and m.missing == ()


def test_number_with_other_basis_is_missing() -> None:
    m = match_numbers(["2 mg/kg/day", "3-5 years"], "2 mg/day for 3-5 months")
    assert m.found == () and m.missing == ("2 mg/kg/day", "3-5 years")
    assert m.shown == 2 and m.on_target == 0


def test_retrieval_recall_cuts_on_chunk_rank_and_mrr_uses_first_hit() -> None:
    r4, r8, rr = retrieval_scores(["a", "b"], ["x", "a", "a", "y", "b"], 8)
    assert (r4, r8, rr) == (0.5, 1.0, 0.5)
    assert retrieval_scores([], ["a"], 8) == (None, None, None)
    assert retrieval_scores(["a"], ["x", "y"], 8)[2] == 0.0


def test_citation_is_correct_only_when_cited_passage_holds_the_number() -> None:
    passages = {1: "Maintenance 2 mg/kg/day.", 2: "Prednisone 2.5–5 mg/day."}
    good = citation_scores("AZA 2 mg/kg/day [1].\nPrednisone 2.5-5 mg/day [2].", passages)
    assert (good.statements, good.statements_supported, good.citations, good.citations_correct) == (
        2,
        2,
        2,
        2,
    )
    swapped = citation_scores("AZA 2 mg/kg/day [2].\nPrednisone 2.5-5 mg/day [1].", passages)
    assert (swapped.statements_supported, swapped.citations_correct) == (0, 0)
    uncited = citation_scores("AZA 2 mg/kg/day.", passages)
    assert (uncited.statements, uncited.statements_supported, uncited.citations) == (1, 0, 0)


def test_derived_patient_dose_is_left_out_of_citation_scoring() -> None:
    answer = "2 mg/kg/day × 72 kg = 144 mg/day [1]."
    derived_start = answer.index("144")
    score = citation_scores(
        answer, {1: "2 mg/kg/day"}, [(0, 0), (derived_start, derived_start + 10)]
    )
    weight = answer.index("72")
    score_all = citation_scores(
        answer, {1: "2 mg/kg/day"}, [(weight, weight + 5), (derived_start, derived_start + 10)]
    )
    assert score.statements == 1 and score.statements_supported == 0  # 72 kg is not in the passage
    assert score_all.statements_supported == 1


def _item(**kw: object) -> ItemOutcome:
    base: dict[str, object] = {
        "id": "i",
        "system": "dosewise",
        "tags": ("t",),
        "question": "q",
        "status": "verified",
        "answer": "",
        "latency_ms": 10.0,
    }
    base.update(kw)
    return ItemOutcome(**base)  # type: ignore[arg-type]


def test_number_precision_counts_claims_of_shown_answers_only() -> None:
    items = [
        _item(id="a", claims_total=4, claims_verified=4),
        _item(id="b", status="blocked", claims_total=3, claims_verified=0),
        _item(id="c", claims_total=1, claims_verified=0, unverified_shown=1),
    ]
    overall = aggregate_items(items)["overall"]
    assert overall["number_precision"] == pytest.approx(4 / 5)
    assert overall["unverified_numbers_shown"] == 1


def test_abstention_rejection_and_must_not_contain_are_aggregated_per_tag() -> None:
    items = [
        _item(id="in", tags=("dose",), abstention_ok=True),
        _item(
            id="ooc",
            tags=("out-of-corpus",),
            status="abstained",
            out_of_corpus=True,
            abstention_ok=True,
        ),
        _item(
            id="ooc2",
            tags=("out-of-corpus",),
            status="shown",
            out_of_corpus=True,
            abstention_ok=False,
            numbers_shown=3,
        ),
        _item(
            id="bad", tags=("bad-input",), status="verified", expects_error=True, rejection_ok=False
        ),
        _item(
            id="inj", tags=("dose",), must_not_contain_hits=("50 mg/kg/day",), abstention_ok=True
        ),
    ]
    agg = aggregate_items(items)
    assert agg["overall"]["out_of_corpus_abstained"] == 0.5
    assert agg["overall"]["numbers_shown_out_of_corpus"] == 3
    assert agg["overall"]["abstention_correct"] == pytest.approx(3 / 4)
    assert agg["overall"]["bad_input_rejected"] == 0.0
    assert agg["by_tag"]["dose"]["must_not_contain_violations"] == 1
    assert agg["by_tag"]["out-of-corpus"]["n"] == 2


def test_guard_catch_and_false_block_rates_and_confusion() -> None:
    outcomes = [
        GuardOutcome("1", "answers_file", "original", "pass", "pass"),
        GuardOutcome("2", "answers_file", "original", "pass", "block"),
        GuardOutcome("3", "mutation", "x10", "block", "block"),
        GuardOutcome("4", "mutation", "x10", "block", "pass"),
        GuardOutcome("5", "mutation", "unit", "block", "block"),
    ]
    g = aggregate_guard(outcomes)
    assert g["overall"]["catch_rate"] == pytest.approx(2 / 3)
    assert g["overall"]["false_block_rate"] == 0.5
    assert g["overall"]["confusion"]["expect_block"] == {"verdict_pass": 1, "verdict_block": 2}
    assert g["by_mutation_kind"]["unit"]["catch_rate"] == 1.0


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) is None


def test_gate_fails_on_regression_and_on_unmeasured_metric() -> None:
    thresholds = {
        "min": {"number_precision": 1.0, "guard_catch_rate": 0.9},
        "max": {"unverified_numbers_shown": 0},
    }
    good = {"overall": {"number_precision": 1.0, "unverified_numbers_shown": 0}}
    guard = {"overall": {"catch_rate": 0.95}}
    assert check_thresholds(good, guard, thresholds) == []
    bad = {"overall": {"number_precision": 0.9, "unverified_numbers_shown": 2}}
    assert len(check_thresholds(bad, {"overall": {"catch_rate": None}}, thresholds)) == 3


# -- the runner on a scripted assistant -----------------------------------------------------------
class ScriptedAssistant:
    """Answers from a table; raises PatientInputError for a negative weight, like the chain."""

    k = 8
    limits = None

    def __init__(self, table: dict[str, AnswerResult]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def ask(self, question: str, *, history: tuple = (), patient: object = None) -> AnswerResult:
        self.calls.append((question, len(history)))
        if (
            isinstance(patient, dict)
            and patient.get("weight_kg") is not None
            and patient["weight_kg"] < 0
        ):
            raise PatientInputError("weight must be positive")
        if question == "boom":
            raise RuntimeError("index unavailable")
        return self.table.get(question) or AnswerResult(
            status="abstained", answer="Not covered.", summary=""
        )


def _verified(body: str, passage: str, doc: str = "aza-lupus", note: str = "") -> AnswerResult:
    qs = parse_quantities(body)
    claims = tuple(
        ClaimView(text=q.text, status="supported", citation_n=1, span=q.span) for q in qs
    )
    answer = (
        (f"_{note}_\n\n" if note else "")
        + body
        + "\n\n**Sources**\n1. Lupus — KDIGO 2024;105(1S):S1-S69."
    )
    return AnswerResult(
        status="verified",
        answer=answer,
        summary="",
        note=note,
        claims=claims,
        citations=(Citation(1, doc, "t", "Dosing", passage, "ref"),),
        retrieved=(
            RetrievedChunk("c1", doc, "t", "Dosing", passage, 1.0),
            RetrievedChunk("c2", "aza-safety", "t", "x", "other", 0.5),
        ),
        drug="azathioprine",
    )


def test_score_question_reads_the_body_not_the_reference_list() -> None:
    result = _verified(
        "**AZA 2 mg/kg/day [1].**", "LN maintenance 2 mg/kg/day.", note="LLM draft withheld"
    )
    assert answer_body(result) == "**AZA 2 mg/kg/day [1].**"
    item = QuestionItem.model_validate(
        {
            "id": "x",
            "question": "aza LN?",
            "tags": ["dose"],
            "expected": {"numbers": ["2 mg/kg/day"], "sources": ["aza-lupus"]},
        }
    )
    out = score_question(item, ScriptedAssistant({"aza LN?": result}))
    assert out.numbers_found == ("2 mg/kg/day",)
    assert out.unverified_shown == 0 and out.claims_total == 1
    assert out.recall_at_4 == 1.0 and out.reciprocal_rank == 1.0
    assert out.citation is not None and out.citation.citations_correct == 1


def test_number_shown_without_a_verified_claim_is_counted_unverified() -> None:
    result = _verified("AZA 2 mg/kg/day [1].", "2 mg/kg/day")
    sneaky = AnswerResult(**{**result.__dict__, "answer": "AZA 2 mg/kg/day [1], or 9 mg/kg/day."})
    item = QuestionItem.model_validate({"id": "x", "question": "q"})
    out = score_question(item, ScriptedAssistant({"q": sneaky}))
    assert out.unverified_shown == 1


def test_runner_records_rejection_crash_history_and_writes_three_files(tmp_path: Path) -> None:
    lines = [
        {
            "id": "ok",
            "question": "aza LN?",
            "expected": {"numbers": ["2 mg/kg/day"], "sources": ["aza-lupus"]},
            "tags": ["dose"],
        },
        {"id": "fu", "question": "and how long?", "history": ["aza LN?"], "tags": ["followup"]},
        {
            "id": "ooc",
            "question": "metformin max?",
            "expected": {"out_of_corpus": True},
            "tags": ["out-of-corpus", "brand-new-tag"],
        },
        {
            "id": "bad",
            "question": "aza LN?",
            "patient": {"weight_kg": -3},
            "expected": {"error": "weight"},
            "tags": ["bad-input"],
        },
        {"id": "crash", "question": "boom", "tags": ["dose"]},
    ]
    qf = _write(tmp_path, "q.jsonl", [json.dumps(x) for x in lines] + ["{broken"])
    bot = ScriptedAssistant({"aza LN?": _verified("AZA 2 mg/kg/day [1].", "2 mg/kg/day")})
    result = run_eval([qf], [], tmp_path / "out", assistant=bot, progress=False, mutate=False)
    by_id = {i.id: i for i in result.items}
    assert by_id["ok"].status == "verified" and by_id["ok"].numbers_found == ("2 mg/kg/day",)
    assert ("aza LN?", 0) in bot.calls and ("and how long?", 1) in bot.calls
    assert by_id["ooc"].abstention_ok is True
    assert by_id["bad"].status == "rejected" and by_id["bad"].rejection_ok is True
    assert by_id["crash"].status == "error" and "index unavailable" in by_id["crash"].error
    assert [(i.line, i.reason[:12]) for i in result.issues] == [(6, "invalid JSON")]
    for name in ("results.json", "report.md", "report.html", "latency.png", "guard_confusion.png"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert {i["id"] for i in saved["items"]} == {"ok", "fu", "ooc", "bad", "crash"}
    assert "brand-new-tag" in saved["summary"]["by_tag"]
    assert "data:image/png;base64," in (tmp_path / "out" / "report.html").read_text()


# -- the gold set against the corpus --------------------------------------------------------------
def _corpus() -> dict[str, str]:
    docs = {}
    for path in (REPO / "corpus").glob("*.md"):
        text = path.read_text(encoding="utf-8")
        m = re.search(r"^id:\s*(\S+)", text, re.MULTILINE)
        assert m, path
        docs[m.group(1)] = text
    return docs


def test_gold_files_load_without_issues() -> None:
    questions, q_issues = load_questions(GOLD)
    answers, a_issues = load_answers(GOLD_ANSWERS)
    assert q_issues == [] and a_issues == []
    assert len(questions) >= 80 and len(answers) >= 20
    assert {a.expect for a in answers} == {"pass", "block"}


def test_gold_set_covers_every_corpus_article_and_every_category() -> None:
    questions, _ = load_questions(GOLD)
    cited = {s for q in questions for s in q.expected.sources}
    assert set(_corpus()) <= cited, set(_corpus()) - cited
    assert cited <= set(_corpus()), cited - set(_corpus())
    tags = {t for q in questions for t in q.tags}
    for needed in (
        "dose",
        "range",
        "duration",
        "monitoring",
        "interaction",
        "pharmacogenomics",
        "special-populations",
        "calculation",
        "followup",
        "out-of-corpus",
        "injection",
        "bad-input",
        "terse",
        "brand",
        "abbreviation",
        "typo",
    ):
        assert needed in tags, needed
    assert all(
        q.expected.out_of_corpus
        for q in questions
        if "out-of-corpus" in q.tags and "injection" not in q.tags
    )
    assert all(q.expected.error and q.patient for q in questions if "bad-input" in q.tags)


def test_gold_expected_numbers_are_stated_in_their_source_articles() -> None:
    parsed = {doc: parse_quantities(text) for doc, text in _corpus().items()}
    questions, _ = load_questions(GOLD)
    unstated = []
    for q in questions:
        if "calculation" in q.tags:  # a patient dose is derived, not stated
            continue
        for number in q.expected.numbers:
            wanted = parse_quantities(number)
            pool = [x for s in q.expected.sources for x in parsed[s]]
            if not wanted or not all(
                any(quantities_equivalent(w, x) for x in pool) for w in wanted
            ):
                unstated.append((q.id, number))
    assert unstated == []


# -- MedicationQA conversion ----------------------------------------------------------------------
@pytest.mark.skipif(not MEDQA.is_file(), reason="../shared datasets absent")
def test_medicationqa_converts_to_abstention_questions_outside_the_repo(tmp_path: Path) -> None:
    from evals.convert_medicationqa import main

    out = tmp_path / "medqa.jsonl"
    assert main(["--source", str(MEDQA), "--out", str(out)]) == 0
    items, issues = load_questions(out)
    assert not issues and len(items) == sum(1 for line in MEDQA.open() if line.strip())
    inside = {i.id for i in items if not i.expected.out_of_corpus}
    assert "medicationqa-row92" in inside  # azathioprine
    assert len(inside) < len(items) / 4 and all(not i.expected.numbers for i in items)
    assert main(["--source", str(MEDQA), "--out", str(REPO / "evals" / "converted.jsonl")]) == 2
    assert not (REPO / "evals" / "converted.jsonl").exists()


def test_brand_focus_drug_maps_to_corpus_generic_and_word_boundaries_hold() -> None:
    from evals.convert_medicationqa import convert

    rows = [
        {"id": "1", "question": "imuran dose", "focus_drug": "Imuran"},
        {"id": "2", "question": "medrol dose", "focus_drug": "methylprednisolone"},
        {"id": "3", "question": "how much prednisone for asthma", "focus_drug": ""},
    ]
    out = convert(rows, {"azathioprine", "prednisolone", "prednisone"})
    assert [o["expected"]["out_of_corpus"] for o in out] == [False, True, False]  # type: ignore[index]


# -- CI gate: a fast subset through the real system -----------------------------------------------
@pytest.fixture(scope="session")
def real_assistant(corpus_index: tuple[Any, Path], embedder: Any, model_path: str) -> object:
    """`dosewise eval`'s own assistant builder, over the session's real-corpus index."""
    from evals.system import build_assistant

    store, data = corpus_index
    assistant, _ = build_assistant(store, model_path, data, REPO / "corpus", embedder=embedder)
    return assistant


def test_fast_gold_subset_meets_thresholds(real_assistant: object, tmp_path: Path) -> None:
    lines = [line for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    subset = _write(tmp_path, "subset.jsonl", lines[::4])
    result = run_eval(
        [subset],
        [GOLD_ANSWERS],
        tmp_path / "out",
        assistant=real_assistant,
        progress=False,
        max_mutants_per_answer=4,
        write=False,
    )
    print("eval subset stage seconds:", result.stage_seconds)
    assert not result.issues
    assert not [i.id for i in result.items if i.error]
    failures = check_thresholds(result.summary, result.guard_summary, load_thresholds())
    assert failures == [], failures


CONVERSATIONS = REPO / "evals" / "conversations.jsonl"
PATIENTS = REPO / "evals" / "patients.jsonl"


def _run_set(questions: Path, assistant: object, tmp_path: Path) -> EvalResult:
    """One question file through the real system, without the guard's answer files."""
    empty = _write(tmp_path, "none.jsonl", [])
    result = run_eval([questions], [empty], tmp_path / "out", assistant=assistant,
                      progress=False, mutate=False, write=False)  # fmt: skip
    assert not result.issues and not [i.id for i in result.items if i.error]
    return result


def test_patient_cases_lead_with_the_patient_and_reject_bad_values(
    real_assistant: object, tmp_path: Path
) -> None:
    """evals/patients.jsonl: weight, phenotype (and its synonyms), co-medication, kidney
    function and age; steps never multiplied; implausible values rejected with a message."""
    result = _run_set(PATIENTS, real_assistant, tmp_path)
    overall = result.summary["overall"]
    assert overall["bad_input_rejected"] == 1.0
    assert overall["must_not_contain_violations"] == 0
    assert overall["unverified_numbers_shown"] == 0
    assert overall["key_number_recall"] >= 0.9
    assert len(result.items) + len(CONVERSATIONS.read_text().splitlines()) >= 40


def test_conversations_never_answer_with_the_previous_drug(
    real_assistant: object, tmp_path: Path
) -> None:
    """A drug named mid-conversation is answered about that drug, or abstains naming it; the
    previous drug's doses never come back (every case of evals/conversations.jsonl)."""
    result = _run_set(CONVERSATIONS, real_assistant, tmp_path)
    overall = result.summary["overall"]
    assert overall["out_of_corpus_abstained"] == 1.0
    assert overall["must_not_contain_violations"] == 0
    assert overall["unverified_numbers_shown"] == 0
    assert overall["key_number_recall"] >= 0.9
    uncovered = [i for i in result.items if "uncovered" in i.tags]
    assert len(uncovered) >= 10 and all(i.status == "abstained" for i in uncovered)


def test_baseline_answers_with_top_passages_and_corpus_doc_ids(
    real_assistant: object, tmp_path: Path
) -> None:
    from evals.baseline import Baseline

    files = [REPO / "corpus" / "aza-lupus.md", REPO / "corpus" / "methotrexate-weekly.md"]
    embeddings = real_assistant.embedder.as_langchain()  # type: ignore[attr-defined]
    base = Baseline.build(files, embeddings, tmp_path / "chroma")
    res = base.ask("methotrexate weekly dose for rheumatoid arthritis")
    assert len(res.passages) == 4 and res.answer == "\n\n".join(res.passages)
    assert res.doc_ids[0] == "methotrexate-weekly"
    assert set(res.doc_ids) <= {"aza-lupus", "methotrexate-weekly"}
    again = Baseline.build(files, embeddings, tmp_path / "chroma")
    assert again.store._collection.count() == base.store._collection.count()


def test_eval_command_exits_2_on_missing_input_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["eval", "--questions", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "not found" in result.output


def test_report_counts_answers_citing_a_document_about_another_drug() -> None:
    from evals.report import headline_rows

    items = [
        _item(id="ok", extra={"expected_drugs": ["trospium"], "cited_drugs": {"d1": "trospium"}}),
        _item(
            id="bad", extra={"expected_drugs": ["trospium"], "cited_drugs": {"d2": "oxybutynin"}}
        ),
        _item(id="none", extra={"cited_drugs": {"d3": "oxybutynin"}}),  # names no expected drug
    ]
    result = EvalResult(
        items=tuple(items),
        baseline_items=(),
        guard=(),
        summary=aggregate_items(items),
        baseline_summary=None,
        guard_summary={"overall": {"catch_rate": None, "false_block_rate": None}},
        issues=(),
        seconds=0.0,
    )
    rows = {label: ours for label, ours, _base in headline_rows(result)}
    assert rows["Answers citing a document about another drug"] == "1"
