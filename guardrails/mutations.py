"""Meaning-changing mutants of a correct answer, one number at a time, for the mutation test.

Every mutant changes what the answer says (a value, a unit, a basis, a frequency or a range);
mutants that would leave the meaning unchanged (×10 of 0, swapping equal range ends) are not
produced. Kinds: times10, div10, unit_swap (mg↔g, mcg→mg), per_day_week_swap, per_kg_drop,
per_kg_add, range_swap, range_widen, percent_change, number_in_words (a different value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from guardrails.model import Quantity
from guardrails.quantities import parse_quantities

__all__ = ["MUTATION_KINDS", "Mutant", "mutate_answer"]

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
    want = 2 if q.is_range or (q.raw_low is not None and len(found) > 1 and q.kind == "ratio") else 1
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
