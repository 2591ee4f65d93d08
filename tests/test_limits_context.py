"""The dose-limit table after the 2026-12 clinical audit: each fixed row, the audit's probe cases
and the optional context (kidney function, population/age, route, phase) of LimitTable.check.

Every case parses the dose text with the guard's own parser, so a case fails if either the
table or the parser stops giving the clinically right verdict.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardrails import load_limits, parse_quantities
from guardrails.errors import LimitsFileError
from guardrails.limits import LimitTable


@pytest.fixture(scope="module")
def table() -> LimitTable:
    return load_limits()


def _dose(text: str):  # type: ignore[no-untyped-def]
    doses = [q for q in parse_quantities(text) if q.kind == "dose"]
    assert len(doses) == 1, f"{text!r} -> {doses}"
    return doses[0]


def ok(
    table: LimitTable,
    drug: str,
    text: str,
    indication: str | None = None,
    weight_kg: Decimal | None = None,
    **ctx: object,
) -> bool:
    return table.check(drug, _dose(text), indication, weight_kg, **ctx)[0]  # type: ignore[arg-type]


# --- the audit's "wrong" rows -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["150 mg/day", "175 mg/day", "100 mg twice daily"])
def test_azathioprine_ra_mg_per_day_is_no_longer_capped_at_the_starting_dose(
    table: LimitTable, text: str
) -> None:
    # 50-100 mg is the label's START; the ceiling is 2.5 mg/kg/day (150-200 mg for most adults).
    assert ok(table, "azathioprine", text, "rheumatoid arthritis")


def test_azathioprine_ra_ceiling_is_per_kg_with_a_weight(table: LimitTable) -> None:
    assert ok(table, "azathioprine", "175 mg/day", "rheumatoid arthritis", Decimal(70))
    assert not ok(table, "azathioprine", "200 mg/day", "rheumatoid arthritis", Decimal(70))


def test_azathioprine_ra_starting_dose_row_binds_only_in_the_start_phase(table: LimitTable) -> None:
    assert ok(table, "azathioprine", "75 mg/day", "rheumatoid arthritis", phase="induction")
    assert not ok(table, "azathioprine", "150 mg/day", "rheumatoid arthritis", phase="induction")


@pytest.mark.parametrize("text", ["1 mg/day", "2 mg/day", "4 mg/day", "5 mg/day"])
def test_prednisone_sle_taper_steps_below_the_old_floor_pass(table: LimitTable, text: str) -> None:
    assert ok(table, "prednisone", text, "systemic lupus erythematosus")
    assert ok(table, "prednisone", text, "systemic lupus erythematosus", phase="maintenance")


def test_prednisone_sle_maintenance_ceiling_binds_in_maintenance_only(table: LimitTable) -> None:
    assert not ok(table, "prednisone", "10 mg/day", "systemic lupus erythematosus",
                  phase="maintenance")  # fmt: skip
    # a flare dose is not a maintenance dose: the ceiling must not block it
    assert ok(table, "prednisone", "30 mg/day", "systemic lupus erythematosus")


# --- the audit's "misleading" rows ------------------------------------------------------------


def test_azathioprine_any_row_no_longer_cancels_the_ra_ceiling(table: LimitTable) -> None:
    assert not ok(table, "azathioprine", "3 mg/kg/day", "rheumatoid arthritis")
    assert ok(table, "azathioprine", "2.5 mg/kg/day", "rheumatoid arthritis")
    # the general SmPC row still serves an indication with no row of its own
    assert ok(table, "azathioprine", "3 mg/kg/day", "myasthenia gravis")
    assert not ok(table, "azathioprine", "4 mg/kg/day", "myasthenia gravis")


def test_azathioprine_any_row_has_no_invented_floor(table: LimitTable) -> None:
    # SmPC maintenance goes "from below 1 mg/kg/day": 0.4 mg/kg/day is not out of limits.
    assert ok(table, "azathioprine", "0.4 mg/kg/day", "myasthenia gravis")


@pytest.mark.parametrize("text", ["25 mg/day", "250 mg/day"])
def test_azathioprine_sle_secondary_summary_row_is_gone(table: LimitTable, text: str) -> None:
    # 25 mg/day (allopurinol, TPMT intermediate) and 250 mg/day (3 mg/kg at 85 kg) are legitimate.
    assert ok(table, "azathioprine", text, "systemic lupus erythematosus")
    assert ok(table, "azathioprine", "250 mg/day", "systemic lupus erythematosus", Decimal(85))


def test_no_row_cites_a_secondary_summary_or_the_idsa_vaccine_guideline(table: LimitTable) -> None:
    sources = {r.source for r in table.rows}
    assert "idsa-2013-vaccine" not in sources
    assert not {s for s in sources if s.startswith("drorac")}


def test_prednisone_has_no_any_indication_row(table: LimitTable) -> None:
    assert not [r for r in table.rows if r.drug == "prednisone" and r.indication == "any"]


# --- the audit's probe cases ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["7.5 mg every morning", "7.5 mg nightly", "7.5 mg on alternate days", "7.5 mg",
     "7.5 mg Monday to Friday"],
)  # fmt: skip
def test_weekly_only_methotrexate_without_a_weekly_schedule_is_flagged(
    table: LimitTable, text: str
) -> None:
    for indication in (None, "rheumatoid arthritis", "psoriasis"):
        verdict, why = table.check("methotrexate", _dose(text), indication)
        assert not verdict and "weekly" in why, (text, indication, why)


@pytest.mark.parametrize("text", ["7.5 mg once weekly", "15 mg/week", "5 mg per dose"])
def test_weekly_methotrexate_passes(table: LimitTable, text: str) -> None:
    assert ok(table, "methotrexate", text, "rheumatoid arthritis")


def test_methotrexate_daily_is_flagged_for_non_oncologic_use(table: LimitTable) -> None:
    for indication in (None, "rheumatoid arthritis", "psoriasis"):
        assert not ok(table, "methotrexate", "7.5 mg daily", indication)


def test_mercaptopurine_mg_per_day_has_a_ceiling_without_a_weight(table: LimitTable) -> None:
    assert not ok(table, "mercaptopurine", "500 mg/day")
    assert ok(table, "mercaptopurine", "100 mg/day")
    assert ok(table, "mercaptopurine", "25 mg/day")  # reduced (allopurinol, TPMT): no floor


def test_mercaptopurine_mg_per_day_follows_the_weight_when_given(table: LimitTable) -> None:
    # with a weight the per-kg rows decide: 225 mg/day is 2.5 mg/kg/day at 90 kg
    assert ok(table, "mercaptopurine", "225 mg/day", None, Decimal(90))
    assert not ok(table, "mercaptopurine", "500 mg/day", None, Decimal(90))


def test_azathioprine_mg_per_day_stand_in_applies_only_without_a_weight(table: LimitTable) -> None:
    # no weight: a fixed ceiling (the SmPC's 3 mg/kg/day at 100 kg) still catches a tenfold error
    assert ok(table, "azathioprine", "250 mg/day", "lupus nephritis")
    assert not ok(table, "azathioprine", "2000 mg/day", "lupus nephritis")
    # with a weight the per-kg rows decide, in both directions
    assert ok(table, "azathioprine", "350 mg/day", "renal transplant", Decimal(80))
    assert not ok(table, "azathioprine", "250 mg/day", "lupus nephritis", Decimal(50))


@pytest.mark.parametrize(
    ("drug", "text", "indication"),
    [
        ("cyclophosphamide", "500 mg/m2 every 3 months", "lupus nephritis"),
        ("cyclophosphamide", "750 mg/m2 every 3 months", "lupus nephritis"),
        ("cyclophosphamide", "1000 mg every 3 months", "lupus nephritis"),
        ("prednisone", "1 mg/kg/day", "lupus nephritis"),
        ("prednisolone", "40 mg/day", "autoimmune hepatitis"),
        ("prednisolone", "60 mg/day", "autoimmune hepatitis"),
        ("allopurinol", "50 mg/day", "gout"),
        ("allopurinol", "50 mg/day", None),
        ("mycophenolate", "720 mg twice daily", "lupus nephritis"),
        ("mycophenolate", "720 mg twice daily", "transplant"),
        ("mycophenolate", "500 mg twice daily", "lupus nephritis"),
        ("mycophenolate", "540 mg twice daily", "lupus nephritis"),
    ],
)
def test_legitimate_doses_the_audit_found_blocked_now_pass(
    table: LimitTable, drug: str, text: str, indication: str | None
) -> None:
    verdict, why = table.check(drug, _dose(text), indication)
    assert verdict, why


def test_cyclophosphamide_every_3_months_is_still_bounded(table: LimitTable) -> None:
    assert not ok(table, "cyclophosphamide", "1500 mg/m2 every 3 months", "lupus nephritis")
    assert not ok(table, "cyclophosphamide", "500 mg every 6 months", "lupus nephritis")


# --- context: kidney function, population, route ----------------------------------------------


def test_febuxostat_is_capped_at_40_mg_in_severe_renal_impairment(table: LimitTable) -> None:
    assert ok(table, "febuxostat", "80 mg/day", "gout")
    assert ok(table, "febuxostat", "80 mg/day", "gout", egfr=60)
    assert not ok(table, "febuxostat", "80 mg/day", "gout", egfr=20)
    assert ok(table, "febuxostat", "40 mg once daily", "gout", egfr=20)


def test_mycophenolate_is_capped_at_1_g_twice_daily_below_gfr_25(table: LimitTable) -> None:
    assert ok(table, "mycophenolate", "1500 mg twice daily", "lupus nephritis", egfr=40)
    assert not ok(table, "mycophenolate", "1500 mg twice daily", "lupus nephritis", egfr=20)
    assert ok(table, "mycophenolate", "1000 mg twice daily", "lupus nephritis", egfr=20)


def test_pediatric_mycophenolate_is_600_mg_per_m2_twice_daily_up_to_2_g(
    table: LimitTable,
) -> None:
    assert ok(table, "mycophenolate", "600 mg/m2 twice daily", "transplant", age_years=8)
    assert not ok(table, "mycophenolate", "900 mg/m2 twice daily", "transplant", age_years=8)
    assert not ok(table, "mycophenolate", "3000 mg/day", "transplant", population="pediatric")


def test_age_selects_the_pediatric_rows(table: LimitTable) -> None:
    # AASLD: children 1-2 mg/kg/day of prednisolone; adults 0.5-1 mg/kg/day (EASL)
    assert ok(table, "prednisolone", "2 mg/kg/day", "autoimmune hepatitis", age_years=10)
    assert not ok(table, "prednisolone", "2 mg/kg/day", "autoimmune hepatitis", age_years=40)
    assert not ok(table, "prednisolone", "80 mg/day", "autoimmune hepatitis", age_years=10)


def test_route_drops_rows_of_another_route(table: LimitTable) -> None:
    # the oral lupus nephritis regimen is per kg per day; IV pulses are per m2 or fixed mg
    assert ok(table, "cyclophosphamide", "1.5 mg/kg/day", "lupus nephritis", route="oral")
    assert ok(table, "cyclophosphamide", "500 mg every 2 weeks", "lupus nephritis", route="iv")
    assert not ok(table, "cyclophosphamide", "2 mg/kg/day", "lupus nephritis", route="oral")


def test_methylprednisolone_pulses_are_bounded(table: LimitTable) -> None:
    assert ok(table, "methylprednisolone", "500 mg/day", "lupus nephritis")
    assert not ok(table, "methylprednisolone", "2000 mg/day", "lupus nephritis")


def test_existing_positional_callers_keep_working(table: LimitTable) -> None:
    q = _dose("2 mg/kg/day")
    assert table.check("azathioprine", q)[0]
    assert table.check("azathioprine", q, "lupus nephritis")[0]
    assert table.check("azathioprine", q, "lupus nephritis", Decimal(70))[0]


@pytest.mark.parametrize("bad", ["abc", -5, float("nan")])
def test_bad_context_numbers_get_a_clear_error(table: LimitTable, bad: object) -> None:
    with pytest.raises(ValueError, match="egfr"):
        table.check("febuxostat", _dose("80 mg/day"), "gout", egfr=bad)  # type: ignore[arg-type]


def test_bad_row_condition_is_a_limits_file_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "limits.toml"
    path.write_text('[[limit]]\ndrug = "x"\nbasis = "mg/day"\nmin = "1"\nmax = "2"\n'
                    'phase = "sometimes"\n', encoding="utf-8")  # fmt: skip
    with pytest.raises(LimitsFileError, match="phase"):
        load_limits(path)
    path.write_text('[[limit]]\ndrug = "x"\nbasis = "mg/day"\nmin = "1"\nmax = "2"\n'
                    'egfr_below = "soon"\n', encoding="utf-8")  # fmt: skip
    with pytest.raises(LimitsFileError, match="egfr_below"):
        load_limits(path)


def test_methotrexate_3e_band_is_scoped_to_rheumatic_disease(table: LimitTable) -> None:
    # 25 mg/week is inside 3E's 20-30 mg/week escalation band for RA, above the label's 20
    assert ok(table, "methotrexate", "25 mg/week", "rheumatoid arthritis")
    assert not ok(table, "methotrexate", "35 mg/week", "rheumatoid arthritis")
    assert ok(table, "methotrexate", "30 mg/week", "psoriasis")


def test_reduced_azathioprine_dose_with_allopurinol_is_not_blocked(table: LimitTable) -> None:
    # a quarter to a third of 2 mg/kg/day at 72 kg (the calculator checks it without indication)
    assert ok(table, "azathioprine", "36-48 mg/day")
    assert ok(table, "azathioprine", "36-48 mg/day", None, Decimal(72))
    assert ok(table, "azathioprine", "25 mg/day", "autoimmune hepatitis")
