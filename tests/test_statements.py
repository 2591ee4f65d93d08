"""Dose statements: each number's drug, role, indication, population, route and condition."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails import calculate, validate_patient
from guardrails.model import Passage, Role
from guardrails.statements import extract_statements, roles_compatible, statements_of


def roles(
    text: str, drugs: tuple[str, ...] = ("azathioprine",), **kw: object
) -> list[tuple[str, Role]]:
    return [(s.quantity.text, s.role) for s in extract_statements(text, drugs=drugs, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "number", "role"),
    [
        ("Start azathioprine at 1 mg/kg/day.", "1 mg/kg/day", Role.INITIAL),
        ("Induction: 3 mg/kg/day.", "3 mg/kg/day", Role.INITIAL),
        ("After induction, azathioprine 2 mg/kg/day.", "2 mg/kg/day", Role.MAINTENANCE),
        ("Maintenance: 2 mg/kg/day.", "2 mg/kg/day", Role.MAINTENANCE),
        ("Typically 100–200 mg/day in adults.", "100–200 mg/day", Role.USUAL),
        ("Do not exceed 2.5 mg/kg/day.", "2.5 mg/kg/day", Role.MAXIMUM),
        ("Raise the dose by 0.5 mg/kg/day.", "0.5 mg/kg/day", Role.STEP),
        ("Taper prednisone in steps of 5 mg/day.", "5 mg/day", Role.STEP),
        ("Intermediate TPMT: reduce the dose by 30–50 %.", "30–50 %", Role.REDUCTION_BY),
        ("Intermediate TPMT: start at 30–80 % of the normal dose.", "30–80 %", Role.REDUCTION_TO),
        ("Reduce azathioprine to 25 % with allopurinol.", "25 %", Role.REDUCTION_TO),
        ("Target 6-TGN 235–400 pmol/8×10^8 RBC.", "235–400 pmol/8×10^8 RBC", Role.TARGET),
        ("Stop if platelets fall below 100,000/mm3.", "100,000/mm3", Role.THRESHOLD),
        ("Check blood counts every 2 weeks.", "2 weeks", Role.MONITORING),
        ("Continue for at least 3 years.", "3 years", Role.DURATION),
        ("Flares occurred in 25 % of patients.", "25 %", Role.OUTCOME),
    ],
)
def test_each_role_is_read_from_its_sentence(text: str, number: str, role: Role) -> None:
    found = dict(roles(text))
    assert found[number] is role, found


def test_one_sentence_gives_each_number_its_own_role() -> None:
    text = (
        "In RA, start at 1 mg/kg/day (50–100 mg), raise by 0.5 mg/kg/day every 4 weeks to at "
        "most 2.5 mg/kg/day."
    )
    assert roles(text) == [
        ("1 mg/kg/day", Role.INITIAL),
        ("50–100 mg", Role.INITIAL),
        ("0.5 mg/kg/day", Role.STEP),
        ("4 weeks", Role.INTERVAL),
        ("2.5 mg/kg/day", Role.MAXIMUM),
    ]


def test_a_phase_written_after_the_number_counts() -> None:
    assert roles("Renal transplant: 3–5 mg/kg/day at first, later 1–3 mg/kg/day.") == [
        ("3–5 mg/kg/day", Role.INITIAL),
        ("1–3 mg/kg/day", Role.MAINTENANCE),
    ]


def test_heading_names_the_phase_when_the_sentence_does_not() -> None:
    (s,) = extract_statements("Azathioprine 2 mg/kg/day.", section="Maintenance therapy")
    assert s.role is Role.MAINTENANCE
    (s,) = extract_statements("Azathioprine 2 mg/kg/day.", section="Induction and maintenance")
    assert s.role is Role.USUAL


def test_the_drug_of_a_figure_is_the_one_it_doses() -> None:
    text = "With allopurinol 300–600 mg/day, cut azathioprine to one-third to one-quarter of the usual dose."
    first, second = extract_statements(text, drugs=("azathioprine", "allopurinol"))
    assert first.drug == "allopurinol" and first.role is Role.USUAL
    assert second.drug == "azathioprine" and second.role is Role.REDUCTION_TO
    assert second.conditions == ("comedication:allopurinol",)


def test_conditions_phenotype_kidney_and_liver() -> None:
    (s,) = extract_statements(
        "TPMT or NUDT15 intermediate metabolizers: start at 30–80 % of normal dose."
    )
    assert set(s.conditions) == {"tpmt:intermediate", "nudt15:intermediate"}
    kidney = extract_statements(
        "CrCl 10–20 mL/min: allopurinol 200 mg/day.", drugs=("allopurinol",)
    )
    assert all("kidney:impaired" in s.conditions for s in kidney)
    (liver,) = extract_statements("In hepatic impairment, start at the lowest dose of 25 mg.")
    assert "liver:impaired" in liver.conditions


def test_indication_population_route_and_frequency() -> None:
    (s,) = extract_statements(
        "Lupus nephritis: azathioprine 2 mg/kg/day [@kdigo].", evidence={"kdigo": "guideline"}
    )
    assert s.indications == ("lupus nephritis",) and s.evidence == "guideline"
    assert s.citation == "kdigo" and s.frequency == "daily"
    (child, cap) = extract_statements(
        "In children, mycophenolate 600 mg/m2 twice daily up to 2 g/day."
    )
    assert child.population == "pediatric" and child.frequency == "twice daily"
    assert cap.role is Role.MAXIMUM
    (iv, *_) = extract_statements("Cyclophosphamide 500 mg IV every 2 weeks for 6 doses.")
    assert iv.route == "iv"
    # "ra" inside a word is no rheumatoid arthritis; "RA" is.
    (s,) = extract_statements("Give 50 mg/day with a meal rarely.")
    assert s.indications == ()
    (s,) = extract_statements("In RA give 50 mg/day.")
    assert s.indications == ("rheumatoid arthritis",)


def test_document_indications_apply_when_the_sentence_names_none() -> None:
    (s,) = extract_statements("Azathioprine 2 mg/kg/day.", indications=("autoimmune hepatitis",))
    assert s.indications == ("autoimmune hepatitis",)


def test_passage_kind_sets_the_default_evidence() -> None:
    label = Passage(1, "The usual dose is 50 mg daily.", doc_id="l", doc_kind="label")
    local = Passage(2, "The usual dose is 50 mg daily.", doc_id="h", doc_kind="pdf")
    assert statements_of(label)[0].evidence == "label"
    assert statements_of(local)[0].evidence == "local document"


def test_statement_ids_are_stable_and_distinct() -> None:
    text = "Start at 1 mg/kg/day, then 2 mg/kg/day."
    a = extract_statements(text, doc_id="d", section="Dosing")
    b = extract_statements(text, doc_id="d", section="Dosing")
    assert [s.id for s in a] == [s.id for s in b]
    assert len({s.id for s in a}) == 2


def test_roles_compatible_only_when_either_side_is_plain_or_both_agree() -> None:
    assert roles_compatible(Role.INITIAL, Role.INITIAL)
    assert roles_compatible(Role.USUAL, Role.MAINTENANCE)
    assert roles_compatible(Role.INITIAL, Role.UNKNOWN)
    assert not roles_compatible(Role.INITIAL, Role.MAINTENANCE)
    assert not roles_compatible(Role.REDUCTION_BY, Role.REDUCTION_TO)
    assert not roles_compatible(Role.MAXIMUM, Role.STEP)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            list("abc TPMT start by to reduce 0123456789.,;%-–/mgkday()[]@\n")
        ),
        max_size=200,
    )
)
def test_extraction_never_raises(text: str) -> None:
    for s in extract_statements(text, doc_id="x", drugs=("azathioprine",)):
        assert isinstance(s.role, Role)
        assert 0 <= s.span[0] <= s.span[1] <= len(text)


# -- the calculator reads roles ---------------------------------------------------------------


def test_a_taper_step_is_never_multiplied_by_the_weight() -> None:
    p = Passage(1, "Prednisone is tapered in steps of 0.5 mg/kg/day.", drugs=("prednisone",))
    patient = validate_patient(60, None, None, [])
    assert calculate([p], patient, None, "prednisone") == ()


def test_a_reduction_by_gives_what_remains() -> None:
    p = Passage(
        1,
        "Azathioprine 2 mg/kg/day. TPMT intermediate metabolizers: reduce the dose by 30–50 %.",
        drugs=("azathioprine",),
    )
    patient = validate_patient(60, "intermediate", "normal", [])
    results = {(d.result.low, d.result.high) for d in calculate([p], patient, None, "azathioprine")}
    # 120 mg/day × (100 % − 30–50 %) = 60–84 mg/day, never 36–60 mg/day.
    assert (Decimal("60.0"), Decimal("84.0")) in results
    assert (Decimal("36.0"), Decimal("60.0")) not in results


def test_a_reduction_applies_only_when_its_condition_holds() -> None:
    p = Passage(
        1,
        "Azathioprine 2 mg/kg/day. With allopurinol, reduce azathioprine to 25 %.",
        drugs=("azathioprine", "allopurinol"),
    )
    without = calculate([p], validate_patient(60, None, None, []), None, "azathioprine")
    with_ = calculate([p], validate_patient(60, None, None, ["allopurinol"]), None, "azathioprine")
    assert {d.result.low for d in without} == {Decimal("120.0")}
    assert Decimal("30.0") in {d.result.low for d in with_}


def test_outcome_and_threshold_figures_are_never_bases() -> None:
    p = Passage(
        1,
        "Flares occurred in 25 % of patients on 2 mg/kg/day. Stop if neutrophils fall "
        "below 1.5 x 10^9/L.",
        drugs=("azathioprine",),
    )
    results = calculate([p], validate_patient(60, "intermediate", None, []), None, "azathioprine")
    assert all("25" not in " ".join(d.steps) for d in results)
