"""Which imported documents and labels retrieval keeps for a drug: the rules that decide between
several products of one drug, read on chunks directly (the end-to-end behaviour is in
tests/test_byod_mixed_e2e.py)."""

from __future__ import annotations

import pytest

from assistant.retrieval import _asks_regimen, _lists_strengths, _main_drug
from assistant.vocabulary import QueryFacets
from ingest.model import Chunk


def _chunk(kind: str, path: tuple[str, ...], drugs: tuple[str, ...]) -> Chunk:
    return Chunk(id="c", doc_id="d", title=path[0], section_path=path, text="x", start=0, end=1,
                 content_hash="h", drugs=drugs, doc_kind=kind)  # fmt: skip


def test_a_label_listing_its_salt_first_is_mainly_about_the_asked_drug() -> None:
    asked = QueryFacets(drugs=("atorvastatin",))
    label = _chunk(
        "label", ("Dosage and Administration",), ("atorvastatin calcium", "atorvastatin")
    )
    assert _main_drug(label, asked)
    # A combination product of another drug is not (Percocet for an acetaminophen question).
    combo = _chunk("pdf", ("Percocet", "DESCRIPTION"), ("oxycodone", "acetaminophen"))
    assert not _main_drug(combo, QueryFacets(drugs=("acetaminophen",)))
    assert _main_drug(combo, QueryFacets(drugs=("acetaminophen", "oxycodone")))
    # A name that merely starts the same way is another drug.
    assert not _main_drug(_chunk("text", ("T", "S"), ("atorvastatinol",)), asked)


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        ("label", ("How Supplied",), True),
        ("label", ("Dosage Forms and Strengths",), True),
        ("label", ("Dosage and Administration",), False),
        ("text", ("Metformin tablets", "HOW SUPPLIED"), True),
        ("pdf", ("Tylenol PM", "ACTIVE INGREDIENTS (IN EACH CAPLET) (page 1)"), True),
        ("html", ("Spironolactone", "Description"), True),
        # The title of an imported document is not a section heading.
        ("text", ("Description of our ward",), False),
        # A curated article's heading is never a product's strengths list.
        ("article", ("Azathioprine", "Description"), False),
    ],
)  # fmt: skip
def test_strengths_lists_are_recognised_by_their_heading(
    kind: str, path: tuple[str, ...], expected: bool
) -> None:
    assert _lists_strengths(_chunk(kind, path, ("x",))) is expected


@pytest.mark.parametrize(
    ("question", "facets", "expected"),
    [
        ("What is the usual dose of Placebrin?", QueryFacets(), True),
        ("maximum daily dose of diclofenac", QueryFacets(), True),
        ("methotrexate how many milligrams", QueryFacets(indications=("psoriatic arthritis",)), True),
        ("what size doses of metformin are available", QueryFacets(), False),
        ("tylenol pm mg?", QueryFacets(), False),
        ("clonazepam .25mg lowest dosage?", QueryFacets(), False),
    ],
)  # fmt: skip
def test_a_regimen_question_is_told_from_a_strengths_question(
    question: str, facets: QueryFacets, expected: bool
) -> None:
    assert _asks_regimen(question, facets) is expected
