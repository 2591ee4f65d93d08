"""Dose calculator: patient validation and step-by-step derivations."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest

from guardrails import Passage, PatientInputError, calculate, load_limits, validate_patient

LIMITS = Path(__file__).parent / "fixtures" / "limits_test.toml"

AZA = Passage(
    1,
    "Azathioprine LN maintenance: 2 mg/kg/day, typically 100–200 mg/day in adults.",
    drugs=("azathioprine",),
)
ALLOPURINOL = Passage(
    2, "With allopurinol 300–600 mg/day, reduce azathioprine to one-third to one-quarter of the "
       "usual dose. Summaries: reduce azathioprine to 25 % with allopurinol.",
    drugs=("azathioprine", "allopurinol"))  # fmt: skip
CPIC = Passage(
    3, "TPMT intermediate metabolizers: start azathioprine at 30–80 % of the normal dose.",
    drugs=("azathioprine",))  # fmt: skip
PRED = Passage(4, "Prednisone 0.5 mg/kg/day for induction.", drugs=("prednisone",))


def results(derivations):
    return {d.result.text for d in derivations}


@pytest.mark.parametrize("weight", [0, -5, "0", Decimal("-1")])
def test_weight_zero_or_negative_is_rejected(weight):
    with pytest.raises(PatientInputError, match="greater than 0"):
        validate_patient(weight, "normal", "normal", [])


def test_weight_above_300_kg_is_rejected_with_pounds_hint():
    with pytest.raises(PatientInputError, match="pounds"):
        validate_patient(301, "normal", "normal", [])


@pytest.mark.parametrize("weight", ["heavy", "72 lb", [], math.nan, math.inf, True])
def test_non_numeric_weight_is_rejected(weight):
    with pytest.raises(PatientInputError):
        validate_patient(weight, "normal", "normal", [])


def test_weight_accepts_strings_floats_and_kg_suffix():
    assert validate_patient("72", None, None, None).weight_kg == Decimal("72")
    assert validate_patient(72.5, None, None, None).weight_kg == Decimal("72.5")
    assert validate_patient("80 kg", None, None, None).weight_kg == Decimal("80")


def test_missing_weight_is_allowed_but_derives_no_per_kg_dose():
    patient = validate_patient(None, "normal", "normal", [])
    assert patient.weight_kg is None
    assert calculate([AZA], patient, None, "azathioprine") == ()


@pytest.mark.parametrize("alias,canonical", [
    ("normal metabolizer", "normal"), ("NM", "normal"), ("IM", "intermediate"),
    ("heterozygous", "intermediate"), ("Poor Metabolizer", "poor"), ("homozygous", "poor"),
    (None, "unknown"), ("not tested", "unknown"), ("  Intermediate  ", "intermediate"),
])  # fmt: skip
def test_phenotype_aliases(alias, canonical):
    assert validate_patient(70, alias, alias, []).tpmt == canonical


def test_unknown_phenotype_is_rejected_with_accepted_values():
    with pytest.raises(PatientInputError, match="normal, intermediate, poor or unknown"):
        validate_patient(70, "ultrarapid", "normal", [])


def test_comedications_are_normalised_and_brand_names_mapped():
    p = validate_patient(70, "normal", "normal", " Zyloprim , prednisone,")
    assert p.comedications == ("allopurinol", "prednisone")


def test_non_text_comedication_is_rejected():
    with pytest.raises(PatientInputError):
        validate_patient(70, "normal", "normal", [42])


def test_per_kg_dose_times_weight_with_steps():
    patient = validate_patient(75, "normal", "normal", [])
    (d,) = calculate([AZA], patient, None, "azathioprine")
    assert d.result.low == Decimal("150") and d.result.per == "day" and not d.result.per_kg
    assert d.steps == ("2 mg/kg/day × 75 kg = 150 mg/day (from [1])",)
    assert d.passage_n == 1 and d.drug == "azathioprine"


def test_result_is_rounded_half_up_to_a_tenth_of_a_milligram():
    patient = validate_patient("72.25", "normal", "normal", [])
    (d,) = calculate([AZA], patient, None, "azathioprine")
    assert d.result.low == Decimal("144.5")


def test_allopurinol_percentage_and_fraction_adjustments():
    patient = validate_patient(75, "normal", "normal", ["allopurinol"])
    out = results(calculate([AZA, ALLOPURINOL], patient, None, "azathioprine"))
    assert "37.5 mg/day" in out  # 150 mg/day × 25 %
    assert "37.5–50 mg/day" in out  # 150 mg/day × one-third to one-quarter


def test_range_result_is_low_to_high_when_the_fraction_is_written_high_to_low():
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    derived = calculate([AZA, ALLOPURINOL], patient, None, "azathioprine")
    ranges = [d.result for d in derived if d.result.is_range]
    assert ranges and all(q.low < q.high for q in ranges)
    d = next(d for d in derived if d.result.text == "36–48 mg/day")
    assert d.steps[-1].endswith("144 mg/day → 36–48 mg/day")
    # A range base takes the widest product: 100–200 mg/day × one-quarter..one-third.
    assert "25–66.7 mg/day" in results(derived)


def test_reduction_of_a_dose_within_limits_stays_within_limits_below_the_usual_minimum():
    limits = load_limits(LIMITS)
    patient = validate_patient(72, "intermediate", "normal", [])
    patient = validate_patient(72, "intermediate", "normal", ["allopurinol"])
    derived = {d.result.text: d for d in calculate([AZA, CPIC, ALLOPURINOL], patient, limits,
                                                    "azathioprine")}  # fmt: skip
    # 144 mg/day × 25 % × 30–80 %: below the table's 25 mg/day and 0.5 mg/kg/day minimums.
    reduced = derived["10.8–28.8 mg/day"]
    assert reduced.within_limits and "reduction" in reduced.limit_note


def test_reduction_of_a_dose_outside_the_limits_is_checked_on_its_own():
    limits = load_limits(LIMITS)
    heavy = validate_patient(150, "normal", "normal", ["allopurinol"])
    src = [Passage(1, "Azathioprine 3 mg/kg/day.", drugs=("azathioprine",)), ALLOPURINOL]
    derived = {d.result.text: d for d in calculate(src, heavy, limits, "azathioprine")}
    assert not derived["450 mg/day"].within_limits
    assert "reduction" not in derived["112.5 mg/day"].limit_note  # 450 mg/day × 25 %


def test_adjustment_steps_show_every_step():
    patient = validate_patient(75, "normal", "normal", ["allopurinol"])
    d = next(d for d in calculate([AZA, ALLOPURINOL], patient, None, "azathioprine")
             if d.result.text == "37.5 mg/day")  # fmt: skip
    assert d.steps[0].startswith("2 mg/kg/day × 75 kg = 150 mg/day")
    assert (
        "allopurinol" in d.steps[1] and "25%" in d.steps[1] and d.steps[1].endswith("37.5 mg/day")
    )


def test_no_allopurinol_means_no_allopurinol_adjustment():
    patient = validate_patient(75, "normal", "normal", [])
    assert "37.5 mg/day" not in results(
        calculate([AZA, ALLOPURINOL], patient, None, "azathioprine")
    )


def test_intermediate_phenotype_applies_the_cpic_percentage():
    patient = validate_patient(75, "intermediate", "normal", [])
    out = results(calculate([AZA, CPIC], patient, None, "azathioprine"))
    assert "45–120 mg/day" in out  # 150 mg/day × 30–80 %
    normal = validate_patient(75, "normal", "normal", [])
    assert "45–120 mg/day" not in results(calculate([AZA, CPIC], normal, None, "azathioprine"))


def test_poor_metabolizer_gets_no_computed_dose():
    patient = validate_patient(75, "poor", "normal", [])
    assert calculate([AZA, CPIC], patient, None, "azathioprine") == ()


def test_only_doses_of_the_requested_drug_are_used():
    patient = validate_patient(80, "normal", "normal", [])
    assert results(calculate([AZA, PRED], patient, None, "prednisone")) == {"40 mg/day"}


def test_results_are_checked_against_the_limit_table():
    limits = load_limits(LIMITS)
    heavy = validate_patient(120, "normal", "normal", [])
    src = [Passage(1, "Azathioprine 3 mg/kg/day.", drugs=("azathioprine",))]
    derived = {d.result.text: d for d in calculate(src, heavy, limits, "azathioprine")}
    # 3 mg/kg/day × 120 kg = 360 mg/day exceeds the 300 mg/day row.
    assert not derived["360 mg/day"].within_limits and "300" in derived["360 mg/day"].limit_note
    light = validate_patient(70, "normal", "normal", [])
    ok = {d.result.text: d for d in calculate(src, light, limits, "azathioprine")}
    assert ok["210 mg/day"].within_limits


def test_limit_per_kg_bound_is_offered_as_a_derivation():
    limits = load_limits(LIMITS)
    patient = validate_patient(72, "normal", "normal", [])
    out = results(calculate([AZA], patient, limits, "azathioprine"))
    assert "216 mg/day" in out  # 3 mg/kg/day limit × 72 kg


def _derivation_answer(prefix: str) -> tuple[str, tuple[Passage, ...], object]:
    # The two-step line (weight, then the allopurinol reduction): its inputs are verified as
    # the derivation's, so what the line's own words add must be read apart.
    patient = validate_patient(72, "normal", "normal", ["allopurinol"])
    passages = (AZA, ALLOPURINOL)
    d = next(d for d in calculate(passages, patient, None, "azathioprine") if len(d.steps) > 1)
    return f"### For this patient\n- {prefix}{d.explanation}\n", passages, patient


def test_a_derivation_line_as_the_calculator_writes_it_is_verified():
    from guardrails import check_answer

    answer, passages, patient = _derivation_answer("")
    assert check_answer(answer, passages, patient, None, "azathioprine").passed


@pytest.mark.parametrize("prefix", ["methotrexate ", "a starting dose of "])
def test_a_derivation_line_that_names_another_drug_or_phase_is_not_verified(prefix):
    # The calculation is azathioprine's, from a maintenance dose: a line calling it another
    # drug's, or a starting dose, says what the calculation does not.
    from guardrails import check_answer

    answer, passages, patient = _derivation_answer(prefix)
    assert not check_answer(answer, passages, patient, None, "azathioprine").passed
