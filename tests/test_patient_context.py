"""Patient context: kidney function and age validated with clear messages, phenotype synonyms
understood, and the patient's own values accepted by the guard when an answer restates them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardrails import PatientInputError, Status, check_answer, validate_patient
from guardrails.model import Passage


@pytest.mark.parametrize(
    ("kw", "field", "value"),
    [
        ({"egfr": 45}, "egfr", Decimal(45)),
        ({"egfr": "45 mL/min/1.73 m2"}, "egfr", Decimal(45)),
        ({"crcl": "30 mL/min"}, "crcl", Decimal(30)),
        ({"age_years": "82 years"}, "age_years", Decimal(82)),
        ({"age_years": 0.5}, "age_years", Decimal("0.5")),
    ],
)
def test_kidney_function_and_age_are_read_with_their_units(kw, field, value) -> None:
    patient = validate_patient(None, None, None, [], **kw)
    assert getattr(patient, field) == value


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"egfr": "normal-ish"}, "eGFR must be a number"),
        ({"egfr": -5}, "outside 1–200"),
        ({"crcl": 900}, "outside 1–250"),
        ({"age_years": 150}, "outside 0–120"),
        ({"age_years": True}, "Age must be a number"),
        ({"egfr": float("nan")}, "outside"),
    ],
)
def test_implausible_values_get_a_message_that_says_what_to_fix(kw, words) -> None:
    with pytest.raises(PatientInputError, match=words):
        validate_patient(None, None, None, [], **kw)


@pytest.mark.parametrize(
    ("written", "understood"),
    [
        ("absent activity", "poor"),
        ("low activity", "poor"),
        ("deficient", "poor"),
        ("homozygous", "poor"),
        ("heterozygous", "intermediate"),
        ("carrier", "intermediate"),
        ("wild-type", "normal"),
    ],
)
def test_phenotype_synonyms_clinicians_use(written, understood) -> None:
    patient = validate_patient(None, written, None, [])
    assert patient.tpmt == understood
    assert f"TPMT {understood}" in patient.describe()


def test_brand_co_medication_is_the_generic() -> None:
    assert validate_patient(None, None, None, ["Zyloprim", "Uloric"]).comedications == (
        "allopurinol", "febuxostat",
    )  # fmt: skip


def test_the_patients_own_values_are_derived_not_source_figures() -> None:
    patient = validate_patient(72, None, None, [], egfr=25, age_years=82)
    src = [Passage(1, "Allopurinol in CKD stage 4: start at 50 mg/day.", drugs=("allopurinol",))]
    answer = (
        "For this patient (72 kg, eGFR 25 mL/min/1.73 m², 82 years): allopurinol 50 mg/day [1]."
    )
    v = check_answer(answer, src, patient=patient, drug="allopurinol")
    assert v.passed, [(c.claim.text, c.reason) for c in v.failed]
    reasons = {c.claim.text: c.reason for c in v.claims if c.status is Status.DERIVED}
    assert reasons["82 years"] == "the patient's age"
    assert reasons["25 mL/min/1.73 m²"] == "the patient's eGFR"
    # Another age is not the patient's.
    v = check_answer(
        answer.replace("82 years", "81 years"), src, patient=patient, drug="allopurinol"
    )
    assert not v.passed


def test_the_patients_kidney_function_reaches_the_limit_rows() -> None:
    from guardrails import load_limits

    src = [Passage(1, "Febuxostat for gout: 80 mg/day if urate stays high.", drugs=("febuxostat",))]
    answer = "Febuxostat 80 mg/day [1]."
    assert check_answer(answer, src, limits=load_limits(), drug="febuxostat").passed
    severe = validate_patient(None, None, None, [], egfr=20)
    v = check_answer(answer, src, patient=severe, limits=load_limits(), drug="febuxostat")
    assert not v.passed and v.claims[0].status is Status.OUT_OF_LIMITS


def test_follow_up_suggestions_fit_the_drug() -> None:
    from assistant.compose import suggest_followups
    from assistant.vocabulary import Vocabulary

    vocab = Vocabulary.from_names(["azathioprine", "allopurinol"])
    vocab.sections_by_drug = {"azathioprine": frozenset({"Pharmacogenomics"}),
                              "allopurinol": frozenset({"Pharmacogenomics"})}  # fmt: skip
    assert "TPMT" in suggest_followups(vocab, "azathioprine", "dose")[0]
    assert not any("TPMT" in q for q in suggest_followups(vocab, "allopurinol", "dose"))
