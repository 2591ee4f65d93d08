"""Parser behaviour: every form a clinical answer or source writes numbers in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardrails import Quantity, format_quantity, parse_quantities, quantities_equivalent


def one(text: str) -> Quantity:
    qs = parse_quantities(text)
    assert len(qs) == 1, [q.text for q in qs]
    return qs[0]


def D(s: str) -> Decimal:
    return Decimal(s)


def test_integer_dose_with_unit():
    q = one("give 50 mg")
    assert (q.low, q.high, q.unit, q.kind) == (D("50"), D("50"), "mg", "dose")


def test_decimal_dose_keeps_decimal_value():
    q = one("prednisone 2.5 mg")
    assert q.low == D("2.5") and isinstance(q.low, Decimal)


def test_thousands_separator_is_one_number():
    q = one("about 1 in 3,736 patients")
    assert q.low == D("3736") and q.kind == "ratio"


@pytest.mark.parametrize(
    "text",
    [
        "100-200 mg",
        "100–200 mg",
        "100 to 200 mg",
        "100 mg to 200 mg",
        "between 100 and 200 mg",
        "100 — 200 mg",
    ],
)
def test_range_spellings_parse_to_the_same_range(text):
    q = one(text)
    assert (q.low, q.high, q.unit) == (D("100"), D("200"), "mg")


def test_range_with_en_dash_equals_hyphen_range():
    assert quantities_equivalent(one("1–2 mg/kg/day"), one("1-2 mg/kg/day"))


def test_swapped_range_keeps_written_order_and_never_matches():
    swapped, normal = one("200–100 mg"), one("100–200 mg")
    assert (swapped.low, swapped.high) == (D("200"), D("100"))
    assert not quantities_equivalent(swapped, normal)


def test_per_kg_per_day_unit():
    q = one("1-2 mg/kg/day")
    assert q.per_kg and q.per == "day" and q.unit == "mg"


@pytest.mark.parametrize(
    "text",
    ["5 mg/kg real body weight per day", "5 mg per kg per day", "5 mg/kg/d", "5 mg/kg daily"],
)
def test_per_kg_spellings(text):
    q = one(text)
    assert q.per_kg and q.per == "day" and q.low == D("5")


@pytest.mark.parametrize(
    "text", ["0.5–1 g/m² monthly", "500-1000 mg/m2 monthly", "500–1000 mg/m^2 once monthly"]
)
def test_per_m2_dose_in_grams_equals_milligrams(text):
    q = one(text)
    assert q.per_m2 and (q.low, q.high) == (D("500"), D("1000")) and q.per == "month"


@pytest.mark.parametrize(
    "text,low",
    [
        ("0.1 g", "100"),
        ("100 mcg", "0.1"),
        ("100 µg", "0.1"),
        ("100 ug", "0.1"),
        ("100 micrograms", "0.1"),
    ],
)
def test_mass_units_normalise_to_milligrams(text, low):
    q = one(text)
    assert q.unit == "mg" and q.low == D(low)


def test_gram_and_milligram_forms_are_equivalent():
    assert quantities_equivalent(one("0.1 g"), one("100 mg"))


def test_raw_values_remember_what_was_written():
    q = one("0.1 g")
    assert (q.raw_low, q.raw_unit) == (D("0.1"), "g")


@pytest.mark.parametrize(
    "text",
    [
        "100–200 mg daily",
        "100-200 mg/day",
        "100–200 mg per day",
        "100 to 200 mg once daily",
        "100–200 mg a day",
        "100-200 mg/d",
    ],
)
def test_daily_frequency_spellings_are_equivalent(text):
    assert quantities_equivalent(one(text), one("100–200 mg/day"))


@pytest.mark.parametrize(
    "text",
    [
        "7.5–20 mg once weekly",
        "7.5-20 mg/week",
        "7.5–20 mg per week",
        "7.5–20 mg weekly",
        "7.5–20 mg once a week",
    ],
)
def test_weekly_frequency_spellings_are_equivalent(text):
    assert quantities_equivalent(one(text), one("7.5–20 mg/week"))


def test_daily_and_weekly_doses_are_not_equivalent():
    assert not quantities_equivalent(one("15 mg/day"), one("15 mg/week"))


@pytest.mark.parametrize("text", ["50 mg twice daily", "50 mg bid", "50 mg b.i.d."])
def test_twice_daily_counts_two_administrations(text):
    q = one(text)
    assert (q.per, q.per_count) == ("day", 2)


def test_twice_daily_is_not_the_same_claim_as_once_daily():
    assert not quantities_equivalent(one("50 mg twice daily"), one("50 mg daily"))


def test_dose_every_two_weeks_sets_interval_and_keeps_the_interval_as_a_claim():
    qs = parse_quantities("500 mg IV every 2 weeks")
    assert [q.kind for q in qs] == ["dose", "frequency"]
    assert qs[0].per == "2 week" and qs[1].low == D("2") and qs[1].unit == "week"


def test_every_n_months_is_frequency_and_n_months_is_duration():
    every, plain = parse_quantities("every 3 months; for 3 months")
    assert every.kind == "frequency" and plain.kind == "duration"
    assert not quantities_equivalent(every, plain)


def test_first_eight_weeks_is_a_duration():
    q = one("blood counts weekly for the first 8 weeks")
    assert (q.kind, q.unit, q.low) == ("duration", "week", D("8"))


def test_duration_range_in_years_with_qualifier():
    q = one("for at least 3–5 years")
    assert (q.low, q.high, q.unit, q.qualifier) == (D("3"), D("5"), "year", "at_least")


@pytest.mark.parametrize(
    "text,qual",
    [
        ("up to 3 mg/kg/day", "up_to"),
        ("at least 3 mg", "at_least"),
        ("≥ 3 mg", "at_least"),
        (">=3 mg", "at_least"),
        ("maximum 3 mg", "max"),
        ("max 3 mg", "max"),
        ("not exceeding 3 mg", "up_to"),
        ("about 3 mg", "approx"),
    ],
)
def test_qualifiers_before_the_number(text, qual):
    assert one(text).qualifier == qual


def test_opposite_qualifiers_are_not_equivalent():
    assert not quantities_equivalent(one("up to 3 mg"), one("at least 3 mg"))
    assert quantities_equivalent(one("up to 3 mg"), one("3 mg"))


def test_percentages():
    q = one("reduce to 25 % of the usual dose")
    assert (q.kind, q.unit, q.low) == ("percent", "%", D("25"))
    assert quantities_equivalent(q, one("25%"))
    assert quantities_equivalent(one("20 % to 50 %"), one("20–50 %"))


def test_fraction_words_are_percentages_in_written_order():
    q = one("reduce to one-third to one-quarter of the usual dose")
    assert q.kind == "percent" and q.high == D("25") and q.low == D(100) / 3


def test_one_quarter_equals_twenty_five_percent():
    assert quantities_equivalent(one("one-quarter"), one("25 %"))


def test_number_words_with_units_and_word_ranges():
    assert one("twenty mg").low == D("20")
    q = one("take one to two tablets")
    assert (q.low, q.high, q.unit) == (D("1"), D("2"), "tablet")
    assert one("for two weeks").low == D("2")
    assert one("twenty-five mg").low == D("25")


def test_number_words_in_prose_are_not_claims():
    assert parse_quantities("one of the drugs; no one knows; at one point") == ()


@pytest.mark.parametrize(
    "text",
    [
        "235–400 pmol/8×10^8 RBC",
        "235-400 pmol/8 x 10^8 RBC",
        "235–400 pmol/8 × 10⁸ RBC",
        "235–400 pmol per 8 x 10^8 RBCs",
    ],
)
def test_thioguanine_nucleotide_unit_variants_parse_as_one_lab_range(text):
    q = one(text)
    assert (q.low, q.high, q.unit, q.kind) == (D("235"), D("400"), "pmol/8x10^8 RBC", "lab")


def test_unit_alone_contributes_no_claims():
    assert parse_quantities("6-TGN (pmol/8×10^8 RBC)") == ()


def test_rates_per_patient_year_share_the_unit_across_vs():
    a, b = parse_quantities("flares 0.24 vs 0.89 per patient-year")
    assert a.per == b.per == "patient-year" and a.kind == b.kind == "rate"
    assert a.low == D("0.24")


@pytest.mark.parametrize(
    "text", ["see [1]", "see [1, 2]", "see [1–3]", "[@kdigo-2024]", "[@a; @b]"]
)
def test_citation_markers_are_not_claims(text):
    assert parse_quantities(text) == ()


def test_list_and_heading_numbers_are_not_claims():
    text = "1. Guideline · KDIGO 2024 lupus guideline\n## 2. Dosing\n  3) item"
    assert parse_quantities(text) == ()


def test_years_dates_and_gene_names_are_not_claims():
    text = "KDIGO 2024; reviewed 2026-11-22; TPMT*3A, NUDT15, CYP2C9, IL-6, 6-TGN, 6-MP"
    assert parse_quantities(text) == ()


def test_numbers_after_a_list_marker_on_the_same_line_are_still_claims():
    q = one("1. Start at 50 mg/day")
    assert q.low == D("50")


def test_badge_line_is_not_claims():
    assert parse_quantities("✅ 9 of 9 numbers verified · Sources: 3") == ()


def test_weight_in_kilograms_is_not_a_dose():
    q = one("for a 72 kg adult")
    assert (q.kind, q.unit) == ("weight", "kg")


def test_lab_threshold_with_scientific_notation():
    q = one("stop if WBC < 3.0 × 10^9/L")
    assert (q.low, q.unit, q.qualifier) == (D("3.0"), "x10^9/L", "up_to")


def test_spans_point_at_the_claim_text():
    text = "azathioprine 2 mg/kg/day [1]"
    q = one(text)
    assert text[q.span[0] : q.span[1]] == q.text == "2 mg/kg/day"


def test_bold_markdown_around_a_number_is_still_a_claim():
    assert one("= **144 mg/day**").low == D("144")


@pytest.mark.parametrize(
    "text",
    [
        "2 mg/kg/day",
        "100–200 mg/day",
        "7.5–20 mg once weekly",
        "0.1 g",
        "up to 3 mg/kg/day",
        "one-third to one-quarter",
        "500 mg every 2 weeks",
        "0.89 per patient-year",
        "235–400 pmol/8×10^8 RBC",
        "50 mg twice daily",
        "3–5 years",
        "1 in 178 to 1 in 3,736",
        "0.5–1 g/m² monthly",
        "25 %",
    ],
)
def test_format_round_trips_through_the_parser(text):
    q = parse_quantities(text)[0]
    again = parse_quantities(format_quantity(q))
    assert len(again) >= 1 and quantities_equivalent(again[0], q), format_quantity(q)


def test_unit_factors_are_pints_conversions():
    """The parser's factor table is written out (pint's registry cost ~0.4 s of every cold
    start); each factor must be the one pint gives, in the same Decimal form."""
    import pint

    from guardrails.quantities import UNIT_FACTORS

    ureg = pint.UnitRegistry(non_int_type=Decimal)
    names = {"mg": "milligram", "g": "gram", "mcg": "microgram", "ng": "nanogram",
             "mL": "milliliter", "L": "liter"}  # fmt: skip
    for written, (canonical, factor) in UNIT_FACTORS.items():
        expected = ureg.Quantity(Decimal(1), names[written]).to(names[canonical]).magnitude
        expected = Decimal(str(expected)).normalize()
        assert (factor, str(factor)) == (expected, str(expected)), written
    assert set(UNIT_FACTORS) == set(names)
