"""Meaning-changing mutants of a correct answer, one number at a time, for the mutation test.

Every mutant changes what the answer says (a value, a unit, a basis, a frequency or a range);
mutants that would leave the meaning unchanged (×10 of 0, swapping equal range ends) are not
produced. Kinds: times10, div10, unit_swap (mg↔g, mcg→mg), per_day_week_swap, per_kg_drop,
per_kg_add, range_swap, range_widen, percent_change, number_in_words (a different value).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from guardrails.drugs import _OF_DRUG_RE, Mentions, _drug_re, mentions_in
from guardrails.model import DoseStatement, Passage, Quantity, Role
from guardrails.quantities import parse_quantities, quantities_equivalent
from guardrails.sentences import sentences
from guardrails.statements import indication_mentions, indications_compatible, statements_of

__all__ = ["MUTATION_KINDS", "SCOPE_KINDS", "Mutant", "mutate_answer", "scope_mutants"]

MUTATION_KINDS = (
    "times10", "div10", "unit_swap", "per_day_week_swap", "per_kg_drop", "per_kg_add",
    "range_swap", "range_widen", "percent_change", "number_in_words",
)  # fmt: skip


@dataclass(frozen=True)
class Mutant:
    kind: str
    original: str  # the claim's text before mutation
    mutated_text: str  # the whole answer with this one claim mutated
    span: tuple[int, int]  # the claim's span in the original answer


_NUMBER_RE = re.compile(r"(?<![\w.,/^])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,/^])\d+(?:\.\d+)?")
_MASS_RE = re.compile(r"(?<![A-Za-z])(mg|g|mcg|µg|ug)(?![A-Za-z])")
_UNIT_SWAP = {"mg": "g", "g": "mg", "mcg": "mg", "µg": "mg", "ug": "mg"}
_DAY_WEEK = [
    (re.compile(r"/\s*day\b"), "/week"), (re.compile(r"/\s*week\b"), "/day"),
    (re.compile(r"/\s*d\b"), "/week"),
    (re.compile(r"\bper day\b"), "per week"), (re.compile(r"\bper week\b"), "per day"),
    (re.compile(r"\bdaily\b"), "weekly"), (re.compile(r"\bweekly\b"), "daily"),
    (re.compile(r"\ba day\b"), "a week"), (re.compile(r"\ba week\b"), "a day"),
]  # fmt: skip
_PER_KG_RE = re.compile(r"\s*(?:/|per)\s*kg\b(?:\s*(?:of\s+)?(?:\w+\s+)?body\s*weight)?")
_WORDS = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight",
    9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen",
    15: "fifteen", 16: "sixteen", 17: "seventeen", 18: "eighteen", 19: "nineteen",
    20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty", 70: "seventy",
    80: "eighty", 90: "ninety",
}  # fmt: skip


def _words(n: int) -> str | None:
    if n in _WORDS:
        return _WORDS[n]
    if 20 < n < 100:
        return f"{_WORDS[n - n % 10]}-{_WORDS[n % 10]}"
    return None


def _fmt(d: Decimal) -> str:
    if d == d.to_integral_value():
        # Not quantize(): it raises once the digits outnumber the context's precision (28).
        return format(d.to_integral_value(), "f")
    return format(d.normalize(), "f")


def _numbers(q: Quantity, seg: str) -> list[re.Match[str]]:
    found = list(_NUMBER_RE.finditer(seg))
    want = (
        2 if q.is_range or (q.raw_low is not None and len(found) > 1 and q.kind == "ratio") else 1
    )
    if q.kind == "ratio":
        found = [m for m in found if m.group(0) != "1"] or found
    return found[:want]


def _replace(seg: str, nums: list[re.Match[str]], new: list[str]) -> str:
    out, pos = [], 0
    for m, text in zip(nums, new, strict=True):
        out.append(seg[pos : m.start()])
        out.append(text)
        pos = m.end()
    out.append(seg[pos:])
    return "".join(out)


def _mutations(q: Quantity, seg: str) -> list[tuple[str, str]]:
    nums = _numbers(q, seg)
    if not nums:
        return []  # written in words: nothing to mutate digit-wise
    values = [Decimal(m.group(0).replace(",", "")) for m in nums]
    tail = seg[nums[-1].end() :]
    head = seg[: nums[-1].end()]
    out: list[tuple[str, str]] = []
    if any(v != 0 for v in values):
        out.append(("times10", _replace(seg, nums, [_fmt(v * 10) for v in values])))
        out.append(("div10", _replace(seg, nums, [_fmt(v / 10) for v in values])))
    m = _MASS_RE.search(tail)
    if m and q.kind == "dose":
        swapped = tail[: m.start()] + _UNIT_SWAP[m.group(1)] + tail[m.end() :]
        out.append(("unit_swap", head + swapped))
    if q.per in ("day", "week") and q.per_count == 1:
        for rx, repl in _DAY_WEEK:
            new_tail, n = rx.subn(repl, tail, count=1)
            if n:
                out.append(("per_day_week_swap", head + new_tail))
                break
    if q.per_kg:
        out.append(("per_kg_drop", head + _PER_KG_RE.sub("", tail, count=1)))
    elif m and q.kind == "dose" and not q.per_m2:
        out.append(("per_kg_add", head + tail[: m.end()] + "/kg" + tail[m.end() :]))
    if len(values) == 2 and values[0] != values[1]:
        out.append(("range_swap", _replace(seg, nums, [nums[1].group(0), nums[0].group(0)])))
        lo, hi = values
        widened = hi + max((hi - lo) / 2, Decimal(1)) if hi > lo else hi / 2
        out.append(("range_widen", _replace(seg, nums, [nums[0].group(0), _fmt(widened)])))
    if q.kind == "percent":
        changed = [v + 10 if v + 10 <= 100 else v - 10 for v in values]
        out.append(("percent_change", _replace(seg, nums, [_fmt(v) for v in changed])))
    if len(values) == 1 and values[0] == values[0].to_integral_value():
        n = int(values[0])
        other = _words(n + 1) if n + 1 < 100 else None
        if other is not None:
            out.append(("number_in_words", _replace(seg, nums, [other])))
    return out


def mutate_answer(answer: str) -> list[Mutant]:
    """One mutant per claim and applicable kind, in claim order."""
    mutants = []
    for q in parse_quantities(answer):
        s, e = q.span
        seg = answer[s:e]
        for kind, new_seg in _mutations(q, seg):
            if new_seg != seg:
                mutated = answer[:s] + new_seg + answer[e:]
                mutants.append(Mutant(kind=kind, original=seg, mutated_text=mutated, span=(s, e)))
    return mutants


# -- scope mutants: every number kept, what it is about changed ---------------------------------

SCOPE_KINDS = ("drug_swap", "role_swap", "indication_swap")

_ROLE_CUES = {
    Role.INITIAL: "a starting dose of ",
    Role.MAINTENANCE: "a maintenance dose of ",
    Role.MAXIMUM: "a maximum of ",
}
_SWAP_DRUGS = ("azathioprine", "methotrexate", "mycophenolate", "allopurinol", "prednisone",
               "cyclophosphamide", "hydroxychloroquine", "mercaptopurine")  # fmt: skip
_SWAP_INDICATIONS = ("lupus nephritis", "transplant rejection", "rheumatoid arthritis",
                     "autoimmune hepatitis", "inflammatory bowel disease", "gout")  # fmt: skip


def scope_mutants(answer: str, passages: Sequence[Passage]) -> list[Mutant]:
    """Mutants that keep every number but change what it doses: its drug (``drug_swap``: a
    true figure of X put in a sentence about Y), its role (``role_swap``: a maintenance figure
    stated as the starting dose or the maximum) or its indication (``indication_swap``: a
    transplant dose stated for lupus). Only mutants the passages distinguish are made: no
    statement of the passages gives the figure for the new drug, role or indication."""
    extra = frozenset(d for p in passages for d in p.drugs)
    mentions = mentions_in(answer, extra)
    drug_rx = _drug_re(extra)[0]
    statements = [st for p in passages for st in statements_of(p)]
    bounds = sentences(answer)
    out: list[Mutant] = []
    for q in parse_quantities(answer):
        if q.kind != "dose":
            continue
        same = [st for st in statements if quantities_equivalent(q, st.quantity)]
        if not same:
            continue
        sentence = next(((s, e) for s, e in bounds if s <= q.span[0] < e), (0, len(answer)))
        seg = answer[q.span[0] : q.span[1]]
        out += _drug_swap(answer, q, seg, same, mentions, drug_rx, sentence[0])
        out += _role_swap(answer, q, seg, same)
        out += _indication_swap(answer, q, seg, same, sentence)
    return out


def _drug_swap(
    answer: str, q: Quantity, seg: str, same: list[DoseStatement], mentions: Mentions,
    drug_rx: re.Pattern[str], s_start: int,
) -> list[Mutant]:  # fmt: skip
    dosed = {st.drug for st in same}
    other = next((d for d in _SWAP_DRUGS if d not in dosed), None)
    if other is None:
        return []
    # The drug the figure is attached to: "300 mg of allopurinol" names it after the number.
    after = _OF_DRUG_RE.match(answer, q.span[1])
    before = [(i, name) for i, name in mentions if s_start <= i < q.span[0]]
    if after and any(i == after.end() for i, _ in mentions):
        before = [(after.end(), "")]
    elif len({name for _, name in before}) > 1:
        return []  # two drugs before the figure: which one it doses is not distinguishable
    if before:
        # Every mention of the dosed drug in the sentence becomes the other drug ("Febuxostat,
        # ULORIC label: 40 mg"): a sentence still naming the first one would be ambiguous.
        mutated = answer
        for i, _ in sorted(before, reverse=True):
            m = drug_rx.match(mutated, i)
            if m is None:
                return []
            mutated = mutated[:i] + other + mutated[m.end() :]
    else:
        mutated = answer[: q.span[0]] + f"{other} " + answer[q.span[0] :]
    return [Mutant(kind="drug_swap", original=seg, mutated_text=mutated, span=q.span)]


def _role_swap(answer: str, q: Quantity, seg: str, same: list[DoseStatement]) -> list[Mutant]:
    roles = {st.role for st in same}
    if not roles or not roles <= set(_ROLE_CUES):
        return []  # a plain source figure fits any role: nothing to distinguish
    roles |= {r for st in same for r in st.also}  # phases the source sentence also names
    new = next((r for r in _ROLE_CUES if r not in roles), None)
    if new is None:
        return []
    mutated = answer[: q.span[0]] + _ROLE_CUES[new] + answer[q.span[0] :]
    return [Mutant(kind="role_swap", original=seg, mutated_text=mutated, span=q.span)]


def _indication_swap(
    answer: str, q: Quantity, seg: str, same: list[DoseStatement], sentence: tuple[int, int]
) -> list[Mutant]:
    if any(not st.indications for st in same):
        return []
    new = next((i for i in _SWAP_INDICATIONS
                if not any(indications_compatible((i,), st.indications) for st in same)), None)  # fmt: skip
    if new is None:
        return []
    s_start, s_end = sentence
    named = list(indication_mentions(answer[s_start:s_end]))
    if named:
        # Every indication the sentence names becomes the new one: a sentence naming both
        # would fit the source's too.
        pieces, pos = [], 0
        for start, end in named:
            pieces += [answer[s_start + pos : s_start + start], new]
            pos = end
        mutated = answer[:s_start] + "".join(pieces) + answer[s_start + pos :]
    else:
        mutated = answer[:s_start] + f"In {new}, " + answer[s_start:]
    return [Mutant(kind="indication_swap", original=seg, mutated_text=mutated, span=q.span)]
