"""Property tests: the parser and the guard never raise on arbitrary text, and formatting a
quantity then parsing it gives the same quantity back."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from guardrails import (
    ClaimVerdict,
    LimitRow,
    Passage,
    Quantity,
    check_answer,
    format_quantity,
    mutate_answer,
    parse_quantities,
    quantities_equivalent,
    validate_patient,
)
from guardrails.model import Status, fast_constructor
from guardrails.quantities import (
    _MASKS,
    _QUAL_SUFFIXES,
    _blank,
    _blank_at_line_starts,
    _digit_run_starts,
    _mask,
    _qualifier,
)
from guardrails.sentences import sentences

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks clinical enough to reach the deep branches of the parser.
_FRAGMENTS = st.sampled_from([
    "2", "0.5", "1,000", "–", "-", " to ", " mg", " g", " mcg", " µg", "/kg", "/day", "/m²",
    " daily", " weekly", " twice daily", " every ", " weeks", " months", " %", " one", "-third",
    " pmol/8×10^8 RBC", " × 10^9/L", " per patient-year", " [1]", " [@x]", "\n1. ", "up to ",
    "≥", " azathioprine ", " prednisone ", " of allopurinol", " between ", " and ", " in ",
    "**", ".", ";", " 2024", " 1 in ", "IL-6", " kg", " = ",
])  # fmt: skip
CLINICAL_TEXT = st.lists(_FRAGMENTS, max_size=30).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=300), CLINICAL_TEXT)

PASSAGES = [
    Passage(1, "Azathioprine 2 mg/kg/day, typically 100–200 mg/day [@a].", drugs=("azathioprine",)),
    Passage(2, "With allopurinol reduce azathioprine to 25 %.", drugs=("azathioprine",)),
]
PATIENT = validate_patient(70, "intermediate", "normal", ["allopurinol"])


@FAST
@given(ANY_TEXT)
def test_parser_never_raises_and_spans_point_into_the_text(text):
    for q in parse_quantities(text):
        s, e = q.span
        assert 0 <= s < e <= len(text) and text[s:e] == q.text


@FAST
@given(ANY_TEXT)
def test_guard_never_raises_and_never_passes_an_unverified_claim(text):
    v = check_answer(text, PASSAGES, patient=PATIENT, drug="azathioprine")
    assert v.error is None  # arbitrary text is not an internal error
    assert v.passed == all(c.status.verified for c in v.claims)


@FAST
@given(ANY_TEXT)
def test_mutator_never_raises_and_always_changes_text(text):
    for m in mutate_answer(text):
        assert m.mutated_text != text


_VALUES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000"), places=2)
_DOSE_SHAPES = st.sampled_from([
    # (unit, kind, per, per_count, per_kg, per_m2)
    ("mg", "dose", None, 1, False, False), ("mg", "dose", "day", 1, False, False),
    ("mg", "dose", "week", 1, False, False), ("mg", "dose", "day", 1, True, False),
    ("mg", "dose", "day", 2, False, False), ("mg", "dose", "2 week", 1, False, False),
    ("mg", "dose", "month", 1, False, True), ("mL", "dose", None, 1, False, False),
    ("%", "percent", None, 1, False, False), ("week", "duration", None, 1, False, False),
    ("month", "frequency", None, 1, False, False), ("pmol/8x10^8 RBC", "lab", None, 1, False, False),
    ("", "rate", "patient-year", 1, False, False), ("kg", "weight", None, 1, False, False),
])  # fmt: skip


@st.composite
def quantities(draw):
    unit, kind, per, count, per_kg, per_m2 = draw(_DOSE_SHAPES)
    low = draw(_VALUES)
    high = draw(st.one_of(st.just(low), _VALUES))
    qualifier = draw(st.sampled_from([None, "up_to", "at_least", "max", "approx"]))
    return Quantity(text="", span=(0, 0), low=low, high=high, unit=unit, per=per, per_kg=per_kg,
                    per_m2=per_m2, qualifier=qualifier, kind=kind, per_count=count)  # fmt: skip


@FAST
@given(quantities())
def test_format_then_parse_round_trips(q):
    text = format_quantity(q)
    parsed = parse_quantities(text)
    # "every 2 weeks" after a dose is a frequency claim of its own, after the dose.
    assert len(parsed) == (2 if q.per == "2 week" else 1), (text, parsed)
    assert quantities_equivalent(parsed[0], q), text
    assert parsed[0].qualifier == q.qualifier, text


@FAST
@given(CLINICAL_TEXT)
def test_parsed_quantities_equal_the_dataclass_built_from_their_fields(text):
    # The parser builds quantities with model.fast_constructor; they must be the very objects
    # the dataclass constructor makes: equal, same hash, same repr, still frozen.
    for q in parse_quantities(text):
        rebuilt = Quantity(**vars(q))
        assert q == rebuilt and hash(q) == hash(rebuilt) and repr(q) == repr(rebuilt)
        with pytest.raises(dataclasses.FrozenInstanceError):
            q.low = Decimal(0)  # type: ignore[misc]


def test_fast_constructor_refuses_missing_unknown_and_post_init_fields():
    make = fast_constructor(ClaimVerdict)
    q = parse_quantities("2 mg")[0]
    with pytest.raises(TypeError, match="status"):
        make(claim=q, reason="x")
    with pytest.raises(TypeError, match="colour"):
        make(claim=q, status=Status.SUPPORTED, reason="x", colour="red")
    assert make(claim=q, status=Status.SUPPORTED, reason="x") == ClaimVerdict(
        claim=q, status=Status.SUPPORTED, reason="x"
    )
    with pytest.raises(TypeError, match="own __init__"):
        fast_constructor(LimitRow)


_SENTENCE_PIECES = st.sampled_from(
    [".", "!", "?", " ", "  ", "\n", "\n\n", "\t", "\u00a0", "\r", "\x0b", "\x1c", "\u2003", "A",
     "a", "É", "1", "٣", "[", "(", "*", "#", "-", "•", "2.5", "mg", ";", "; "]
)  # fmt: skip
# The definition in guardrails/sentences.py's docstring, as the look-behind regex it started as.
_REFERENCE_SENTENCE_END = re.compile(r"\n+|(?<=[.!?])\s+(?=[A-Z0-9\[(*#\-•])")


@settings(max_examples=1500, deadline=None)
@given(st.lists(_SENTENCE_PIECES, max_size=40).map("".join))
def test_sentences_split_where_the_reference_definition_splits(text):
    expected, pos = [], 0
    for m in _REFERENCE_SENTENCE_END.finditer(text):
        if m.start() > pos:
            expected.append((pos, m.start()))
        pos = m.end()
    if pos < len(text):
        expected.append((pos, len(text)))
    assert list(sentences(text)) == expected


def _reference_qualifier(text: str, start: int) -> str | None:
    # The qualifier rule as first written: the whole 40-character window, white space
    # normalised, tried against every suffix.
    window = " ".join(text[max(0, start - 40) : start].lower().split())
    for suffix, qual, wordy in _QUAL_SUFFIXES:
        if window.endswith(suffix):
            cut = len(window) - len(suffix)
            if not wordy or cut == 0 or not window[cut - 1].isalnum():
                return qual
    return None


_QUALIFIER_PIECES = st.sampled_from(
    ["up", "to", "not", "exceed", "maximum", "daily", "dose", "of", "at", "least", "about", "~",
     "≤", "<", "=", "more", "than", "(", "*", "İ", "x", "setup", " ", "  ", "\n", "\t"]
)  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(st.lists(_QUALIFIER_PIECES, max_size=25).map(" ".join), st.sampled_from(["", " ", "\n"]))
def test_qualifier_reads_what_the_whole_window_reads(before, gap):
    text = before + gap + "2 mg"
    start = len(text) - 4
    assert _qualifier(text, start) == _reference_qualifier(text, start)


def test_numbers_longer_than_decimal_precision_format_and_mutate_without_raising():
    text = "1000000000000000000000000000 mg"  # 28 digits: ×10 outgrows Decimal's 28-digit context
    (q,) = parse_quantities(text)
    assert format_quantity(q) == text
    assert all(m.mutated_text != text for m in mutate_answer(text))


@settings(max_examples=1000, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789٣۵.,- aé–×²x"), max_size=60))
def test_digit_runs_start_where_the_digit_regex_finds_them(text):
    assert _digit_run_starts(text) == [m.start() for m in re.finditer(r"\d+", text)]


def test_a_decimal_digit_is_what_the_digit_regex_matches():
    # _digit_run_starts keeps the regex for any text holding a non-ASCII decimal digit.
    digit = re.compile(r"\d")
    assert all(chr(c).isdecimal() == bool(digit.match(chr(c))) for c in range(0x110000))


# Spans the parser blanks, their near misses, and the characters that change length or pair
# with an ASCII letter when lower-cased.
_MASK_FRAGMENTS = st.sampled_from([
    "Table 2", "table  3", "Fig. 1", "figure 4", "Section 5", "ref. 6", "Ref 7", "prefer 8",
    "step 9", "box 1", "version 2", "chapter 3", "appendix 4", "Type 1", "types 2", "type 2.5",
    "2024-01-02", "12024-01-02", "2024-1-2", "-", "[1]", "[1, 2]", "[@a]", "[ 3 ]", "Sources: 3",
    "source 4", "3 of 4 numbers verified", "pmol/8", "pmol per 8", "×10^9", "x 10⁹", "\n1. ",
    "\n## 2. ", " ", "a", "7", "\u017fection 2", "\u0130", "\u212aB", "ſtep 3", "é",
])  # fmt: skip


def _mask_by_substitution(text: str) -> str:
    """The masks' definition: each gated pattern substituted over the whole text, in order."""
    lower = text.lower()
    for gates, rx, _at in _MASKS:
        if gates is None:
            text = _blank_at_line_starts(text, rx)
        elif any(g in lower for g in gates):
            text = rx.sub(_blank, text)
    return text


@settings(max_examples=1000, deadline=None)
@given(
    st.one_of(
        st.lists(_MASK_FRAGMENTS, max_size=20).map("".join), CLINICAL_TEXT, st.text(max_size=80)
    )
)
def test_masks_tried_at_their_gates_blank_what_substitution_blanks(text):
    assert _mask(text) == _mask_by_substitution(text)


_NUMBER_WORD_FRAGMENTS = st.sampled_from([
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "zero",
    "hundred", "-third", "-quarter", "half", " ", "-", " mg", " weeks", " times", " to ", "for",
    "this", "several", "Forty", "THREE", "none", "often", "2", ".5", "x", "é", "İ", "\n",
])  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.lists(_NUMBER_WORD_FRAGMENTS, max_size=20).map("".join), CLINICAL_TEXT))
@example("forty mg for this, several times")
@example("Thirteen weeks; seventy mg; eleven doses; twelve times; nineteen days")
@example("three to four mg, one-third, two hundred and fifty mg, zero mg, fifty-five mg")
@example("eighteen weeks, sixteen mg, eight mg, nine mg, five mg, six mg, ten mg, ninety mg")
def test_number_candidates_find_what_trying_every_offset_finds(text):
    # The parser tries the number regex only at digit runs and number-word prefixes; trying
    # it at every offset is the definition.
    import guardrails.quantities as quantities

    every = quantities._parse.__wrapped__
    fast = every(text)
    saved = quantities._candidates
    quantities._candidates = lambda t, masked: list(range(len(masked)))
    try:
        reference = every(text)
    finally:
        quantities._candidates = saved
    assert fast == reference
