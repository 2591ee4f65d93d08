"""Fuzzing with hypothesis: 10,000 generated inputs in all (4,000 quantity-parser texts, 3,000
guard answers, 3,000 corpus files) without an unhandled exception, each checked against what must
hold, not only that nothing raised. Generators lean on what breaks parsers: huge and exponent
numbers, Unicode digits, control characters, nested ranges, YAML that is not a mapping.
(test_guard_properties.py runs the guard's own, smaller property suite.)"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from guardrails import Passage, check_answer, load_limits, parse_quantities, validate_patient
from ingest.citations import cited_source_ids
from ingest.errors import CorpusError
from ingest.loaders import load_file

pytestmark = pytest.mark.slow


def _budget(n: int) -> settings:
    return settings(
        max_examples=n,
        deadline=None,
        database=None,  # nothing written to the checkout
        derandomize=True,  # the same 10,000 inputs in every CI run
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str),
    st.sampled_from(["1e309", "1E-400", "NaN", "inf", "0x1F", "1_000", "1,0,0", "٣", "２", "½",
                     "⅓", "1.", ".5", "00012", "9" * 400, "1" * 30 + "." + "2" * 30, "-0", "+3"]),
)  # fmt: skip
WORDS = st.sampled_from([
    " mg", " g", " mcg", " µg", " ug", " mg/kg", " mg/kg/day", " mg/m2", " mg/m²", "/day", "/week",
    " IU", " %", " per cent", " kg", " mmol/L", " × 10^9/L", " daily", " twice daily", " weekly",
    " every", " 2 weeks", " months", " up to", " max", " at least", " about", "–", "-", "—", " to ",
    " or ", " and ", "/", "(", ")", "[1]", "[@a]", "[@a; @b]", "[99]", "[", "]", "**", "\n", "\t",
    "\x00", "\u200b", "\u202e", "\ufeff", "💊", " azathioprine", " methotrexate", " allopurinol",
    " prednisone", " one-third", " half", " × ", " x ", "·", ",", ";", ".", ":", "=", "≤", "≥",
])  # fmt: skip
HOSTILE_TEXT = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(NUMBERS, WORDS), max_size=40).map("".join),
)
PATIENT = validate_patient(70, "intermediate", "normal", ["allopurinol"])
LIMITS = load_limits()


@_budget(4000)
@given(text=HOSTILE_TEXT)
def test_quantity_parser_on_hostile_text_returns_well_formed_quantities(text: str) -> None:
    quantities = parse_quantities(text)
    previous_end = 0
    for q in quantities:
        start, end = q.span
        assert 0 <= start < end <= len(text)
        assert start >= previous_end  # spans do not overlap and come in text order
        previous_end = end
        assert text[start:end] == q.text
        assert isinstance(q.low, Decimal) and isinstance(q.high, Decimal)
        assert q.low.is_finite() and q.high.is_finite()  # never NaN or Infinity as a dose


PASSAGE_TEXT = st.lists(st.one_of(NUMBERS, WORDS), min_size=1, max_size=30).map("".join)


@_budget(3000)
@given(
    answer=HOSTILE_TEXT,
    passages=st.lists(PASSAGE_TEXT, min_size=0, max_size=3),
    with_patient=st.booleans(),
    drug=st.sampled_from([None, "azathioprine", "methotrexate", "unknown-drug", ""]),
)
def test_guard_on_hostile_answers_never_raises_and_never_passes_what_it_did_not_verify(
    answer: str, passages: list[str], with_patient: bool, drug: str | None
) -> None:
    ps = [Passage(n=i, text=t, drugs=("azathioprine",)) for i, t in enumerate(passages, 1)]
    patient = PATIENT if with_patient else None
    verdict = check_answer(answer, ps, patient, LIMITS, drug)
    if verdict.passed:
        assert verdict.error is None and verdict.failed == ()
        assert all(c.status.verified for c in verdict.claims)
    else:
        assert verdict.error is not None or verdict.failed
    assert check_answer(answer, ps, patient, LIMITS, drug) == verdict  # deterministic


# Field values drawn from fixed menus of valid and invalid choices: as hostile as free generation
# for a schema validator, at a fraction of hypothesis's cost per example.
_JUNK = [
    None,
    True,
    0,
    -1,
    1.5,
    float("nan"),
    "",
    " ",
    "x" * 300,
    "- [unclosed",
    "2026-13-45",
    dt.date(2026, 1, 1),
    [],
    {},
    {"nested": ["list"]},
    "\x00",
    "💊",
    "Ünïcödé",
]
_IDS = ["aza-x", "a", "a-b-c-1", "UPPER", "with space", "ünï", "-", "x" * 200, "../etc", "id;drop"]
_SOURCES = [
    [{"id": "src-a", "kind": "guideline", "reference": "A reference."}],
    [
        {"id": "src-a", "kind": "label", "reference": "R.", "url": "https://x"},
        {"id": "b", "kind": "trial", "reference": "R2."},
    ],
    [{"id": "src-a", "kind": "bogus", "reference": "R."}],
    [{"id": "src-a", "kind": "guideline"}],
    [
        {"id": "src-a", "kind": "guideline", "reference": "R."},
        {"id": "src-a", "kind": "guideline", "reference": "dup"},
    ],
    [{"id": 3, "kind": 3, "reference": None}],
    ["src-a"],
]
_VALID = {
    "id": "aza-x", "title": "Azathioprine dosing", "drugs": ["azathioprine"],
    "indications": ["lupus nephritis"], "audience": "clinician", "last_reviewed": "2026-01-01",
    "review_status": "draft", "sources": _SOURCES[0],
}  # fmt: skip
_MENU = {
    "id": _IDS + _JUNK,
    "title": ["T", "A title with [@src-a]", "Ein Titel über Dosen", *_JUNK],
    "drugs": [["Azathioprine"], ["azathioprine", "x y"], ["methotrexate", "folic acid"], *_JUNK],
    "indications": [[""], [1, 2], ["crohn disease", "ulcerative colitis"], *_JUNK],
    "audience": ["patient", "both", "everyone", *_JUNK],
    "last_reviewed": ["1900-01-01", "3000-01-01", "2026-02-30", *_JUNK],
    "review_status": ["approved", "clinician-reviewed", "meh", *_JUNK],
    "sources": _SOURCES[1:] + _JUNK,
    "extra": _JUNK,
}
# A valid front matter with up to three fields dropped or replaced: near-valid files reach the
# deep validation branches (and some load), where fully random ones stop at the first check.
FRONT = st.tuples(
    st.sets(st.sampled_from(sorted(_VALID)), max_size=2),
    st.lists(
        st.sampled_from(sorted(_MENU)).flatmap(
            lambda k: st.tuples(st.just(k), st.sampled_from(_MENU[k]))
        ),
        max_size=3,
    ),
).map(lambda t: {**{k: v for k, v in _VALID.items() if k not in t[0]}, **dict(t[1])})
_MARKERS = ["[@src-a]", "[@b]", "[@src-a; @b]", "[@nope]", "[@]", "[@src-a;]", "[1]", "[@ src-a ]"]
BODY = st.lists(
    st.one_of(
        st.sampled_from(
            ["# Title\n", "## Dosing\n", "### Sub\n", "```\n# not a heading\n```\n", "\n"]
        ),
        st.sampled_from(_MARKERS),
        st.lists(st.one_of(NUMBERS, WORDS), max_size=12).map("".join),
    ),
    max_size=12,
).map("".join)


def _file_text(front: dict[str, object], body: str, raw_front: str | None, fence: str) -> str:
    block = raw_front if raw_front is not None else yaml.safe_dump(front, allow_unicode=True)
    return f"{fence}\n{block}{'' if block.endswith(chr(10)) else chr(10)}---\n{body}"


_SCRATCH_DIR = tempfile.TemporaryDirectory(prefix="dosewise-fuzz-")
_SCRATCH = Path(_SCRATCH_DIR.name)


@_budget(3000)
@given(
    front=FRONT,
    body=BODY,
    raw_front=st.one_of(st.none(), st.none(), st.none(), st.text(max_size=200)),
    fence=st.sampled_from(["---"] * 6 + ["--- ", "---\r", "", "+++"]),
    encoding=st.sampled_from(["utf-8"] * 5 + ["utf-8-sig", "utf-16", "latin-1"]),
)
@example(  # a valid file, so the "loaded" branch below is certainly exercised
    front={"id": "aza-x", "title": "Azathioprine dosing", "drugs": ["azathioprine"],
           "indications": ["lupus nephritis"], "audience": "clinician", "last_reviewed": "2026-01-01",
           "review_status": "draft", "sources": _SOURCES[0]},
    body="# Azathioprine\n\n## Dosing\n\n2 mg/kg/day [@src-a].\n",
    raw_front=None, fence="---", encoding="utf-8",
)  # fmt: skip
def test_corpus_loader_on_generated_files_loads_or_reports_never_crashes(
    front: dict[str, object], body: str, raw_front: str | None, fence: str, encoding: str
) -> None:
    text = _file_text(front, body, raw_front, fence)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    path = _SCRATCH / "doc.md"  # one file, rewritten: a directory per example costs too much
    path.write_bytes(data)
    try:
        doc = load_file(path)
    except CorpusError as exc:
        assert exc.reason and exc.reason.strip()  # a reason a curator can act on
        event(f"rejected: {type(exc).__name__}")
        return
    event("loaded")
    # Loaded: it must be a document the rest of the pipeline can trust.
    assert re.fullmatch(r"[a-z0-9-]+", doc.doc_id)
    assert doc.body.strip() and len(doc.title) >= 1
    known = {s.id for s in doc.sources}
    assert set(cited_source_ids(doc.body)) <= known
    assert all(d == d.lower() for d in doc.drugs)
