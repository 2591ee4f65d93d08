"""Corpus lint: front matter, citations, limit-table agreement and no text shared with
../shared (facts and figures carry over, sentences never do)."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from corpus_lint import (
    CORPUS_DIR,
    LIMITS_PATH,
    OTHER_DRUGS,
    SHARED_DIR,
    Article,
    cited_ids,
    dose_candidates,
    drug_before,
    has_number,
    limit_rows,
    limit_rows_from_secondary_summaries,
    limit_rows_with_unknown_sources,
    load_articles,
    sentences,
    shared_ngrams,
    sources_without_section,
    uncited_number_sentences,
    word_ngrams,
)

BASES = {
    "mg/kg/day", "mg/day", "mg/dose", "mg/week", "mg/m2/dose", "mg/kg/dose", "mg/m2/day", "mg/m2/week",
}  # fmt: skip
FREQUENCIES = {"daily", "weekly", "every 2 weeks", "monthly", "every 3 months", "any"}


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    return load_articles()


@pytest.fixture(scope="module")
def limits() -> list[dict[str, str]]:
    return limit_rows()


def _guard() -> Any:
    """The guard's public parser, or a skip naming what is missing."""
    try:
        guard = importlib.import_module("guardrails")
        return guard.parse_quantities, guard.load_limits
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"guardrails.parse_quantities/load_limits not importable yet: {exc}")


# --- front matter ---------------------------------------------------------------------------


def test_corpus_has_between_twelve_and_twenty_five_articles(articles: list[Article]) -> None:
    assert 12 <= len(articles) <= 25


def test_front_matter_validates_against_ingest_schema(articles: list[Article]) -> None:
    schema = pytest.importorskip("ingest.schema")
    for art in articles:
        schema.validate_front_matter(art.meta, str(art.path))


def test_front_matter_is_honest_draft_with_a_past_review_date(articles: list[Article]) -> None:
    # No clinician has approved an article yet: anything but "draft" would be a false claim.
    for art in articles:
        assert art.meta["review_status"] == "draft", art.path.name
        reviewed = art.meta["last_reviewed"]
        assert isinstance(reviewed, dt.date) and reviewed <= dt.date.today(), art.path.name
        assert art.meta["audience"] == "clinician", art.path.name


def test_document_ids_are_unique_and_match_file_names(articles: list[Article]) -> None:
    ids = [a.meta["id"] for a in articles]
    assert len(ids) == len(set(ids))
    for art in articles:
        assert art.path.stem == art.meta["id"]


def test_same_source_id_means_same_reference_across_files(articles: list[Article]) -> None:
    refs: dict[str, set[str]] = defaultdict(set)
    for art in articles:
        for src in art.meta["sources"]:
            refs[src["id"]].add(src["reference"])
    clashes = {k: v for k, v in refs.items() if len(v) > 1}
    assert not clashes


def test_article_bodies_are_between_two_hundred_and_nine_hundred_words(
    articles: list[Article],
) -> None:
    for art in articles:
        words = len(art.body.split())
        assert 200 <= words <= 900, f"{art.path.name}: {words} words"


def test_body_uses_answer_section_headings(articles: list[Article]) -> None:
    known = {
        "Dosing", "Monitoring", "Special populations", "Interactions", "Contraindications",
        "Adverse effects", "Pharmacogenomics", "Duration", "Outcomes", "Safety", "Indications",
        "Boxed warning", "Malignancy", "Vaccines", "Treatment failure", "Relapse", "Testing",
        "Population frequencies",
    }  # fmt: skip
    for art in articles:
        h2 = [ln[3:].strip() for ln in art.body.splitlines() if ln.startswith("## ")]
        assert h2, art.path.name
        unknown = [h for h in h2 if h not in known]
        assert not unknown, f"{art.path.name}: {unknown}"


# --- citations ------------------------------------------------------------------------------


def test_every_sentence_with_a_number_carries_a_citation(articles: list[Article]) -> None:
    uncited = uncited_number_sentences(articles)
    assert not uncited, "\n".join(uncited)


def test_every_source_names_the_section_used(articles: list[Article]) -> None:
    missing = sources_without_section(articles)
    assert not missing, "\n".join(missing)


def test_no_limit_row_rests_on_a_secondary_summary(
    articles: list[Article], limits: list[dict[str, str]]
) -> None:
    bad = limit_rows_from_secondary_summaries(articles, limits)
    assert not bad, "\n".join(bad)


def _fake_article(tmp_path: Any, sources: str, body: str) -> Article:
    path = tmp_path / "fake.md"
    path.write_text(f"---\nid: fake\nsources:\n{sources}---\n{body}", encoding="utf-8")
    return load_articles(tmp_path)[0]


def test_traceability_lint_catches_each_fault(tmp_path: Any) -> None:
    # The lint must fail on the faults it exists for, not just pass on today's corpus.
    art = _fake_article(
        tmp_path,
        '  - id: lab\n    kind: label\n    reference: "A label"\n'
        '  - id: drorac-x\n    kind: review\n    reference: "X (secondary summary)"\n'
        '    section: "all"\n',
        "## Dosing\n- Drug 2 mg/kg/day.\n- Drug 3 mg/kg/day [@lab].\n",
    )
    assert [s for s in uncited_number_sentences([art]) if "2 mg/kg/day" in s]
    assert sources_without_section([art]) == ["fake.md: lab"]
    rows = [
        {"drug": "d", "source": "nowhere", "section": "s", "min": "1", "max": "2", "basis": "mg/day"},
        {"drug": "d", "source": "lab", "section": "", "min": "1", "max": "2", "basis": "mg/day"},
        {"drug": "d", "source": "drorac-x", "section": "s", "min": "1", "max": "2",
         "basis": "mg/day"},
    ]  # fmt: skip
    assert len(limit_rows_with_unknown_sources([art], rows)) == 2
    assert len(limit_rows_from_secondary_summaries([art], rows)) == 1


def test_headings_carry_no_numbers(articles: list[Article]) -> None:
    for art in articles:
        for line in art.body.splitlines():
            if line.startswith("#"):
                assert not has_number(line), f"{art.path.name}: {line}"


def test_every_cited_id_resolves_to_the_files_sources(articles: list[Article]) -> None:
    for art in articles:
        missing = {i for s in sentences(art) for i in cited_ids(s.text)} - art.source_ids
        assert not missing, f"{art.path.name}: unresolved {sorted(missing)}"


def test_every_declared_source_is_cited(articles: list[Article]) -> None:
    for art in articles:
        used = {i for s in sentences(art) for i in cited_ids(s.text)}
        assert art.source_ids <= used, f"{art.path.name}: unused {sorted(art.source_ids - used)}"


def test_every_dose_sentence_names_a_drug(articles: list[Article], limits: list[dict]) -> None:
    names = {r["drug"] for r in limits}
    dose = re.compile(r"\d\s*(?:mg|g)\b")
    nameless = [
        f"{s.doc_id}:{s.line}: {s.text}"
        for art in articles
        for s in sentences(art)
        if dose.search(s.text) and drug_before(s.text, len(s.text), names) is None
    ]
    assert not nameless, "\n".join(nameless)


# --- limits ---------------------------------------------------------------------------------


def test_limit_rows_are_well_formed(limits: list[dict[str, str]]) -> None:
    assert limits
    for row in limits:
        assert row["drug"] == row["drug"].lower(), row
        assert row["route"] in {"oral", "iv", "sc", "any"}, row
        assert row["population"] in {"adult", "pediatric", "any"}, row
        assert row["basis"] in BASES, row
        assert row["frequency"] in FREQUENCIES, row
        assert Decimal(row["min"]) <= Decimal(row["max"]), row
        assert row["section"].strip(), row


def test_every_limit_row_cites_a_source_present_in_the_corpus(
    articles: list[Article], limits: list[dict[str, str]]
) -> None:
    missing = limit_rows_with_unknown_sources(articles, limits)
    assert not missing, "\n".join(missing)


def test_every_corpus_drug_has_limit_rows(
    articles: list[Article], limits: list[dict[str, str]]
) -> None:
    drugs = {d for a in articles for d in a.meta["drugs"]}
    assert drugs <= {r["drug"] for r in limits}


def test_methotrexate_limits_are_weekly_only(limits: list[dict[str, str]]) -> None:
    rows = [r for r in limits if r["drug"] == "methotrexate"]
    assert rows and all(r["frequency"] == "weekly" for r in rows)
    assert all(r["basis"] in {"mg/week", "mg/dose", "mg/m2/week"} for r in rows)


def test_renal_transplant_azathioprine_limit_reaches_five_mg_per_kg(
    limits: list[dict[str, str]],
) -> None:
    rows = [
        r
        for r in limits
        if r["drug"] == "azathioprine"
        and r["basis"] == "mg/kg/day"
        and "transplant" in r["indication"]
    ]
    assert rows and max(Decimal(r["max"]) for r in rows) == Decimal(5)


def test_guard_loads_the_limit_table() -> None:
    _, load_limits = _guard()
    table = load_limits(LIMITS_PATH)
    assert table is not None


def test_every_corpus_dose_lies_inside_that_drugs_limits(
    articles: list[Article], limits: list[dict[str, str]]
) -> None:
    parse_quantities, _ = _guard()
    by_drug: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in limits:
        # Rows with a condition (kidney function, phase) bind only when the caller states it.
        if (
            not any(k in row for k in ("egfr_below", "egfr_at_least"))
            and row.get("phase", "any") == "any"
        ):
            by_drug[row["drug"]].append(row)
    names = set(by_drug)
    outside: list[str] = []
    checked = 0
    for art in articles:
        wanted = [i.lower() for i in art.meta.get("indications") or []]
        for s in sentences(art):
            for q in parse_quantities(s.text):
                readings = dose_candidates(q)
                if not readings:
                    continue
                drug = drug_before(s.text, q.span[0], names | set(OTHER_DRUGS))
                if drug in OTHER_DRUGS:
                    continue  # a co-medication with no limit rows (folic acid, leucovorin)
                rows = [r for r in by_drug.get(drug or "", []) if _row_serves(r, wanted)]
                checked += 1
                bases = {r["basis"] for r in rows}
                fits = (
                    not any(basis in bases for basis, _, _ in readings)
                    and bool(rows)
                    or any(
                        r["basis"] == basis and Decimal(r["min"]) <= lo and hi <= Decimal(r["max"])
                        for basis, lo, hi in readings
                        for r in rows
                    )
                )
                if not fits:
                    outside.append(f"{s.doc_id}:{s.line}: {drug} {q.text!r} -> {readings}")
    assert checked > 100, "the parser found too few doses in the corpus"
    assert not outside, "\n".join(outside)


def _row_serves(row: dict[str, str], indications: list[str]) -> bool:
    """The row applies to an article about these indications (the guard's matching rule)."""
    if row["indication"] == "any" or not indications or "any" in indications:
        return True
    parts = [p.strip().lower() for p in row["indication"].split(";") if p.strip()]
    return any(p in i or i in p for p in parts for i in indications)


# --- no text from ../shared ------------------------------------------------------------------


def test_no_twelve_word_run_shared_with_reference_or_datasets(articles: list[Article]) -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is absent")
    grams = shared_ngrams(SHARED_DIR)
    assert grams, "no text read from ../shared"
    shared = []
    for path in sorted(CORPUS_DIR.glob("*.md")):
        for gram in word_ngrams(path.read_text(encoding="utf-8")):
            if gram in grams:
                shared.append(f"{path.name} ~ {grams[gram]}: {' '.join(gram)}")
    assert not shared, "\n".join(shared)


def test_twelve_word_check_catches_a_copied_run() -> None:
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared is absent")
    ref = sorted((SHARED_DIR / "reference").glob("*.txt"))[0].read_text(encoding="utf-8")
    copied = " ".join(ref.split()[200:230])
    assert word_ngrams(copied) & set(shared_ngrams(SHARED_DIR))


def test_guard_limit_check_accepts_every_corpus_dose(articles: list[Article]) -> None:
    parse_quantities, load_limits = _guard()
    table = load_limits(LIMITS_PATH)
    names = set(table.drugs)
    rejected = []
    for art in articles:
        # The guard leaves oncology rows out unless an indication names them.
        indication = "; ".join(art.meta.get("indications") or [])
        for s in sentences(art):
            for q in parse_quantities(s.text):
                drug = drug_before(s.text, q.span[0], names | OTHER_DRUGS)
                if drug is None or drug in OTHER_DRUGS:
                    continue
                ok, reason = table.check(drug, q, indication=indication)
                if not ok:
                    rejected.append(f"{s.doc_id}:{s.line}: {drug} {q.text!r}: {reason}")
    assert not rejected, "\n".join(rejected)


def test_limit_table_flags_daily_methotrexate_for_rheumatoid_arthritis() -> None:
    parse_quantities, load_limits = _guard()
    table = load_limits(LIMITS_PATH)
    (daily,) = parse_quantities("7.5 mg daily")
    (weekly,) = parse_quantities("7.5 mg once weekly")
    assert table.check("methotrexate", daily, indication="rheumatoid arthritis")[0] is False
    assert table.check("methotrexate", weekly, indication="rheumatoid arthritis")[0] is True


def test_limit_table_bounds_renal_transplant_azathioprine_at_five_mg_per_kg() -> None:
    parse_quantities, load_limits = _guard()
    table = load_limits(LIMITS_PATH)
    (five,) = parse_quantities("5 mg/kg/day")
    (six,) = parse_quantities("6 mg/kg/day")
    assert table.check("azathioprine", five, indication="renal transplant")[0] is True
    assert table.check("azathioprine", six, indication="renal transplant")[0] is False
