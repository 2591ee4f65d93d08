"""check_answer: one behaviour per verdict status, citation scope, drug attachment, fail-closed,
and the limit table loader."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from guardrails import (
    LimitsFileError,
    Passage,
    Status,
    check_answer,
    load_limits,
    validate_patient,
)

FIXTURE_LIMITS = Path(__file__).parent / "fixtures" / "limits_test.toml"

AZA_LUPUS = Passage(
    1,
    "Azathioprine LN maintenance, secondary summary: 2 mg/kg/day, typically 100–200 mg/day in "
    "adults [@drorac-lupus-2025]. With azathioprine, give low-dose prednisone at 2.5–5 mg/day "
    "[@drorac-lupus-2025].",
    drugs=("azathioprine", "prednisone"),
)
PRED_ONLY = Passage(
    2, "Prednisone is tapered to 2.5–5 mg/day during maintenance.", drugs=("prednisone",)
)
MTX = Passage(
    3,
    "Methotrexate for rheumatoid arthritis: 7.5–20 mg once weekly [@mtx-label].",
    drugs=("methotrexate",),
)
INTERACTION = Passage(
    4,
    "With allopurinol, reduce azathioprine to one-third to one-quarter of the usual dose "
    "[@zyloprim-label]. Secondary summaries say reduce azathioprine to 25 % [@x].",
    drugs=("azathioprine", "allopurinol"),
)
ALL = [AZA_LUPUS, PRED_ONLY, MTX, INTERACTION]


@pytest.fixture(scope="module")
def limits():
    return load_limits(FIXTURE_LIMITS)


def only(verdict):
    assert verdict.error is None, verdict.error
    assert len(verdict.claims) == 1, [c.claim.text for c in verdict.claims]
    return verdict.claims[0]


def test_supported_claim_points_to_passage_and_source_span():
    v = check_answer("Azathioprine 2 mg/kg/day [1].", ALL)
    c = only(v)
    assert v.passed and c.status is Status.SUPPORTED and c.passage_n == 1
    s, e = c.source_span
    assert AZA_LUPUS.text[s:e] == "2 mg/kg/day"


def test_supported_after_unit_and_frequency_normalisation():
    v = check_answer("Azathioprine usually 100-200 mg daily [1]; or 0.1–0.2 g/day [1].", ALL)
    assert v.passed, [c.reason for c in v.claims]


def test_answer_without_numbers_passes():
    v = check_answer("Check TPMT before the first dose [1].", ALL)
    assert v.passed and v.claims == ()


def test_unsupported_number_blocks_the_answer():
    v = check_answer("Azathioprine 4 mg/kg/day [1].", ALL)
    c = only(v)
    assert not v.passed and c.status is Status.UNSUPPORTED and v.failed == (c,)


def test_citation_scopes_support_to_the_cited_passage():
    # 7.5–20 mg once weekly is in [3], not in [1].
    v = check_answer("Methotrexate 7.5–20 mg once weekly [1].", ALL)
    assert not v.passed
    assert check_answer("Methotrexate 7.5–20 mg once weekly [3].", ALL).passed


def test_uncited_sentence_may_be_supported_by_any_passage():
    assert check_answer("Methotrexate 7.5–20 mg once weekly.", ALL).passed


def test_citing_a_passage_that_does_not_exist_is_unsupported():
    c = only(check_answer("Azathioprine 2 mg/kg/day [9].", ALL))
    assert c.status is Status.UNSUPPORTED and "[9]" in c.reason


def test_grams_instead_of_milligrams_is_a_unit_mismatch():
    c = only(check_answer("Azathioprine 2 g/kg/day [1].", ALL))
    assert c.status is Status.UNIT_MISMATCH


def test_per_week_instead_of_per_day_is_a_unit_mismatch():
    c = only(check_answer("Prednisone 2.5–5 mg/week [2].", ALL))
    assert c.status is Status.UNIT_MISMATCH


def test_dropping_per_kg_is_a_unit_mismatch():
    c = only(check_answer("Azathioprine 2 mg/day [1].", ALL))
    assert c.status is Status.UNIT_MISMATCH


def test_prednisone_dose_presented_as_azathioprine_dose_is_not_supported():
    c = only(check_answer("Azathioprine 2.5–5 mg/day [2].", ALL))
    assert c.status is Status.UNSUPPORTED and "prednisone" in c.reason


def test_drug_named_after_the_number_is_attached():
    v = check_answer("Take 2.5–5 mg/day of prednisone [2].", ALL)
    assert v.passed and v.claims[0].drug == "prednisone"


def test_swapped_range_is_unsupported_with_reason():
    c = only(check_answer("Azathioprine 200–100 mg/day [1].", ALL))
    assert c.status is Status.UNSUPPORTED and "swapped" in c.reason


def test_opposite_qualifier_is_unsupported():
    src = [Passage(1, "Azathioprine: up to 3 mg/kg/day.", drugs=("azathioprine",))]
    assert not check_answer("Azathioprine: at least 3 mg/kg/day [1].", src).passed
    assert check_answer("Azathioprine: maximum 3 mg/kg/day [1].", src).passed


def test_fraction_in_source_supports_the_same_fraction_only():
    assert check_answer("Reduce azathioprine to one-third to one-quarter [4].", ALL).passed
    assert not check_answer("Reduce azathioprine to one-quarter to one-third [4].", ALL).passed


def test_daily_methotrexate_is_out_of_limits_even_if_a_source_said_so(limits):
    src = [Passage(1, "Methotrexate 7.5 mg daily.", drugs=("methotrexate",))]
    c = only(check_answer("Methotrexate 7.5 mg daily [1].", src, limits=limits))
    assert c.status is Status.OUT_OF_LIMITS and "weekly" in c.reason


def test_weekly_methotrexate_within_limits_passes(limits):
    assert check_answer("Methotrexate 7.5–20 mg once weekly [3].", ALL, limits=limits).passed


def test_dose_above_the_limit_row_is_out_of_limits(limits):
    src = [Passage(1, "Azathioprine 5 mg/kg/day.", drugs=("azathioprine",))]
    c = only(check_answer("Azathioprine 5 mg/kg/day [1].", src, limits=limits))
    assert c.status is Status.OUT_OF_LIMITS


def test_oncology_indication_allows_rows_that_otherwise_do_not_apply(limits):
    src = [Passage(1, "Methotrexate 3000 mg/m2 as a single dose.", drugs=("methotrexate",))]
    answer = "Methotrexate 3000 mg/m2 [1]."
    assert check_answer(
        answer, src, limits=limits, indication="acute lymphoblastic leukemia"
    ).passed


def test_per_kg_total_that_does_not_follow_is_out_of_limits():
    patient = validate_patient(72, "normal", "normal", [])
    v = check_answer("Azathioprine 2 mg/kg/day [1] × 72 kg = 150 mg/day.", ALL, patient=patient)
    statuses = [c.status for c in v.claims]
    assert statuses == [Status.SUPPORTED, Status.DERIVED, Status.OUT_OF_LIMITS]


def test_per_kg_total_from_stated_weight_is_derived_when_arithmetic_holds():
    patient = validate_patient(72, "normal", "normal", [])
    v = check_answer("Azathioprine 2 mg/kg/day [1] × 72 kg = 144 mg/day.", ALL, patient=patient)
    assert v.passed
    assert v.claims[2].status is Status.DERIVED and v.claims[2].derivation is not None


def test_derived_dose_with_allopurinol_adjustment():
    patient = validate_patient(75, "normal", "normal", ["allopurinol"])
    answer = "With allopurinol, azathioprine 37.5 mg/day (2 mg/kg/day [1] reduced to 25 % [4])."
    v = check_answer(answer, ALL, patient=patient, drug="azathioprine")
    first = v.claims[0]
    assert v.passed, [(c.claim.text, c.reason) for c in v.claims]
    assert first.status is Status.DERIVED and "25" in first.reason


def test_number_equal_to_no_derivation_is_unsupported_not_derived():
    patient = validate_patient(75, "normal", "normal", [])
    v = check_answer("Azathioprine: 151 mg/day.", ALL, patient=patient, drug="azathioprine")
    assert not v.passed


def test_weight_other_than_the_patient_weight_is_not_derived():
    patient = validate_patient(72, "normal", "normal", [])
    v = check_answer("For this patient (720 kg).", ALL, patient=patient)
    assert not v.passed


@pytest.mark.parametrize("bad", [None, 42, b"2 mg"])
def test_non_text_answer_fails_closed(bad):
    v = check_answer(bad, ALL)  # type: ignore[arg-type]
    assert not v.passed and v.error


def test_bad_passage_object_fails_closed():
    v = check_answer("Azathioprine 2 mg/kg/day [1].", ["not a passage"])  # type: ignore[list-item]
    assert not v.passed and v.error and v.badge.startswith("Guard failed")


def test_internal_error_fails_closed(monkeypatch):
    import guardrails.verify as verify

    def boom(*args, **kwargs):
        raise RuntimeError("index exploded")

    monkeypatch.setattr(verify, "_index", boom)
    v = check_answer("Azathioprine 2 mg/kg/day [1].", ALL)
    assert not v.passed and "index exploded" in v.error


def test_limit_check_reports_within_row(limits):
    from guardrails import parse_quantities

    q = parse_quantities("2 mg/kg/day")[0]
    ok, why = limits.check("azathioprine", q)
    assert ok and "0.5–3 mg/kg/day" in why


def test_mg_per_day_checked_against_per_kg_limit_for_a_given_weight(limits):
    from guardrails import parse_quantities

    q = parse_quantities("290 mg/day")[0]
    assert limits.check("azathioprine", q)[0]
    assert not limits.check("azathioprine", q, weight_kg=Decimal(50))[0]


def test_packaged_limit_table_loads():
    table = load_limits()
    assert "azathioprine" in table.drugs and "methotrexate" in table.drugs


@pytest.mark.parametrize(
    "body,message",
    [
        ("", "no [[limit]] rows"),
        ("[[limit]]\ndrug='x'\nbasis='mg/day'\nmin='1'\n", "missing max"),
        ("[[limit]]\ndrug='x'\nbasis='mg/fortnight'\nmin='1'\nmax='2'\n", "unknown basis"),
        ("[[limit]]\ndrug='x'\nbasis='mg/day'\nmin='5'\nmax='2'\n", "greater than max"),
        ("[[limit]]\ndrug='x'\nbasis='mg/day'\nmin='one'\nmax='2'\n", "not a number"),
        ("[[limit]]\ndrug='X'\nbasis='mg/day'\nmin='1'\nmax='2'\n", "lower-case"),
        (
            "[[limit]]\ndrug='x'\nbasis='mg/day'\nmin='1'\nmax='2'\nfrequency='hourly'\n",
            "unknown frequency",
        ),
        ("[[limit]\n", "not valid TOML"),
    ],
)
def test_malformed_limit_rows_raise_a_clear_error(tmp_path, body, message):
    path = tmp_path / "limits.toml"
    path.write_text(body)
    with pytest.raises(LimitsFileError, match=message.replace("[", r"\[")):
        load_limits(path)


def test_missing_limit_file_raises_a_clear_error(tmp_path):
    with pytest.raises(LimitsFileError, match="cannot read"):
        load_limits(tmp_path / "absent.toml")


def test_limit_check_uses_the_only_drug_of_the_sentence_when_the_clause_names_none(limits):
    src = [Passage(1, "Psoriasis: 10–25 mg daily.", drugs=("methotrexate",))]
    answer = "Methotrexate for arthritis is weekly [1]; psoriasis 10–25 mg daily [1]."
    c = check_answer(answer, src, limits=limits, drug="azathioprine").claims[0]
    assert c.status is Status.OUT_OF_LIMITS and c.drug == "methotrexate"


def test_limit_check_does_not_borrow_a_drug_from_a_multi_drug_sentence():
    # 1–3 mg/kg/day would be far above prednisone's mg/kg/day row; it is azathioprine's dose.
    table = load_limits()
    answer = (
        "Azathioprine 2 mg/kg/day [1] with prednisone 2.5–5 mg/day [1]; non-renal lupus: "
        "1–3 mg/kg/day [2]."
    )
    src = [
        AZA_LUPUS,
        Passage(2, "Azathioprine for non-renal SLE: 1–3 mg/kg/day.", drugs=("azathioprine",)),
    ]
    assert check_answer(answer, src, limits=table).passed


def test_limit_statement_is_derived_from_the_table_and_not_dose_checked(limits):
    patient = validate_patient(72, "normal", "normal", [])
    answer = "Azathioprine: within the limit of up to 3 mg/kg/day = 216 mg/day."
    v = check_answer(answer, ALL, patient=patient, limits=limits, drug="azathioprine")
    assert v.passed and all(c.status is Status.DERIVED for c in v.claims)
    wrong = "Azathioprine: within the limit of up to 3 mg/kg/day = 260 mg/day."
    assert not check_answer(wrong, ALL, patient=patient, limits=limits, drug="azathioprine").passed


# -- derivation lines: the calculator's own steps, written out in a patient block ------------------
CPIC_INT = Passage(
    13,
    "Azathioprine, CPIC 2018, TPMT or NUDT15 intermediate metabolizer: start at 30–80% of the "
    "normal dose when the normal starting dose is 2–3 mg/kg/day [@cpic-2018].",
    drugs=("azathioprine",),
)
DERIVATION_PASSAGES = [AZA_LUPUS, INTERACTION, CPIC_INT]


def _derivation_line(patient, result_text, limits=None):
    from guardrails import calculate

    (d,) = [
        d
        for d in calculate(DERIVATION_PASSAGES, patient, limits, "azathioprine")
        if d.result.text == result_text
    ]
    return d, f"### For this patient\n- {d.explanation} — within the dose limits"


def test_derivation_line_with_step_citations_passes_with_inputs_supported_and_outputs_derived():
    patient = validate_patient(72, "intermediate", "normal", ["allopurinol"])
    d, answer = _derivation_line(patient, "43.2–115.2 mg/day")
    assert "(from [13])" in answer and "144 mg/day" in answer
    v = check_answer(answer, DERIVATION_PASSAGES, patient, load_limits(), "azathioprine")
    assert v.passed, [(c.claim.text, c.reason) for c in v.failed]
    status = {c.claim.text: c.status for c in v.claims}
    assert status["2 mg/kg/day"] is Status.SUPPORTED
    assert status["30–80%"] is Status.SUPPORTED
    assert status["72 kg"] is Status.DERIVED
    assert status["144 mg/day"] is Status.DERIVED
    assert status["43.2–115.2 mg/day"] is Status.DERIVED
    pct = next(c for c in v.claims if c.claim.text == "30–80%")
    assert pct.passage_n == 13  # scoped by its own step's "(from [13])"


def test_derivation_line_inputs_are_found_in_the_passage_each_step_cites():
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    _, answer = _derivation_line(patient, "36 mg/day")
    v = check_answer(answer, DERIVATION_PASSAGES, patient, load_limits(), "azathioprine")
    assert v.passed, [(c.claim.text, c.reason) for c in v.failed]
    by_text = {c.claim.text: c for c in v.claims}
    assert by_text["25%"].status is Status.SUPPORTED and by_text["25%"].passage_n == 4
    assert by_text["36 mg/day"].status is Status.DERIVED
    assert by_text["36 mg/day"].derivation is not None


def test_derivation_line_with_a_changed_result_is_not_read_as_a_derivation():
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    _, answer = _derivation_line(patient, "36 mg/day")
    tampered = answer.replace("→ 36 mg/day", "→ 72 mg/day")
    v = check_answer(tampered, DERIVATION_PASSAGES, patient, load_limits(), "azathioprine")
    assert not v.passed
    assert any(c.claim.text == "72 mg/day" for c in v.failed)


def test_derivation_line_for_another_weight_is_not_derived():
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    _, answer = _derivation_line(patient, "36 mg/day")
    other = validate_patient(80, "normal", "normal", ["allopurinol"])
    v = check_answer(answer, DERIVATION_PASSAGES, other, load_limits(), "azathioprine")
    assert not v.passed


def test_times_sign_alone_gives_no_free_pass():
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    answer = "- for co-medication with allopurinol: × 25% (from [4]): 144 mg/day → 40 mg/day"
    v = check_answer(answer, DERIVATION_PASSAGES, patient, load_limits(), "azathioprine")
    assert any(c.claim.text == "40 mg/day" for c in v.failed)


def test_derivation_line_input_missing_from_its_cited_passage_is_not_supported():
    patient = validate_patient(72, "intermediate", "normal", [])
    d, answer = _derivation_line(patient, "43.2–115.2 mg/day")
    # Same arithmetic, but the passage no longer states the percentage.
    stripped = Passage(13, "Azathioprine, CPIC: intermediate metabolizers need a lower dose.",
                       drugs=("azathioprine",))  # fmt: skip
    v = check_answer(answer, [AZA_LUPUS, INTERACTION, stripped], patient, load_limits(),
                     "azathioprine")  # fmt: skip
    assert not v.passed
