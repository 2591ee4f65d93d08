"""Find every number in clinical text and normalise it to a :class:`Quantity`.

Pure functions over strings; compiled regexes; ``Decimal`` values. Units are normalised with a
small factor table (g, mcg, ng -> mg; L -> mL), so the hot path never calls pint; the table is
written out and tests check it against pint (building pint's registry at import cost ~0.4 s of
every cold start).

What counts as a claim (edge cases):

- Integers, decimals, thousands separators (``3,736``), ranges written ``1-2``, ``1–2``,
  ``1 to 2``, ``between 1 and 2``, ``100 mg to 200 mg``, ``20 %–50 %``. A range keeps the
  order it was written in: ``200–100 mg`` has ``low=200, high=100`` and never equals
  ``100–200 mg``.
- Numbers in words only when a unit or time word follows (``two weeks``, ``three mg``), when
  they form a range (``one to two``), or as fractions (``one-third``, ``one-quarter``,
  ``two-thirds``, which become percentages: one-third == 33.33…%). A lone "one" is prose.
- Units and bases: mg, g, mcg/µg/ug, ng, mL, L, IU/units, mmol, mEq, %, ``/kg`` (``per_kg``),
  ``/m2``/``/m²`` (``per_m2``), lab units (``pmol/8×10^8 RBC`` in its spellings, mmol/L,
  µmol/L, mg/dL, g/L, x10^9/L, mL/min/1.73 m²…), body weight ``kg`` (kind ``weight``).
- Frequencies after a dose set ``per``: daily, once daily, /day, /d, per day, a day -> "day";
  twice daily/bid -> "day" with ``per_count=2``; weekly, once weekly, /week, per week ->
  "week"; monthly -> "month"; every N weeks -> "N week"; per patient-year -> "patient-year".
  ``every 3 months`` is itself a claim of kind ``frequency``; ``3 months`` is a ``duration``.
- Qualifiers just before the number: up to / not exceeding / ≤ -> ``up_to``; at least / ≥ ->
  ``at_least``; maximum / max -> ``max``; about / approximately / ~ -> ``approx``.
- ``1 in 178`` is a ``ratio`` with value 178; ``0.24 vs 0.89 per patient-year`` gives the
  first number the second one's unit.
- Digits none of the rules above read ("19th", "DOTN12", "20-TGN") are no quantity either, but
  :func:`unread_tokens` reports their tokens, so that the guard can refuse to pass them unseen.
- Not claims: citation markers (``[1]``, ``[1, 2]``, ``[@kdigo-2024]``), list and heading
  numbers at line start (``1.``, ``## 2.``), dates (ISO, ``3/12/2024``, ``03/2024``), bare
  years 1900–2100, numbers glued to letters (NUDT15, CYP2C9, TPMT*3A, IL-6, 6-TGN), the ``8``
  and ``10^8`` inside ``pmol/8×10^8 RBC``, "Table 2"/"Figure 1"/"section 4.2.1" labels, disease
  types ("type 1 diabetes") and the guard's own badge ("9 of 9 numbers verified", "Sources: 3").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from guardrails.model import Quantity, fast_constructor
from guardrails.textsearch import find_all, has_case_fold_trap, lowered

__all__ = [
    "UNIT_FACTORS",
    "format_quantity",
    "parse_quantities",
    "qualifiers_compatible",
    "quantities_equivalent",
    "unread_tokens",
]

# ---------------------------------------------------------------------------------------------
# Unit factors: Decimal, so parsing never touches pint (tests/test_quantities.py checks each
# against pint's conversion).

# written unit -> (canonical unit, factor to canonical)
UNIT_FACTORS: dict[str, tuple[str, Decimal]] = {
    "mg": ("mg", Decimal(1)),
    "g": ("mg", Decimal("1E+3")),
    "mcg": ("mg", Decimal("0.001")),
    "ng": ("mg", Decimal("0.000001")),
    "mL": ("mL", Decimal(1)),
    "L": ("mL", Decimal("1E+3")),
}

_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_quantity = fast_constructor(Quantity)

# ---------------------------------------------------------------------------------------------
# Numbers

_SMALL_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS_WORDS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_DENOMINATORS = {
    "half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4,
    "fourth": 4, "fourths": 4, "fifth": 5, "fifths": 5, "tenth": 10, "tenths": 10,
}  # fmt: skip
_WORD_OF = {v: k for k, v in _SMALL_WORDS.items()} | {v: k for k, v in _TENS_WORDS.items()}

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_BELOW_100 = (
    r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
    r"(?:[-\s](?:one|two|three|four|five|six|seven|eight|nine)(?![A-Za-z]))?"
    r"|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen"
    r"|fifteen|sixteen|seventeen|eighteen|nineteen"
)
# "one hundred and fifty": first, so "one" alone does not win; the tail is optional.
_WORDNUM = (
    r"(?:one|two|three|four|five|six|seven|eight|nine)\s+hundred"
    rf"(?:\s+(?:and\s+)?(?:{_BELOW_100})(?![A-Za-z]))?|{_BELOW_100}"
)
_FRACTION = r"(?:one|two|three)[-\s‐](?:halves|half|thirds?|quarters?|fourths?|fifths?|tenths?)"
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"

# A number not glued to a word, a decimal point, a slash or a caret on its left
# (NUDT15, 2.5's tail, pmol/8, 10^8) nor part of "IL-6".
_NUM_RE = re.compile(
    r"(?<![\w.,/^#])(?<![A-Za-z0-9]\*)(?<![A-Za-z][-‐‑])"
    # Digits first: the alternatives start with different characters, and most numbers are digits.
    rf"(?:(?P<dig>{_DIGITS})|(?P<frac>{_FRACTION})(?![A-Za-z])|(?P<word>{_WORDNUM})(?![A-Za-z]))"
    rf"(?![\d^{_SUPERSCRIPTS}])",
    re.IGNORECASE,
)

# ---------------------------------------------------------------------------------------------
# Spans that hold digits but no claim. Replaced by spaces (same length keeps spans valid).

# Compiled one by one for readability; applied in this order. (gates, pattern, at): a pattern
# only runs when one of its cheap gates (substrings of the lower-cased text) is present - most
# texts need three of ten. ``at`` (an offset, or None): every match starts that far from where a
# gate occurs, so the pattern is tried only there (``_blank_at_gates``) - a ``sub`` scan of every
# offset cost a quarter of a 300-word answer's parse when "ref" (of "prefer") opened the gate of
# the label pattern. Gates None: list and heading numbers ("1.", "## 2."), tried at each line
# start rather than by a MULTILINE "^" scan of every offset.
_MASKS: list[tuple[tuple[str, ...] | None, re.Pattern[str], int | None]] = [
    (("[",), re.compile(r"\[\s*@[^\]\n]*\]"), 0),  # [@kdigo-2024], [@a; @b]
    (("[",), re.compile(r"\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]"), 0),  # [1], [1, 2], [1–3]
    (("-",), re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), -4),  # ISO dates: four digits before the "-"
    (None, re.compile(r"[ \t]*(?:#{1,6}[ \t]*)?(?:[-*+][ \t]+)?\d+(?:\.\d+)*[.)](?=\s)"), None),
    (("verified",), re.compile(r"\b\d+\s+of\s+\d+\s+numbers?\s+verified", re.IGNORECASE), None),
    (("source",), re.compile(r"\bSources?:\s*\d+", re.IGNORECASE), 0),
    (("table", "fig", "section", "chapter", "appendix", "box", "version", "step", "ref"), re.compile(
        r"\b(?:table|figure|fig\.|section|chapter|appendix|box|version|step|ref\.?)\s+\d+(?:\.\d+)*",
        re.IGNORECASE,
    ), 0),
    # A disease type ("type 1 diabetes") is a name, not a figure; "type 2.5 mg" is no type.
    (("type",), re.compile(r"\btypes?\s+\d+(?!\d|[.,]\d)", re.IGNORECASE), 0),
    # "×10^8", "x 10⁹": the exponent mark is what is rare, not "10".
    (("^", *_SUPERSCRIPTS), re.compile(rf"[x×*·]\s*10\s*(?:\^\s*\d+|[{_SUPERSCRIPTS}]+)", re.IGNORECASE), None),
    (("pmol",), re.compile(r"pmol\s*(?:/|per)\s*8\b", re.IGNORECASE), 0),
    # Dates: "3/12/2024", "12.03.2024", "03/2024" (day and month are no figures either).
    (("/19", "/20", ".19", ".20"), re.compile(r"(?<![\w.,/])(?:\d{1,2}[/.]){1,2}(?:19|20)\d\d(?![\w/]|[.,]\d)"), None),
]  # fmt: skip


def _blank(m: re.Match[str]) -> str:
    return " " * (m.end() - m.start())


def _mask(text: str) -> str:
    lower = lowered(text)
    # Offsets in ``lower`` are offsets in ``text`` only when lower-casing kept the length, and a
    # gate word finds every IGNORECASE match only without the case-fold traps (textsearch).
    by_gates = len(lower) == len(text) and not has_case_fold_trap(text)
    for gates, rx, at in _MASKS:
        if gates is None:
            text = _blank_at_line_starts(text, rx)
        elif by_gates and at is not None:
            text = _blank_at_gates(text, lower, gates, rx, at)
        elif any(g in lower for g in gates):
            text = rx.sub(_blank, text)
    return text


def _blank_at_gates(
    text: str, lower: str, gates: tuple[str, ...], rx: re.Pattern[str], at: int
) -> str:
    """``rx.sub(_blank, text)`` for a pattern whose every match starts ``at`` characters from an
    occurrence of a gate in ``lower`` (the original text lower-cased; spans blanked by earlier
    masks are retried harmlessly: the pattern fails on blanks). Tried in order, each after the
    previous match's end: the leftmost match each time, as ``sub`` finds it."""
    starts = [i + at for g in gates for i in find_all(lower, g) if i + at >= 0]
    if not starts:
        return text
    if len(gates) > 1:
        starts.sort()
    parts: list[str] = []
    pos = 0
    for start in starts:
        if start < pos:
            continue
        m = rx.match(text, start)
        if m is not None and m.end() > m.start():
            parts += [text[pos : m.start()], " " * (m.end() - m.start())]
            pos = m.end()
    return "".join(parts) + text[pos:] if parts else text


def _blank_at_line_starts(text: str, rx: re.Pattern[str]) -> str:
    parts: list[str] = []
    pos = 0
    for start in [0] + [i + 1 for i in find_all(text, "\n")]:
        m = rx.match(text, start)
        if m is not None and m.end() > m.start():
            parts += [text[pos : m.start()], " " * (m.end() - m.start())]
            pos = m.end()
    return "".join(parts) + text[pos:] if parts else text


# ---------------------------------------------------------------------------------------------
# Units. Each alternative is a named group; m.lastgroup indexes the table below.

# Possessive: nothing that follows a run of these spaces starts with one, so giving spaces back
# can never find a match; it only made every miss retry each alternative once per space.
_SP = r"[ \t\u00a0\u202f]*+"
_SUP8 = r"(?:\^\s*8|⁸|8)"
_PER_8E8 = (
    rf"8{_SP}[x×*·]{_SP}10{_SP}{_SUP8}"
    rf"(?:{_SP}(?:RBCs?|red\s+(?:blood\s+)?cells|erythrocytes)(?![A-Za-z]))?"
)
# (regex, canonical unit, written unit key for UNIT_FACTORS or "", kind)
_UNIT_SPECS: list[tuple[str, str, str, str]] = [
    # "RBC" may be left implied ("pmol/8×10⁸"), the count bracketed ("pmol/(8×10⁸ RBC)"), the
    # product written with "*" or "·": the same unit to a reader.
    (rf"pmol{_SP}(?:/|per){_SP}(?:\({_SP}{_PER_8E8}{_SP}\)|{_PER_8E8})", "pmol/8x10^8 RBC", "", "lab"),
    (rf"[x×]{_SP}10{_SP}(?:\^{_SP}9|⁹){_SP}/{_SP}L", "x10^9/L", "", "lab"),
    (rf"mL{_SP}/{_SP}min{_SP}(?:/|per){_SP}1\.73{_SP}m(?:2|²|\^2)", "mL/min/1.73m2", "", "lab"),
    (r"mL/min", "mL/min", "", "lab"),
    (r"mmol/L", "mmol/L", "", "lab"),
    (r"(?:µ|μ|u)mol/L", "µmol/L", "", "lab"),
    (r"nmol/L", "nmol/L", "", "lab"),
    (r"mg/dL", "mg/dL", "", "lab"),
    (r"g/dL", "g/dL", "", "lab"),
    (r"mg/L", "mg/L", "", "lab"),
    (r"g/L", "g/L", "", "lab"),
    (r"ng/mL", "ng/mL", "", "lab"),
    (r"(?:µg|μg|mcg|ug)/mL", "µg/mL", "", "lab"),
    (r"U/L", "U/L", "", "lab"),
    (r"/mm(?:3|³)", "/mm3", "", "lab"),
    (r"kg/m(?:2|²|\^2)", "kg/m2", "", "lab"),
    (r"%|percent|per\s+cent", "%", "", "percent"),
    (r"mg|milligrams?|milligrammes?", "mg", "mg", "dose"),
    (r"mcg|µg|μg|ug|micrograms?|microgrammes?", "mg", "mcg", "dose"),
    (r"ng|nanograms?", "mg", "ng", "dose"),
    (r"g|grams?|grammes?|gm", "mg", "g", "dose"),
    (r"mL|ml|millilit(?:er|re)s?", "mL", "mL", "dose"),
    (r"L|lit(?:er|re)s?", "mL", "L", "dose"),
    (r"IU|international\s+units?|units?", "IU", "", "dose"),
    (r"mmol", "mmol", "", "dose"),
    (r"mEq", "mEq", "", "dose"),
    (r"kg|kilograms?", "kg", "", "weight"),
    (r"days?", "day", "", "duration"),
    (r"weeks?|wks?", "week", "", "duration"),
    (r"months?|mos?", "month", "", "duration"),
    (r"years?|yrs?", "year", "", "duration"),
    (r"hours?|hrs?|h", "hour", "", "duration"),
    (r"minutes?|mins?", "minute", "", "duration"),
    (r"tablets?|tabs?", "tablet", "", "count"),
    (r"capsules?|caps?", "capsule", "", "count"),
    (r"doses?", "dose", "", "count"),
    (r"cycles?", "cycle", "", "count"),
    (r"infusions?", "infusion", "", "count"),
    (r"pulses?", "pulse", "", "count"),
    (r"courses?", "course", "", "count"),
]  # fmt: skip
_UNIT_RE = re.compile(
    rf"{_SP}-?+{_SP}(?:"
    + "|".join(f"(?P<u{i}>{spec[0]})" for i, spec in enumerate(_UNIT_SPECS))
    + r")(?![A-Za-z0-9²³])",
    re.IGNORECASE,
)
_UNIT_OF_GROUP = {f"u{i}": spec[1:] for i, spec in enumerate(_UNIT_SPECS)}
# Case matters for these short units: "L" alone (not "l"), "U/L", "h".
_CASE_SENSITIVE = {"L": "L"}

_PER_KG_RE = re.compile(
    rf"{_SP}(?:/|per){_SP}(?:kg|kilograms?)(?![A-Za-z])(?:{_SP}(?:of{_SP})?(?:(?:real|actual|ideal|lean){_SP})?body{_SP}weight)?",
    re.IGNORECASE,
)
_PER_M2_RE = re.compile(
    rf"{_SP}(?:/|per){_SP}(?:m(?:2|²|\^2)|sq\.?{_SP}m|square\s+met(?:er|re))(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# "500 mg IV fixed dose every 2 weeks": route and dose words may sit between unit and frequency.
_DOSE_WORDS = rf"(?:{_SP}(?:as{_SP}a{_SP})?(?:fixed|single|flat|total|loading|starting|initial|maintenance){_SP}dose(?![A-Za-z]))?"
_ROUTE = rf"(?:{_SP}(?:IV|i\.v\.|PO|p\.o\.|orally|by\s+mouth|oral|intravenously|SC|s\.c\.|subcutaneously|IM|intramuscularly|infusion)(?![A-Za-z]))?"
_EVERY_N = rf"(?P<every_n>\d+(?:\.\d+)?|{_WORDNUM}|other)"
# "twice daily" = "two times a day" = "2 times per day" = "2x daily" = "2×/day" (n: the count).
_TIMES = r"(?:{n})\s*(?:times|x|×)"
_A_DAY = r"\s*(?:daily|a\s+day|per\s+day|/\s*day|/\s*d)(?![A-Za-z])"
_PER_SPECS: list[tuple[str, str, int]] = [
    (rf"{_SP}(?:/|per){_SP}(?:(?P<py_n>\d+){_SP})?patient[-\s]?years?", "patient-year", 1),
    (rf"{_SP}(?:/|per){_SP}(?:day|d|24{_SP}(?:hours?|hrs?|h))(?![A-Za-z])", "day", 1),
    (rf"{_SP}(?:/|per){_SP}(?:week|wk|w)(?![A-Za-z])", "week", 1),
    (rf"{_SP}(?:/|per){_SP}(?:month|mo)(?![A-Za-z])", "month", 1),
    (rf"{_SP}(?:/|per){_SP}dose(?![A-Za-z])", "dose", 1),
    (rf"{_SP}(?:/|per){_SP}(?:hour|hr|h)(?![A-Za-z])", "hour", 1),
    (rf"{_SP}(?:twice|{_TIMES.format(n='two|2')}){_A_DAY}|{_SP}b\.?i\.?d\.?(?![A-Za-z])", "day", 2),
    (rf"{_SP}(?:thrice|{_TIMES.format(n='three|3')}){_A_DAY}|{_SP}t\.?i\.?d\.?(?![A-Za-z])", "day", 3),
    (rf"{_SP}{_TIMES.format(n='four|4')}{_A_DAY}|{_SP}q\.?i\.?d\.?(?![A-Za-z])", "day", 4),
    (rf"{_SP}(?:twice|{_TIMES.format(n='two|2')})\s*(?:weekly|a\s+week|per\s+week|/\s*week)", "week", 2),
    (rf"{_SP}(?:once{_SP})?daily|{_SP}once\s+(?:a|per)\s+day|{_SP}(?:a|each|every)\s+day(?![A-Za-z])|{_SP}(?:qd|od)(?![A-Za-z])", "day", 1),
    (rf"{_SP}(?:once{_SP})?weekly|{_SP}once\s+(?:a|per)\s+week|{_SP}(?:a|each|every)\s+week(?![A-Za-z])", "week", 1),
    (rf"{_SP}(?:once{_SP})?monthly|{_SP}once\s+(?:a|per)\s+month|{_SP}(?:a|each|every)\s+month(?![A-Za-z])", "month", 1),
    (rf"{_SP}quarterly", "3 month", 1),
    (rf"{_SP}(?:every|q\.?){_SP}{_EVERY_N}{_SP}(?P<every_u>days?|weeks?|months?|hours?|hrs?|h)(?![A-Za-z])", "every", 1),
]  # fmt: skip
_PER_RE = re.compile(
    _ROUTE
    + _DOSE_WORDS
    + "(?:"
    + "|".join(f"(?P<p{i}>{spec[0]})" for i, spec in enumerate(_PER_SPECS))
    + ")",
    re.IGNORECASE,
)
_PER_INDEX_OF_GROUP = {f"p{i}": i for i in range(len(_PER_SPECS))}
_PY_ONLY_RE = re.compile(_PER_SPECS[0][0], re.IGNORECASE)
_UNIT_SINGULAR = {
    "days": "day",
    "weeks": "week",
    "months": "month",
    "hours": "hour",
    "h": "hour",
    "hr": "hour",
    "hrs": "hour",
}

_RANGE_SEP_RE = re.compile(rf"{_SP}(?:-|‐|‑|–|—|−|to|and){_SP}", re.IGNORECASE)
_RATIO_RE = re.compile(rf"{_SP}in{_SP}", re.IGNORECASE)
# (suffix, qualifier, must start at a word boundary), longest first; matched with endswith on
# the whitespace-normalised, lower-cased 40 characters before a number (no regex scan).
_QUAL_SUFFIXES = sorted(
    [(w, "up_to", True) for w in ("up to", "no more than", "not more than", "not exceeding",
                                  "not to exceed", "not above", "below", "under", "less than")]
    + [(w, "up_to", False) for w in ("≤", "=<", "<=", "<")]
    + [(w, "at_least", True) for w in ("at least", "no less than", "not less than", "minimum",
                                       "minimum of", "min.", "above", "over", "more than",
                                       "greater than", "exceeding")]
    + [(w, "at_least", False) for w in ("≥", ">=", ">")]
    + [(w, "max", True) for w in ("maximum", "maximum of", "maximum dose", "maximum dose of",
                                  "maximum daily dose", "maximum daily dose of", "max", "max.",
                                  "max dose", "max. dose", "ceiling of")]
    + [(w, "approx", True) for w in ("about", "approximately", "approx", "approx.", "around",
                                     "roughly", "circa")]
    + [(w, "approx", False) for w in ("~", "≈")],
    key=lambda t: -len(t[0]),
)  # fmt: skip
_QUAL_SYMBOLS = [t for t in _QUAL_SUFFIXES if not t[2]]
_QUAL_MAX_WORDS = max(len(t[0].split()) for t in _QUAL_SUFFIXES)
_QUAL_SYMBOL_ENDS = frozenset(t[0][-1] for t in _QUAL_SYMBOLS)
_QUAL_BY_LAST_WORD: dict[str, list[tuple[str, str, bool]]] = {}
for _t in _QUAL_SUFFIXES:
    if _t[2]:
        _QUAL_BY_LAST_WORD.setdefault(_t[0].rsplit(" ", 1)[-1], []).append(_t)
_EVERY_BEFORE_RE = re.compile(r"(?:\bevery|\bq)\s*$", re.IGNORECASE)
_BETWEEN_BEFORE_RE = re.compile(r"\bbetween\s*$", re.IGNORECASE)
_LIST_SEP_RE = re.compile(r"\s*(?:,|vs\.?|versus|or|and)\s*", re.IGNORECASE)
# A number word without a unit is still a claim in these contexts ("three times a week",
# "the six monthly pulses", "in month two", "× six").
_WORD_AFTER_RE = re.compile(
    r"\s+(?:times|monthly|weekly|daily|fold|more|further|additional|consecutive|divided|"
    r"pulses|cycles|doses|courses|infusions|tablets|capsules)\b",
    re.IGNORECASE,
)
_WORD_BEFORE_RE = re.compile(
    r"(?:\b(?:month|week|day|year|cycle|dose|step|stage|grade|class)\s+|[×x]\s*)$", re.IGNORECASE
)
_TIME_UNITS = frozenset({"day", "week", "month", "year", "hour", "minute"})


# ---------------------------------------------------------------------------------------------
# Reading one quantity


def _word_value(words: str) -> Decimal:
    """'forty-five' 45, 'one hundred and fifty' 150 ("and" adds nothing, "hundred" multiplies)."""
    total = 0
    for p in re.split(r"[-\s]+", words.lower()):
        total = (
            total * 100
            if p == "hundred"
            else total + _TENS_WORDS.get(p, 0) + _SMALL_WORDS.get(p, 0)
        )
    return Decimal(total)


def _num_value(m: re.Match[str]) -> tuple[Decimal, str]:
    """(value, how it was written: 'dig' | 'word' | 'frac'); fractions are percentages."""
    how = m.lastgroup  # the three are alternatives with no named group inside
    if how == "dig":
        digits = m.group("dig")
        return Decimal(digits.replace(",", "") if "," in digits else digits), "dig"
    if how == "word":
        return _word_value(m.group("word")), "word"
    num_word, den_word = re.split(r"[-\s‐]+", m.group("frac").lower())
    return _HUNDRED * _SMALL_WORDS[num_word] / _DENOMINATORS[den_word], "frac"


def _read_unit(text: str, pos: int) -> tuple[str, str, str, int] | None:
    """(canonical unit, written unit key, kind, end) for a unit starting at ``pos``."""
    m = _UNIT_RE.match(text, pos)
    if m is None or m.lastgroup is None:
        return None
    written = m.group(m.lastgroup)
    canonical, key, kind = _UNIT_OF_GROUP[m.lastgroup]
    if canonical == "mL" and key == "L" and written != "L" and written.lower() == "l":
        return None  # a lone lower-case "l" is prose, not litres
    if canonical == "hour" and written.lower() == "h" and written != "h":
        return None
    return canonical, key, kind, m.end()


_SPACES = " \t\u00a0\u202f"  # what _SP matches


def _after_spaces(text: str, pos: int) -> int:
    size = len(text)
    while pos < size and text[pos] in _SPACES:
        pos += 1
    return pos


def _next_char(text: str, pos: int) -> str:
    """The character after the spaces at ``pos`` ("" at the end): the regexes below start with
    spaces and then need one of a few characters, so a look at it spares most regex misses."""
    c = text[pos : pos + 1]
    if c and c not in _SPACES:  # most often: no space to skip, and no call to skip none
        return c
    pos = _after_spaces(text, pos)
    return text[pos : pos + 1]


def _may_be_per_basis(text: str, pos: int, letters: str) -> bool:
    """Whether a per-kg or per-m² basis may start at ``pos``: "per", or "/" and then one of
    ``letters`` (what its unit starts with, with the letters IGNORECASE pairs with it: the
    Kelvin sign with "k", "ſ" with "s"), each after optional spaces."""
    c = text[pos : pos + 1]
    if c in _SPACES:  # "" too: then the end is reached either way
        pos = _after_spaces(text, pos)
        c = text[pos : pos + 1]
    if c == "/":
        nxt = _next_char(text, pos + 1)
        return nxt != "" and nxt in letters
    return c != "" and c in "pP"


_RANGE_SEP_STARTS = "-‐‑–—−tTaA"  # of _RANGE_SEP_RE after its spaces: dashes, "to", "and"


def _read_per(text: str, pos: int, kind: str) -> tuple[str, int, int, int] | None:
    """(per, per_count, end, consumed end) for a frequency or basis right after a unit."""
    if kind not in ("dose", "count", "lab", "percent"):
        return None
    m = _PER_RE.match(text, pos)
    if m is None or m.lastgroup is None:
        return None
    if m.lastgroup in ("every_n", "every_u", "py_n"):
        idx = next(i for i in range(len(_PER_SPECS)) if m.group(f"p{i}") is not None)
    else:
        idx = _PER_INDEX_OF_GROUP[m.lastgroup]
    per, count = _PER_SPECS[idx][1], _PER_SPECS[idx][2]
    if per == "every":
        n_txt = m.group("every_n").lower()
        unit = m.group("every_u").lower()
        unit = _UNIT_SINGULAR.get(unit, unit)
        if n_txt == "other":
            n = Decimal(2)
        elif n_txt[0].isdigit():
            n = Decimal(n_txt)
        else:
            n = _word_value(n_txt)
        if unit == "hour" and n and (24 % n == 0 or n % 24 == 0):
            # "q12h" = "every 12 hours" = twice daily; "every 48 hours" = every 2 days. The N is
            # part of this frequency, not a claim of its own (the source may say "twice daily").
            if 24 % n == 0:
                return "day", int(24 / n), m.end(), m.end()
            return ("day" if n == 24 else f"{_fmt_decimal(n / 24)} day"), count, m.end(), m.end()
        per = unit if n == 1 else f"{_fmt_decimal(n)} {unit}"
        # The N of "every N weeks" stays a claim of its own: end before it.
        return per, count, m.end(), m.start("every_n") if n_txt != "other" else m.end()
    if per == "patient-year" and m.group("py_n"):
        per = f"{m.group('py_n')} patient-year"
    return per, count, m.end(), m.end()


def _qualifier(text: str, start: int) -> str | None:
    before = text[max(0, start - 40) : start]
    # The window is the 40 characters before the number with white space normalised; a suffix
    # spans at most _QUAL_MAX_WORDS of its words, so only those are joined. Most numbers have
    # no qualifier: the last word alone decides that.
    # The last word first (two pieces, not seven): it rules out most numbers.
    tail = before.rsplit(None, 1)
    if not tail:
        return None
    last_word = tail[-1].lower()
    if last_word[-1] in _QUAL_SYMBOL_ENDS:
        candidates = _QUAL_SYMBOLS
    else:
        candidates = _QUAL_BY_LAST_WORD.get(last_word.lstrip("([{\"'*"), [])
        if not candidates:
            return None
    words = before.rsplit(None, _QUAL_MAX_WORDS)
    window = " ".join(words[1:] if len(words) > _QUAL_MAX_WORDS else words).lower()
    for suffix, qual, wordy in candidates:
        if window.endswith(suffix):
            cut = len(window) - len(suffix)
            if not wordy or cut == 0 or not window[cut - 1].isalnum():
                return qual
    return None


def _is_year(value: Decimal, how: str) -> bool:
    return how == "dig" and value == value.to_integral_value() and 1900 <= value <= 2100


def _read(text: str, masked: str, m: re.Match[str]) -> tuple[Quantity | None, int]:
    """The quantity starting at number match ``m``; the end of the text it consumed."""
    start = m.start()
    a, how_a = _num_value(m)
    pos = m.end()
    nxt = text[pos : pos + 1]
    if nxt in "-‐‑" and pos + 1 < len(text) and text[pos + 1].isalpha():
        unit_try = _read_unit(text, pos)
        if unit_try is None or unit_try[2] not in ("duration", "dose"):
            return None, pos  # 6-TGN, 6-mercaptopurine: a name, not a number
    elif nxt.isalpha() and _read_unit(text, pos) is None and how_a == "dig":
        return None, pos  # 3A, 2C9

    # 1 in 178 (to 1 in 3,736)
    if how_a == "dig" and a == 1:
        rm = _RATIO_RE.match(text, pos)
        dm = _NUM_RE.match(masked, rm.end()) if rm else None
        if rm and dm and dm.group("dig"):
            den = _num_value(dm)[0]
            low = high = den
            end = dm.end()
            sm = _RANGE_SEP_RE.match(text, end)
            if sm:
                m1 = _NUM_RE.match(masked, sm.end())
                rm2 = _RATIO_RE.match(text, m1.end()) if m1 and m1.group("dig") else None
                dm2 = _NUM_RE.match(masked, rm2.end()) if rm2 else None
                if m1 and rm2 and dm2 and dm2.group("dig") and _num_value(m1)[0] == 1:
                    high = _num_value(dm2)[0]
                    end = dm2.end()
            q = _quantity(text=text[start:end], span=(start, end), low=low, high=high,
                         unit="1 in", kind="ratio", raw_low=low, raw_high=high, raw_unit="1 in",
                         qualifier=_qualifier(text, start))  # fmt: skip
            return q, end

    b: Decimal | None = None
    how_b = ""
    sm = _RANGE_SEP_RE.match(text, pos) if _next_char(text, pos) in _RANGE_SEP_STARTS else None
    if sm and (
        sm.group(0).strip().lower() != "and"
        or _BETWEEN_BEFORE_RE.search(text, max(0, start - 12), start)
    ):
        m2 = _NUM_RE.match(masked, sm.end())
        if m2 is not None:
            b, how_b = _num_value(m2)
            pos = m2.end()

    unit = _read_unit(text, pos)
    if b is None and unit is not None:
        # "100 mg to 200 mg", "20 % to 50 %"
        sm = (
            _RANGE_SEP_RE.match(text, unit[3])
            if _next_char(text, unit[3]) in _RANGE_SEP_STARTS
            else None
        )
        if sm and sm.group(0).strip().lower() != "and":
            m2 = _NUM_RE.match(masked, sm.end())
            if m2 is not None:
                unit2 = _read_unit(text, m2.end())
                if unit2 is not None and unit2[:2] == unit[:2]:
                    b, how_b = _num_value(m2)
                    unit = unit2

    if how_a == "frac" or how_b == "frac":
        only_fractions = how_a == "frac" and how_b in ("", "frac")
        if unit is not None and unit[2] != "percent" or not only_fractions:
            return None, m.end()
        unit = ("%", "", "percent", pos)
    if (
        unit is None
        and how_a == "word"
        and b is None
        and not _WORD_AFTER_RE.match(text, pos)
        and not _WORD_BEFORE_RE.search(text, max(0, start - 12), start)
    ):
        return None, m.end()  # "one of", "no one": prose
    if unit is None and _is_year(a, how_a) and (b is None or _is_year(b, how_b)):
        return None, pos

    high = a if b is None else b
    canonical, key, kind = ("", "", "number") if unit is None else unit[:3]
    end = pos if unit is None else unit[3]
    per: str | None = None
    per_count = 1
    per_kg = per_m2 = False
    consumed = 0
    if kind in ("dose", "percent", "lab", "count"):
        if kind == "dose":
            kg = _PER_KG_RE.match(text, end) if _may_be_per_basis(text, end, "kK\u212a") else None
            if kg:
                per_kg, end = True, kg.end()
            m2m = (
                _PER_M2_RE.match(text, end) if _may_be_per_basis(text, end, "mMsS\u017f") else None
            )
            if m2m:
                per_m2, end = True, m2m.end()
        got = _read_per(text, end, kind)
        if got is not None:
            per, per_count, end, consumed = got
    elif kind == "number":
        pm = _PY_ONLY_RE.match(text, end)
        if pm is not None:
            per = f"{pm.group('py_n')} patient-year" if pm.group("py_n") else "patient-year"
            end = pm.end()
    if per is not None and per.endswith("patient-year"):
        kind = "rate"
    qual_pos = start
    every = _EVERY_BEFORE_RE.search(text, max(0, start - 8), start) if kind == "duration" else None
    if every:
        kind = "frequency"
        qual_pos = every.start()  # "up to every 2 weeks"

    consumed = min(consumed, end) if consumed else end
    factor = UNIT_FACTORS[key][1] if key else _ONE
    # Trim trailing spaces an optional group may have swallowed, so the span is the claim.
    while end > start and text[end - 1] in " \t\u00a0\u202f":
        end -= 1
    q = _quantity(
        text=text[start:end],
        span=(start, end),
        low=a * factor,
        high=high * factor,
        unit=canonical,
        per=per,
        per_kg=per_kg,
        per_m2=per_m2,
        qualifier=_qualifier(text, qual_pos),
        kind=kind,
        raw_low=a,
        raw_high=high,
        raw_unit=key or canonical,
        per_count=per_count,
    )
    return q, consumed


def _propagate_units(text: str, qs: list[Quantity]) -> list[Quantity]:
    """'0.24 vs 0.89 per patient-year', '2.5 or 5 mg': a bare number takes the next unit."""
    out = list(qs)
    for i in range(len(out) - 2, -1, -1):
        q, nxt = out[i], out[i + 1]
        if q.kind != "number" or q.per is not None or nxt.kind in ("number", "ratio"):
            continue
        gap = _LIST_SEP_RE.fullmatch(text, q.span[1], nxt.span[0])
        if gap is None:
            continue
        factor = UNIT_FACTORS[nxt.raw_unit][1] if nxt.raw_unit in UNIT_FACTORS else _ONE
        raw_low = q.raw_low if q.raw_low is not None else q.low
        raw_high = q.raw_high if q.raw_high is not None else q.high
        out[i] = _quantity(
            text=q.text, span=q.span, low=raw_low * factor, high=raw_high * factor,
            unit=nxt.unit, per=nxt.per, per_kg=nxt.per_kg, per_m2=nxt.per_m2,
            qualifier=q.qualifier, kind=nxt.kind, raw_low=raw_low, raw_high=raw_high,
            raw_unit=nxt.raw_unit, per_count=nxt.per_count,
        )  # fmt: skip
    return out


_DIGIT_RUN_RE = re.compile(r"\d+")
# Prefixes of every number word; the anchored number regex confirms or rejects each hit. As
# long as the words allow: "for", "thi" and "sev" alone start "for", "this", "thiopurine",
# "several", each a failed number match in most sentences.
_WORD_PREFIXES = (
    "one", "two", "thre", "four", "five", "six", "seve", "eigh", "nine", "ten", "elev", "twe",
    "thir", "fift", "zero", "fort",
)  # fmt: skip
_WORD_START_ANYCASE_RE = re.compile(rf"(?<![A-Za-z])(?:{'|'.join(_WORD_PREFIXES)})", re.I)


_ASCII_RUN_RE = re.compile(r"[\x00-\x7f]+")


def _digit_run_starts(text: str) -> list[int]:
    """Where each run of ``\\d`` starts. A regex scan of every offset costs several times what
    ``str.find`` of the ten ASCII digits does; the regex stays for texts with other decimal
    digits ('٣'), which ``\\d`` also matches."""
    if not text.isascii() and any(c.isdecimal() for c in _ASCII_RUN_RE.sub("", text)):
        return [m.start() for m in _DIGIT_RUN_RE.finditer(text)]
    at = [i for digit in "0123456789" for i in find_all(text, digit)]
    at.sort()
    return [i for k, i in enumerate(at) if k == 0 or at[k - 1] != i - 1]


def _candidates(text: str, masked: str) -> list[int]:
    """Where a number may start in ``masked`` (``text`` with spans blanked): digit runs (with a
    leading ".") and number-word prefixes not glued to a letter. Anchored matches at these few
    places are much cheaper than letting the number regex scan every position."""
    # A digit run may start with "." ("0.5" is read from its first digit, ".5" from the dot);
    # the "." is checked after (it is never part of the previous run).
    starts = [s - 1 if s and masked[s - 1] == "." else s for s in _digit_run_starts(masked)]
    lower = lowered(text)
    if len(lower) == len(text):
        # str.find per prefix on the lower-cased text is cheaper than a regex scan of every
        # offset. Hits inside blanked spans are harmless (the number regex fails on blanks);
        # a prefix glued to a letter on its left (in the masked text) is no word start.
        for prefix in _WORD_PREFIXES:
            starts += [
                i
                for i in find_all(lower, prefix)
                if not (i and "a" <= masked[i - 1].lower() <= "z")
            ]
    else:  # a few characters lower-case to two; positions would shift
        starts += [m.start() for m in _WORD_START_ANYCASE_RE.finditer(masked)]
    starts.sort()
    return starts


@lru_cache(maxsize=4096)
def _masked(text: str) -> str:
    """``_mask(text)``, remembered: :func:`unread_tokens` reads the answer's masked text again."""
    return _mask(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> tuple[Quantity, ...]:
    masked = _masked(text)
    found: list[Quantity] = []
    consumed = 0
    for pos in _candidates(text, masked):
        if pos < consumed:
            continue
        m = _NUM_RE.match(masked, pos)
        if m is None:
            continue
        try:
            q, end = _read(text, masked, m)
        except (InvalidOperation, KeyError, ValueError, IndexError):
            q, end = None, m.end()
        consumed = max(consumed, end)
        if q is not None:
            found.append(q)
    if "|" in text and any(q.kind == "number" for q in found):
        found = _table_units(text, found)
    return tuple(_propagate_units(text, found))


# ---------------------------------------------------------------------------------------------
# Digits the parser does not read. A fail-closed guard must not let a digit pass unseen: "the
# 19th day", "DOTN12 days", "20-TGN" each hold a figure nobody checked. What is left after the
# masks above and the quantities read is a token with a digit in it; it is no figure only when it
# is a name (a gene, allele, metabolite or drug written with digits), a year, or - decided by the
# guard, which has the passages - written the same way in a passage it may come from.

_NAME_GENES = r"TPMT|NUDT15|ITPA|G6PD|UGT1A1|SLCO1B1|ABCC4|MTHFR|CYP\d[A-Z]?\d*|HLA-[A-Z]{1,4}\d*"
_NAME_METABOLITES = (
    r"6-(?:TGNs?|TGs?|MMPR?s?|MeMPs?|MPs?|TU|TIMP|TXMP|thioguanines?(?:[-\s]nucleotides?)?"
    r"|mercaptopurines?|methylmercaptopurines?|methyl-mercaptopurines?|thiouric)"
)
# Allele suffixes: "*3A", "*58:01", "*3A/*3C".
_ALLELE = r"(?:\*[0-9A-Z]+(?::[0-9A-Z]+)*)"
_DIGIT_NAMES_RE = re.compile(
    rf"(?:(?:{_NAME_GENES}){_ALLELE}?(?:/{_ALLELE})?|{_NAME_METABOLITES}|IL-\d+|COVID-19"
    r"|SARS-CoV-2|5-ASA|5-FU|B12|B6|D3|CD\d+|H[12]|HbA1c|Ig[AGEM]\d?|T[34])",
    re.IGNORECASE,
)
_YEAR_RUN_RE = re.compile(r"(?:19\d\d|20\d\d|2100)")
# A source id written out ("eular-2019-ln", "cpic-2018"): lower case, a year among its parts.
_SOURCE_ID_RE = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*-(?:19|20)\d\d(?:-[a-z0-9]+)*")
_TOKEN_STOP = frozenset(" \t\n\r\u00a0\u202f[](){}<>,;\"'`|/–—")
_TOKEN_TRIM = ".:;-‐‑*+_"


def _is_digit_name(token: str) -> bool:
    from guardrails.lexicon import DRUG_ALIASES  # the drug table: "6-mp", "6-mercaptopurine"

    return bool(_DIGIT_NAMES_RE.fullmatch(token)) or token.lower() in DRUG_ALIASES


@lru_cache(maxsize=1024)
def unread_tokens(text: str) -> tuple[tuple[int, int], ...]:
    """Spans of the tokens holding a digit that :func:`parse_quantities` did not read as (part
    of) a quantity and no mask explains: not a citation, list number, date, year, label,
    disease type or name. "DOTN12", "19th", "20-TGN" are; "NUDT15", "TPMT*3A", "6-TGN",
    "2019", "[3]" and "Table 2" are not."""
    if not isinstance(text, str) or not text:
        return ()
    covered = [q.span for q in _parse(text)]  # in text order
    masked = _masked(text)
    out: list[tuple[int, int]] = []
    k = 0
    for m in _DIGIT_RUN_RE.finditer(masked):
        s, e = m.span()
        while k < len(covered) and covered[k][1] <= s:
            k += 1
        if k < len(covered) and covered[k][0] <= s:
            continue  # read as (part of) a quantity
        if out and s < out[-1][1]:
            continue  # the same token as the previous run
        a, b = s, e
        # "/" ends a token ("azathioprine/6-MP") but not inside an allele pair ("*3A/*3C").
        while a > 0 and (text[a - 1] not in _TOKEN_STOP or text[a - 1 : a + 1] == "/*"):
            a -= 1
        while b < len(text) and (text[b] not in _TOKEN_STOP or text[b : b + 2] == "/*"):
            b += 1
        while a < s and text[a] in _TOKEN_TRIM:
            a += 1
        while b > e and text[b - 1] in _TOKEN_TRIM:
            b -= 1
        token = text[a:b]
        if token == m.group() and _YEAR_RUN_RE.fullmatch(token):
            continue  # a bare year
        if (
            (s, e) != (a, b)
            and _YEAR_RUN_RE.fullmatch(m.group())
            and not any(c.isalpha() for c in text[a:s] + text[e:b])
        ):
            continue  # "2019-2021", "(2019)."
        if _is_digit_name(token) or _SOURCE_ID_RE.fullmatch(token):
            continue
        out.append((a, b))
    return tuple(out)


_TABLE_RULE_RE = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")


def _cells(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of each cell of the pipe-table row ``text[start:end]``, pipes excluded."""
    bars = [i for i in range(start, end) if text[i] == "|"]
    return [(a + 1, b) for a, b in zip(bars, bars[1:], strict=False)]


def _header_unit(cell: str) -> str | None:
    """The unit a header cell gives its column: "Dose (mg/kg/day)" or "mg/day" alone."""
    cell = cell.strip()
    inner = cell[cell.rfind("(") + 1 : -1] if cell.endswith(")") and "(" in cell else cell
    got = _parse("1 " + inner) if inner else ()
    if len(got) == 1 and got[0].kind != "number" and got[0].span == (0, len(inner) + 2):
        return inner
    return None


def _table_units(text: str, found: list[Quantity]) -> list[Quantity]:
    """A bare number in a pipe-table cell takes the unit its column's header states
    ("| Dose (mg/kg/day) |" over "| 2 |" is 2 mg/kg/day), as a reader takes it."""
    lines: list[tuple[int, int]] = []
    pos = 0
    for line in text.split("\n"):
        lines.append((pos, pos + len(line)))
        pos += len(line) + 1
    units: dict[tuple[int, int], str] = {}  # body cell span -> unit
    i = 0
    while i + 1 < len(lines):
        hs, he = lines[i]
        rs, re_ = lines[i + 1]
        if not (text[hs:he].lstrip().startswith("|") and _TABLE_RULE_RE.match(text[rs:re_])):
            i += 1
            continue
        head = [_header_unit(text[a:b]) for a, b in _cells(text, hs, he)]
        i += 2
        while i < len(lines) and text[lines[i][0] : lines[i][1]].lstrip().startswith("|"):
            for col, (a, b) in enumerate(_cells(text, *lines[i])):
                if col < len(head) and head[col] is not None:
                    units[(a, b)] = head[col]  # type: ignore[assignment]
            i += 1
    if not units:
        return found
    out = []
    for q in found:
        cell = next((c for c in units if c[0] <= q.span[0] < c[1]), None)
        if q.kind == "number" and cell is not None and text[cell[0] : cell[1]].strip() == q.text:
            got = _parse(f"{q.text} {units[cell]}")
            if len(got) == 1:
                g = got[0]
                q = _quantity(
                    text=q.text, span=q.span, low=g.low, high=g.high, unit=g.unit, per=g.per,
                    per_kg=g.per_kg, per_m2=g.per_m2, qualifier=q.qualifier, kind=g.kind,
                    raw_low=g.raw_low, raw_high=g.raw_high, raw_unit=g.raw_unit,
                    per_count=g.per_count,
                )  # fmt: skip
        out.append(q)
    return out


def parse_quantities(text: str) -> tuple[Quantity, ...]:
    """Every numeric claim in ``text``, in order, with spans into ``text``."""
    if not isinstance(text, str) or not text:
        return ()
    return _parse(text)


# ---------------------------------------------------------------------------------------------
# Equivalence and formatting

_UPPER = frozenset({"up_to", "max"})
_LOWER = frozenset({"at_least"})


def qualifiers_compatible(a: str | None, b: str | None) -> bool:
    """'up to 3' and '3' agree; 'up to 3' and 'at least 3' do not."""
    return not ((a in _UPPER and b in _LOWER) or (a in _LOWER and b in _UPPER))


def _per_key(q: Quantity) -> str | None:
    return None if q.per == "dose" else q.per


def quantities_equivalent(a: Quantity, b: Quantity) -> bool:
    """Same value or range (in written order) after unit and frequency normalisation."""
    return (
        a.low == b.low
        and a.high == b.high
        and a.unit == b.unit
        and a.kind == b.kind
        and _per_key(a) == _per_key(b)
        and a.per_count == b.per_count
        and a.per_kg == b.per_kg
        and a.per_m2 == b.per_m2
        and qualifiers_compatible(a.qualifier, b.qualifier)
    )


def _fmt_decimal(d: Decimal) -> str:
    if d == d.to_integral_value():
        # Not quantize(): it raises once the digits outnumber the context's precision (28).
        return format(d.to_integral_value(), "f")
    return format(d.normalize(), "f")


# Fractions no short decimal writes exactly are printed in words; so is the other end of a
# range that has one ("one-third to one-quarter"), since the parser reads such ranges whole.
_FRACTION_WORDS = {_HUNDRED / 3: "one-third", _HUNDRED * 2 / 3: "two-thirds"}
_ALL_FRACTION_WORDS = _FRACTION_WORDS | {
    Decimal(50): "one-half", Decimal(25): "one-quarter", Decimal(75): "three-quarters",
    Decimal(20): "one-fifth", Decimal(40): "two-fifths", Decimal(60): "three-fifths",
    Decimal(10): "one-tenth", Decimal(30): "three-tenths",
}  # fmt: skip
_QUAL_TEXT = {"up_to": "up to ", "at_least": "at least ", "max": "maximum ", "approx": "about "}
_UNIT_TEXT = {"day": "days", "week": "weeks", "month": "months", "year": "years",
              "hour": "hours", "minute": "minutes", "mL/min/1.73m2": "mL/min/1.73 m²"}  # fmt: skip
_PER_TEXT = {"day": "/day", "week": "/week", "month": "/month", "dose": "/dose",
             "hour": "/hour", "patient-year": " per patient-year"}  # fmt: skip
_COUNT_TEXT = {("day", 2): " twice daily", ("day", 3): " three times daily",
               ("day", 4): " four times daily", ("week", 2): " twice weekly"}  # fmt: skip


def _fmt_value(q: Quantity, v: Decimal) -> str:
    if q.kind == "percent" and (q.low in _FRACTION_WORDS or q.high in _FRACTION_WORDS):
        if q.low in _ALL_FRACTION_WORDS and q.high in _ALL_FRACTION_WORDS:
            return _ALL_FRACTION_WORDS[v]
    return _fmt_decimal(v)


def format_quantity(q: Quantity) -> str:
    """Canonical text for ``q``; ``parse_quantities(format_quantity(q))`` gives it back."""
    low, high = _fmt_value(q, q.low), _fmt_value(q, q.high)
    fraction = q.kind == "percent" and not low[0].isdigit()
    if q.kind == "ratio":
        body = f"1 in {low}" if not q.is_range else f"1 in {low} to 1 in {high}"
        return _QUAL_TEXT.get(q.qualifier or "", "") + body
    body = low if not q.is_range else f"{low} to {high}" if fraction else f"{low}–{high}"
    unit = "" if fraction else _UNIT_TEXT.get(q.unit, q.unit)
    if unit:
        body += unit if unit in ("%",) or unit.startswith("/") else f" {unit}"
    if q.per_kg:
        body += "/kg"
    if q.per_m2:
        body += "/m²"
    if q.per is not None:
        if (q.per, q.per_count) in _COUNT_TEXT:
            body += _COUNT_TEXT[(q.per, q.per_count)]
        elif q.per in _PER_TEXT:
            body += _PER_TEXT[q.per]
        elif q.per.endswith("patient-year"):
            body += f" per {q.per}"
        else:  # "2 week", "3 month"
            n, unit_word = q.per.split(" ", 1)
            body += f" every {n} {unit_word}s"
    if q.kind == "frequency":
        body = "every " + body
    return _QUAL_TEXT.get(q.qualifier or "", "") + body
