"""Every dose, range, percentage, duration or frequency in the two reference answers
(../shared/reference) appears in the corpus inside a cited sentence.

The table is our own list of the quantities (no reference text is read here), so the test runs
without ../shared.
"""

from __future__ import annotations

import importlib
import re

import pytest
from corpus_lint import Sentence, cited_ids, load_articles, normalise, sentences

# (where the reference answer uses it, the quantity as the corpus must state it)
REFERENCE_NUMBERS: list[tuple[str, str]] = [
    # answer 1: azathioprine in autoimmune disease and transplantation
    ("general azathioprine dose", "1-2 mg/kg/day"),
    ("starting dose", "50 mg/day"),
    ("intermediate TPMT reduction", "30-50%"),
    ("AIH prednisolone start", "30 mg/day"),
    ("AIH prednisolone after taper", "10 mg/day"),
    ("AIH taper length", "4 weeks"),
    ("AIH azathioprine with prednisolone", "1 mg/kg/day"),
    ("AIH prednisolone upper dose", "up to 1 mg/kg/day"),
    ("TPMT homozygous deficient", "0.3%"),
    ("TPMT intermediate activity", "10%"),
    ("early monitoring window", "first 8 weeks"),
    ("early blood counts", "every 1-2 weeks"),
    ("early liver tests", "every 2 weeks"),
    ("maintenance blood counts and renal tests", "every 3 months"),
    ("maintenance liver tests", "every 3-6 months"),
    ("AIH minimum duration", "2 years"),
    ("AIH after normalisation", "12 months"),
    ("AIH failure/relapse monotherapy; LN maintenance dose", "2 mg/kg/day"),
    # answer 2: azathioprine in lupus
    ("LN typical adult daily dose", "100-200 mg/day"),
    ("LN companion prednisone", "2.5-5 mg/day"),
    ("LN maintenance duration", "3-5 years"),
    ("non-renal lupus dose", "1-3 mg/kg/day"),
    ("non-renal lupus daily dose", "50-200 mg/day"),
    ("prednisone threshold for azathioprine", "15 mg/day"),
    ("initial adult dose", "50-100 mg/day"),
    ("6-TGN range, paediatric data", "100-300 pmol/8x10^8 rbc"),
    ("6-TGN range, IBD", "235-400 pmol/8x10^8 rbc"),
    ("time to judge response", "3 months"),
    ("weekly counts window", "8 weeks"),
    ("later blood counts", "every 6 months"),
    ("allopurinol reduction", "25%"),
    ("survival with azathioprine", "72%"),
    ("survival without azathioprine", "29%"),
    ("admissions with azathioprine", "0.24 per patient-year"),
    ("admissions without azathioprine", "0.89 per patient-year"),
]

# Key figures of the 2026-12 content (issue 19), each as the corpus must state it in a cited
# sentence; the primary source and section are in the sentence's citation.
NEW_FACTS: list[tuple[str, str]] = [
    ("allopurinol renal start, current label", "50 mg/day"),
    ("febuxostat cap in severe renal impairment", "40 mg once daily"),
    ("febuxostat: no change at creatinine clearance", "30-89 ml/min"),
    ("mycophenolate GFR threshold", "25 ml/min/1.73 m2"),
    ("mycophenolate cap below that GFR", "1 g twice daily"),
    ("methotrexate half dose band", "30-59 ml/min"),
    ("cyclophosphamide CYCLOPS creatinine band", "300-500 µmol/l"),
    ("cyclophosphamide CYCLOPS pulse", "15 mg/kg"),
    ("cyclophosphamide CYCLOPS pulse cap", "1200 mg"),
    ("cyclophosphamide oral LN regimen", "1.0-1.5 mg/kg/day"),
    ("cyclophosphamide oral LN cap", "150 mg/day"),
    ("cyclophosphamide pediatric nephrotic syndrome", "8-12 weeks"),
    ("mycophenolate pediatric", "600 mg/m2 twice daily"),
    ("mycophenolate pediatric daily maximum", "2 g/day"),
    ("methotrexate JIA start", "10 mg/m2 once weekly"),
    ("prednisolone AIH children", "1-2 mg/kg/day"),
    ("folic acid with methotrexate", "5 mg per week"),
    ("methotrexate monitoring until stable", "every 1-1.5 months"),
    ("methotrexate monitoring thereafter", "every 1-3 months"),
    ("leucovorin rescue", "10 mg/m2 every 6 hours"),
    ("methylprednisolone pulses ACR 2024", "250-1000 mg per day"),
    ("methylprednisolone pulses KDIGO 2024", "0.25-0.5 g/day"),
    ("prednisone ACR 2024 ceiling", "40 mg/day"),
    ("prednisone KDIGO reduced-dose start", "0.5-0.6 mg/kg/day"),
    ("prednisone KDIGO high-dose start", "0.8-1.0 mg/kg/day"),
    ("mercaptopurine NUDT15 poor metabolizer, malignancy", "10 mg/m2/day"),
    ("mercaptopurine CPIC condition", "75 mg/m2/day"),
    ("TPMT poor metabolizer steady state", "4-6 weeks"),
    ("Euro-Lupus high-dose pulses in all", "8 pulses"),
]

_EDGE = r"(?<![\d.\-]){}(?![\d])"


@pytest.fixture(scope="module")
def cited_sentences() -> list[Sentence]:
    return [s for art in load_articles() for s in sentences(art) if cited_ids(s.text)]


def _found(expected: str, pool: list[Sentence]) -> list[Sentence]:
    rx = re.compile(_EDGE.format(re.escape(normalise(expected))))
    return [s for s in pool if rx.search(normalise(s.text))]


def test_reference_table_covers_both_answers_without_duplicates() -> None:
    values = [v for _, v in REFERENCE_NUMBERS]
    assert len(values) == len(set(values))
    assert len(values) >= 30


@pytest.mark.parametrize(
    ("where", "expected"), REFERENCE_NUMBERS, ids=[v for _, v in REFERENCE_NUMBERS]
)
def test_reference_number_appears_in_a_cited_corpus_sentence(
    where: str, expected: str, cited_sentences: list[Sentence]
) -> None:
    assert _found(expected, cited_sentences), f"{where}: {expected!r} not in any cited sentence"


def test_range_with_en_dash_equals_hyphen_range() -> None:
    pool = [Sentence(text="Dose 100–200 mg/day [@x].", doc_id="t", heading="", line=1)]
    assert _found("100-200 mg/day", pool)


def test_range_end_is_not_mistaken_for_a_single_value() -> None:
    pool = [Sentence(text="Dose 1.5–2 mg/kg/day [@x].", doc_id="t", heading="", line=1)]
    assert not _found("2 mg/kg/day", pool)


@pytest.mark.parametrize(
    ("where", "expected"), REFERENCE_NUMBERS, ids=[v for _, v in REFERENCE_NUMBERS]
)
def test_reference_number_is_parsed_equivalently_by_the_guard(
    where: str, expected: str, cited_sentences: list[Sentence]
) -> None:
    try:
        guard = importlib.import_module("guardrails")
        parse, same = guard.parse_quantities, guard.quantities_equivalent
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"guardrails.parse_quantities not importable yet: {exc}")
    wanted = parse(expected)
    assert wanted, f"the guard finds no quantity in {expected!r}"
    target = wanted[-1]
    hits = [s for s in cited_sentences if any(same(target, q) for q in parse(s.text))]
    assert hits, f"{where}: no cited sentence has a quantity equivalent to {expected!r}"


def test_new_fact_table_has_no_duplicates() -> None:
    values = [v for _, v in NEW_FACTS]
    assert len(values) == len(set(values))


@pytest.mark.parametrize(("where", "expected"), NEW_FACTS, ids=[v for _, v in NEW_FACTS])
def test_new_fact_appears_in_a_cited_corpus_sentence(
    where: str, expected: str, cited_sentences: list[Sentence]
) -> None:
    assert _found(expected, cited_sentences), f"{where}: {expected!r} not in any cited sentence"
