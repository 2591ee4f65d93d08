"""Equivalent forms a clinician (or a model) writes for the same quantity, and their near misses.

Each pair is parsed separately; the two forms must give quantities ``quantities_equivalent``
calls equal, and a near miss (another value, count, basis or unit) must not. The near misses keep
the equivalences honest: a parser that made everything equal would pass the first half only.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardrails import Passage, Quantity, check_answer, parse_quantities, quantities_equivalent


def one(text: str) -> Quantity:
    qs = parse_quantities(text)
    assert len(qs) == 1, [q.text for q in qs]
    return qs[0]


# (form a source writes, form an answer writes, near miss that must differ)
EQUIVALENT = [
    # superscript and caret exponents, with "x" or "×", spaced or not
    ("235–400 pmol/8×10^8 RBC", "235–400 pmol/8×10⁸ RBC", "235–450 pmol/8×10⁸ RBC"),
    ("235–400 pmol/8×10^8 RBC", "235-400 pmol per 8 x 10^8 red blood cells", "235–400 pmol/L"),
    ("235–400 pmol/8×10^8 RBC", "235–400 pmol/8×10⁸", "235–400 pmol/L"),
    ("235–400 pmol/8×10^8 RBC", "235–400 pmol/(8 × 10⁸ RBC)", "230–400 pmol/(8 × 10⁸ RBC)"),
    ("235–400 pmol/8×10^8 RBC", "235–400 pmol/8*10^8 RBC", "235–400 pmol/8*10^9 RBC"),
    ("WBC below 3.5 x 10^9/L", "WBC below 3.5×10⁹/L", "WBC below 3 × 10⁹/L"),
    # daily = /day = a day = per day = every day; "mg daily" = "mg/day"
    ("50 mg/day", "50 mg daily", "50 mg weekly"),
    ("50 mg/day", "50 mg a day", "50 mg a week"),
    ("50 mg/day", "50 mg per day", "50 mg per week"),
    ("50 mg/day", "50 mg every day", "50 mg every week"),
    ("50 mg/day", "50 mg once a day", "50 mg twice a day"),
    ("50 mg/day", "50 mg/d", "50 mg/dose"),
    ("100 mg/day", "100 mg/24 h", "100 mg/12 h"),
    ("100 mg/day", "100 mg every 24 hours", "100 mg every 12 hours"),
    # ranges: "1 to 2" = "1–2" = "1-2" = "between 1 and 2"
    ("1–2 mg/kg/day", "1 to 2 mg/kg/day", "1–3 mg/kg/day"),
    ("1–2 mg/kg/day", "between 1 and 2 mg/kg/day", "2–1 mg/kg/day"),
    ("100–200 mg/day", "100 mg to 200 mg daily", "100–200 mg/week"),
    # per-kg spellings with a frequency word
    ("1–2 mg/kg/day", "1 to 2 mg per kg daily", "1 to 2 mg daily"),
    ("1–2 mg/kg/day", "1 to 2 mg per kilogram per day", "1 to 2 mg per kg per week"),
    ("2 mg/kg/day", "2 mg/kg body weight daily", "2 mg/m² daily"),
    ("2 mg/kg/day", "2mg/kg/24hrs", "2mg/kg/48hrs"),
    # twice a day = twice daily = b.i.d. = bid = BID = q12h = every 12 hours = 2 times a day
    ("50 mg twice daily", "50 mg twice a day", "50 mg three times a day"),
    ("50 mg twice daily", "50 mg b.i.d.", "50 mg t.i.d."),
    ("50 mg twice daily", "50 mg bid", "50 mg qid"),
    ("50 mg twice daily", "50 mg BID", "50 mg daily"),
    ("50 mg twice daily", "50 mg q12h", "50 mg q8h"),
    ("50 mg twice daily", "50 mg q.12h", "50 mg q.6h"),
    ("50 mg twice daily", "50 mg every 12 hours", "50 mg every 8 hours"),
    ("50 mg twice daily", "50 mg every twelve hours", "50 mg every six hours"),
    ("50 mg twice daily", "50 mg 2 times a day", "50 mg 3 times a day"),
    ("50 mg twice daily", "50 mg 2x daily", "50 mg 2x weekly"),
    ("50 mg three times daily", "50 mg q8h", "50 mg q6h"),
    ("50 mg four times daily", "50 mg every 6 hours", "50 mg every 4 hours"),
    # g vs mg (1 g = 1000 mg), mcg vs mg
    ("1000 mg/day", "1 g/day", "1 mg/day"),
    ("500 mg twice daily", "0.5 g twice daily", "5 g twice daily"),
    ("0.1 mg", "100 mcg", "100 mg"),
    # numbers in words
    ("2 mg/kg/day", "two mg/kg/day", "three mg/kg/day"),
    ("50 mg/day", "fifty milligrams a day", "fifteen milligrams a day"),
    ("100 mg/day", "one hundred mg daily", "one hundred and ten mg daily"),
    ("150 mg", "one hundred and fifty mg", "one hundred and five mg"),
    ("3–5 years", "three to five years", "three to five months"),
    ("one-third to one-quarter", "one third to one quarter", "one-third to one-half"),
    ("50 %", "one-half", "one-third"),
    # a pipe-table row cell is read as the same quantity as prose
    ("maintenance 2 mg/kg/day", "| Maintenance | 2 mg/kg/day |", "| Maintenance | 2 mg/kg |"),
]


@pytest.mark.parametrize("source,answer,near", EQUIVALENT)
def test_equivalent_forms_match(source: str, answer: str, near: str) -> None:
    assert quantities_equivalent(one(source), one(answer))


@pytest.mark.parametrize("source,answer,near", EQUIVALENT)
def test_near_miss_does_not_match(source: str, answer: str, near: str) -> None:
    assert not quantities_equivalent(one(source), one(near))
    assert not quantities_equivalent(one(answer), one(near))


@pytest.mark.parametrize(
    "text,per,count",
    [
        ("q12h", "day", 2),
        ("every 12 hours", "day", 2),
        ("q8h", "day", 3),
        ("q6h", "day", 4),
        ("q4h", "day", 6),
        ("q24h", "day", 1),
        ("every 48 hours", "2 day", 1),
        ("every 72 hours", "3 day", 1),
    ],
)
def test_hourly_intervals_become_doses_per_day(text: str, per: str, count: int) -> None:
    q = one(f"10 mg {text}")
    assert (q.per, q.per_count, q.low) == (per, count, Decimal(10))


def test_every_n_hours_that_is_no_daily_count_keeps_its_interval() -> None:
    # 24 is no multiple of 5 nor 5 of 24: no count per day is claimed.
    qs = parse_quantities("10 mg every 5 hours")
    assert qs[0].per == "5 hour"
    assert not quantities_equivalent(qs[0], one("10 mg daily"))


def test_words_without_a_unit_stay_prose() -> None:
    assert parse_quantities("one hundred patients were treated") == ()


def test_guard_supports_a_paraphrase_of_its_passage() -> None:
    # End to end: the answer writes every figure differently from the passage it cites.
    passage = Passage(
        n=1,
        text="Azathioprine maintenance: 1–2 mg/kg/day. Cyclosporine 50 mg q12h. "
        "Target 6-TGN 235–400 pmol/8×10^8 RBC.",
        drugs=("azathioprine", "cyclosporine"),
    )
    answer = (
        "Azathioprine maintenance is 1 to 2 mg per kg daily [1]. Cyclosporine 50 mg twice a day "
        "[1]. The 6-TGN target is 235-400 pmol/8×10⁸ RBC [1]."
    )
    verdict = check_answer(answer, [passage])
    assert verdict.passed, [(c.claim.text, c.reason) for c in verdict.failed]
    wrong = answer.replace("twice a day", "three times a day")
    assert not check_answer(wrong, [passage]).passed


def test_table_cell_takes_the_unit_of_its_column_header() -> None:
    table = (
        "| Indication | Dose (mg/kg/day) | Duration |\n"
        "|---|:--:|---|\n"
        "| LN maintenance | 1.5–2 | 3 to 5 years |\n"
    )
    dose, years = parse_quantities(table)
    assert quantities_equivalent(dose, one("1.5–2 mg/kg/day"))
    assert dose.text == "1.5–2" and table[dose.span[0] : dose.span[1]] == "1.5–2"
    assert not quantities_equivalent(dose, one("1.5–2 mg/kg"))
    assert quantities_equivalent(years, one("3–5 years"))


def test_pipes_without_a_header_rule_are_no_table() -> None:
    # No "|---|" line under the first row: nothing gives the bare number a unit.
    qs = parse_quantities("| Dose (mg/day) |\n| 5 |")
    assert [(q.text, q.kind) for q in qs] == [("5", "number")]


def test_a_disease_type_is_a_name_not_a_figure() -> None:
    assert parse_quantities("It is not used for type 1 diabetes.") == ()
    # A dose after the word stays a dose.
    assert [q.text for q in parse_quantities("type 2.5 mg")] == ["2.5 mg"]
