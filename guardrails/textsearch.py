"""Exact text search the guard uses instead of regex scans of every offset.

``find_all`` lists every offset of a needle (``str.find`` is C-level, a regex scan is not).
Case-insensitive matching of ASCII words by lower-casing is made exact here too: lower-casing a text and matching ASCII words exactly finds what an IGNORECASE regex finds,
several times faster, except around a few characters: they lower-case to two characters ('İ')
or to ASCII ('\u212a', the Kelvin sign), or IGNORECASE pairs them with an ASCII letter ('ſ' with
's', 'ı' with 'i'). Texts holding one of them take the regex. tests/test_guard_drugs.py derives
the list from every code point.
"""

from __future__ import annotations

from functools import lru_cache

__all__ = ["CASE_FOLD_TRAPS", "find_all", "has_case_fold_trap", "lowered"]

CASE_FOLD_TRAPS = ("\u0130", "\u0131", "\u017f", "\u212a")


def has_case_fold_trap(text: str) -> bool:
    return not text.isascii() and any(c in text for c in CASE_FOLD_TRAPS)


def find_all(text: str, needle: str) -> list[int]:
    """Every offset of ``needle`` in ``text``, overlapping ones included, in order."""
    out = []
    i = text.find(needle)
    while i >= 0:
        out.append(i)
        i = text.find(needle, i + 1)
    return out


@lru_cache(maxsize=256)
def lowered(text: str) -> str:
    """``text.lower()``, computed once per text: the parser, the drug finder and the verdict
    each need the lower-cased answer, and lower-casing a long non-ASCII text is not cheap."""
    return text.lower()
