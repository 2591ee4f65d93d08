"""The guard verifies what a number doses, not only that it appears: same drug, a compatible
role, indication and population, and an answer about the drug asked."""

from __future__ import annotations

from guardrails import Status, check_answer
from guardrails.model import Passage, Role

TRANSPLANT = Passage(
    1,
    "Renal transplant: azathioprine 3–5 mg/kg/day at first, later 1–3 mg/kg/day [@imuran-label].",
    doc_id="aza-label",
    drugs=("azathioprine",),
    evidence=(("imuran-label", "label"),),
    doc_kind="article",
)
LUPUS = Passage(
    2,
    "Lupus nephritis maintenance after induction: azathioprine 2 mg/kg/day [@kdigo].",
    doc_id="aza-lupus",
    drugs=("azathioprine",),
    evidence=(("kdigo", "guideline"),),
)
COMBO = Passage(
    3,
    "With allopurinol 300–600 mg/day, reduce azathioprine to one-third to one-quarter of the "
    "usual dose [@zyloprim].",
    drugs=("azathioprine", "allopurinol"),
)
CHILD = Passage(
    4, "In children, mycophenolate 600 mg/m2 twice daily [@cellcept].", drugs=("mycophenolate",)
)


def verdict(answer: str, *passages: Passage, drug: str | None = "azathioprine"):
    return check_answer(answer, list(passages) or [TRANSPLANT, LUPUS, COMBO, CHILD], drug=drug)


def test_true_answers_pass_with_their_statement_and_role() -> None:
    v = verdict(
        "After renal transplant, start azathioprine at 3–5 mg/kg/day [1], later 1–3 mg/kg/day [1]."
    )
    assert v.passed, [(c.claim.text, c.reason) for c in v.failed]
    first = v.claims[0]
    assert first.statement is not None and first.statement.role is Role.INITIAL
    assert first.statement.evidence == "label" and first.role is Role.INITIAL
    assert "initial dose, transplant rejection" in first.statement.describe()


def test_drug_swap_inside_one_sentence_is_blocked() -> None:
    # 300–600 mg/day doses allopurinol in the source, not azathioprine.
    v = verdict("Azathioprine 300–600 mg/day [3].")
    assert not v.passed
    assert "allopurinol" in v.failed[0].reason


def test_role_swap_is_blocked() -> None:
    v = verdict("For renal transplant, the maintenance dose is 3–5 mg/kg/day [1].")
    assert not v.passed and "initial" in v.failed[0].reason
    v = verdict("Do not exceed 1–3 mg/kg/day after renal transplant [1].")
    assert not v.passed


def test_indication_swap_is_blocked() -> None:
    v = verdict("In lupus nephritis, azathioprine 1–3 mg/kg/day [1].")
    assert not v.passed and "transplant rejection" in v.failed[0].reason
    assert verdict("In lupus nephritis, azathioprine 2 mg/kg/day [2].").passed


def test_population_swap_is_blocked() -> None:
    v = verdict("In adults, mycophenolate 600 mg/m2 twice daily [4].", drug="mycophenolate")
    assert not v.passed and "pediatric" in v.failed[0].reason
    assert verdict(
        "In children, mycophenolate 600 mg/m2 twice daily [4].", drug="mycophenolate"
    ).passed


def test_an_answer_about_another_drug_is_never_verified() -> None:
    v = verdict("Azathioprine 2 mg/kg/day [2].", drug="vancomycin")
    assert not v.passed
    assert all(c.status is Status.UNSUPPORTED for c in v.claims)
    assert "vancomycin" in v.failed[0].reason


def test_a_number_naming_no_drug_is_about_the_drug_asked() -> None:
    v = verdict("The usual dose is 2 mg/kg/day [2].", drug="vancomycin")
    assert not v.passed


def test_a_companion_drug_beside_the_asked_one_stays_verified() -> None:
    v = verdict(
        "With allopurinol 300–600 mg/day, reduce azathioprine to one-third to "
        "one-quarter of the usual dose [3]."
    )
    assert v.passed, [(c.claim.text, c.reason) for c in v.failed]


def test_reduction_by_is_not_reduction_to() -> None:
    cpic = Passage(
        1,
        "TPMT intermediate metabolizers: reduce the dose by 30–50 % [@cpic].",
        drugs=("azathioprine",),
    )
    assert verdict("TPMT intermediate: reduce the dose by 30–50 % [1].", cpic).passed
    v = verdict("TPMT intermediate: reduce the dose to 30–50 % [1].", cpic)
    assert not v.passed and "reduction by" in v.failed[0].reason
