"""The two reference questions on the real corpus: every key figure of the reference answers
that the corpus covers appears in the answer, cited and verified by the guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chain import Assistant
from assistant.model import AnswerResult

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"

USAGE_Q = (
    "What is the usage and dosage of azathioprine (Imuran) in treating autoimmune diseases and "
    "preventing organ rejection?"
)
LUPUS_Q = "What is the recommended dose of azathioprine for treating lupus?"

# Key figures of the reference answers (facts, not their text), as the corpus writes them.
LUPUS_NUMBERS = [
    "2 mg/kg/day",  # lupus nephritis maintenance
    "100–200 mg",  # typical adult daily dose
    "2.5–5 mg/day",  # companion prednisone
    "3–5 years",  # maintenance duration
    "1–3 mg/kg/day",  # non-renal lupus
    "50–200 mg",  # typical adult daily dose, non-renal
    "50–100 mg",  # starting dose
    "25%",  # allopurinol: reduce to a quarter
    "8 weeks",  # weekly blood counts for the first 8 weeks
]
USAGE_NUMBERS = [
    "1–2 mg/kg/day",  # headline range for autoimmune disease and transplantation
    "50 mg/day",  # starting dose
    "1 mg/kg/day",  # AIH with prednisolone / RA start
    "2 mg/kg/day",
    "2 years",  # AIH duration
    "12 months",  # after transaminases normalise
]


@pytest.fixture(scope="module")
def real(corpus_assistant: Assistant) -> Assistant:
    if not any(CORPUS.glob("aza-*.md")):
        pytest.skip("the azathioprine corpus is not present")
    return corpus_assistant


def _assert_cited_and_verified(result: AnswerResult, numbers: list[str]) -> None:
    assert result.status == "verified", result.answer
    assert all(c.status in ("supported", "derived") for c in result.claims)
    cited = {c.n for c in result.citations}
    for number in numbers:
        hits = [c for c in result.claims if number in c.text]
        assert hits, f"{number} missing from the answer"
        assert any(c.status == "supported" and c.citation_n in cited for c in hits), number
    assert "TPMT" in result.answer


def test_lupus_reference_question_has_every_key_number(real: Assistant) -> None:
    result = real.ask(LUPUS_Q)
    _assert_cited_and_verified(result, LUPUS_NUMBERS)
    # The headline leads with lupus nephritis maintenance, as the reference does.
    assert "2 mg/kg/day" in result.summary and "3–5 years" in result.summary


def test_usage_reference_question_has_every_key_number(real: Assistant) -> None:
    result = real.ask(USAGE_Q)
    _assert_cited_and_verified(result, USAGE_NUMBERS)
    assert "1–2 mg/kg/day" in result.summary
    assert "### Pharmacogenomics" in result.answer and "### Duration" in result.answer


@pytest.mark.parametrize(
    ("question", "dose", "foreign"),
    [
        ("CellCept dose after kidney transplant", "1000 mg twice daily", "3000 mg/day"),
        ("mycophenolate mofetil dose heart transplant", "1500 mg twice daily", "3000 mg/day"),
    ],
)
def test_a_transplant_question_leads_with_the_transplant_dose_not_lupus_nephritis_doses(
    real: Assistant, question: str, dose: str, foreign: str
) -> None:
    result = real.ask(question)
    assert result.status == "verified", result.answer
    assert dose in result.summary
    # The ALMS lupus nephritis induction target answers another question.
    assert foreign not in result.summary


def test_direct_sentences_answer_the_asked_question_not_a_side_regimen(real: Assistant) -> None:
    """One bold sentence: the usage question leads with the band for both indications (not the
    transplant induction dose), the methotrexate question with the drug's own starting dose
    (not the split-dose alternative)."""
    usage = real.ask(USAGE_Q)
    first = usage.answer.split("\n", 1)[0]
    assert first.startswith("**") and first.endswith("**") and first.count("**") == 2
    assert "1–2 mg/kg/day" in first and "3–5 mg/kg/day" not in first
    mtx = real.ask("What is the dose of methotrexate for rheumatoid arthritis?")
    assert mtx.status == "verified", mtx.answer
    assert "split" not in mtx.summary and "Methotrexate" in mtx.summary
    assert "rheumatoid arthritis" in mtx.summary


def test_patient_dose_stays_when_two_sources_of_one_passage_disagree(real: Assistant) -> None:
    # The lupus nephritis maintenance passage carries a secondary summary (2 mg/kg/day) and a
    # guideline (1.5–2 mg/kg/day): the note tells them apart by evidence tag. Written as words
    # ("(secondary summary)") the guard held both figures to that source, failed the note and
    # dropped the patient block with it.
    result = real.ask(
        "What is the azathioprine dose for lupus nephritis maintenance for this patient?",
        patient={"weight_kg": 72, "tpmt": "normal", "nudt15": "normal"},
    )
    assert result.status == "verified"
    assert "144 mg/day" in result.answer
    note = next(line for line in result.answer.splitlines() if "Sources differ" in line)
    assert "(secondary summary)" not in note and "[secondary summary ·" in note
