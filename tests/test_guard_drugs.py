"""The fast drug finder (exact match on lower-cased text) must find exactly what the
case-insensitive alias regex finds, including multi-word names, hyphens, case, odd spacing and
non-ASCII text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guardrails.drugs import (
    _drugs_in,
    _drugs_in_by_regex,
    _is_name_char,
    attached_drug,
    drugs_in,
)
from guardrails.textsearch import CASE_FOLD_TRAPS

EXTRA = frozenset({"placebrinol hydrochloride", "atorvastatin calcium", "co-trimoxazole"})
PIECES = [
    "azathioprine", "Imuran", "AZA", "6-MP", "6-mercaptopurine", "mycophenolate", "mofetil",
    "Mycophenolate  mofetil", "mycophenolic", "acid", "folic", "Folic Acid", "acid-based",
    "placebrinol", "hydrochloride", "atorvastatin", "calcium", "co-trimoxazole", "mtx",
    "methotrexate's", "pre-azathioprine", "azathioprine-", "2 mg/kg", "[1]", "(", ")", ",", ".",
    " ", "  ", "\n", "-", "_", "é", "ſ", "AZATHIOPRİNE", "\u212a", "ciclosporín", "–", "µg", "×",
]  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30), st.sampled_from(["", " ", "-"]))
def test_fast_finder_finds_what_the_alias_regex_finds(pieces: list[str], joiner: str) -> None:
    text = joiner.join(pieces)
    for extra in (frozenset(), EXTRA, EXTRA | {"ciclosporín"}):
        assert _drugs_in.__wrapped__(text, extra) == _drugs_in_by_regex(text, extra)


def test_the_case_fold_traps_are_every_character_lower_case_does_not_pair_as_ignorecase_does():
    # Outside this list a non-ASCII character lower-cases to one non-ASCII character, pairs with
    # no ASCII letter under IGNORECASE, and stays a word character (or not) when lower-cased.
    word = re.compile(r"[\w-]")
    traps = []
    for code in range(0x80, 0x110000):
        c = chr(code)
        low = c.lower()
        if (
            len(low) != 1
            or low.isascii()
            or re.fullmatch("[a-z0-9_]", c, re.IGNORECASE)
            or bool(word.match(c)) != bool(word.match(low))
        ):
            traps.append(c)
    assert tuple(traps) == CASE_FOLD_TRAPS


def test_a_name_character_is_what_the_alias_regex_calls_one():
    word = re.compile(r"[\w-]")
    assert all(_is_name_char(chr(code)) == bool(word.match(chr(code))) for code in range(0x110000))


def test_fast_finder_agrees_with_the_regex_on_every_corpus_article() -> None:
    corpus = Path(__file__).resolve().parents[1] / "corpus"
    for path in sorted(corpus.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert _drugs_in.__wrapped__(text, EXTRA) == _drugs_in_by_regex(text, EXTRA), path.name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mycophenolate mofetil 1 g twice daily", [(0, "mycophenolate")]),
        ("folic  acid 5 mg", []),  # two spaces: not the name "folic acid"
        ("6-MP 1.5 mg/kg/day", [(0, "mercaptopurine")]),
        ("pre-azathioprine screening", []),
    ],
)
def test_drug_mentions_are_whole_names(text: str, expected: list[tuple[int, str]]) -> None:
    assert drugs_in(text) == expected


def test_a_number_before_of_drug_belongs_to_that_drug() -> None:
    text = "Reduce to 25% of azathioprine when allopurinol 300 mg is given."
    assert attached_drug(text, (10, 13)) == "azathioprine"


def test_a_drug_written_with_a_dotted_capital_i_is_found_not_a_crash() -> None:
    assert drugs_in("AZATHIOPRİNE 2 mg/kg/day") == [(0, "azathioprine")]
