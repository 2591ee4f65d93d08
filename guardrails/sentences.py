"""Sentences, clauses and citation markers: the scope a number's citation applies to.

A sentence ends at a line break or at ``.``/``!``/``?`` followed by white space and an upper-case
letter, a digit, a bracket or a list mark (decimals like ``2.5`` never split). A clause is a
sentence cut at ``;``. ``[1]``, ``[1, 2]``, ``[1–3]`` cite passages 1, 1 and 2, 1 to 3;
``[@source-id]`` markers name corpus sources, not passages, and scope nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from guardrails.textsearch import find_all

__all__ = ["citations", "clauses", "sentences"]

_CLAUSE_END_RE = re.compile(r";\s*")
_MARKER_RE = re.compile(r"\[\s*(\d+(?:\s*[-–,;]\s*\d+)*)\s*\]")
_MAX_CITED = 200  # a "[1–100000]" typo must not allocate a huge range


def _split(text: str, rx: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    return _pieces(((m.start(), m.end()) for m in rx.finditer(text, start, end)), start, end)


def _pieces(cuts: Iterable[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The non-empty stretches of ``[start, end)`` between ``cuts`` (in order, not overlapping)."""
    out = []
    pos = start
    for cut, after in cuts:
        if cut > pos:
            out.append((pos, cut))
        pos = after
    if pos < end:
        out.append((pos, end))
    return out


# What may start a sentence after ".", "!" or "?" and white space.
_SENTENCE_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789[(*#-•")


def _sentence_ends(text: str) -> list[tuple[int, int]]:
    """The spans a sentence ends at, as ``re.finditer`` would find them for the definition
    ``\\n+|(?<=[.!?])\\s+(?=[A-Z0-9\\[(*#\\-•])`` (tests check it against that regex).

    A regex scan of every offset is the guard's dearest pass over a long answer; the few places
    a sentence can end (line breaks and the marks) are found with ``str.find`` instead.
    """
    size = len(text)
    # (position, is a line break); at a line break the line-break branch is the one tried first.
    places = [(i, True) for i in find_all(text, "\n")]
    for mark in ".!?":
        places += [(i + 1, False) for i in find_all(text, mark)]
    places.sort()
    out: list[tuple[int, int]] = []
    taken = 0
    for pos, newline in places:
        if pos < taken or pos >= size:
            continue
        if newline:
            end = pos + 1
            while end < size and text[end] == "\n":
                end += 1
        else:
            if text[pos] == "\n" or not text[pos].isspace():
                continue
            end = pos + 1
            while end < size and text[end].isspace():
                end += 1
            if end == size or text[end] not in _SENTENCE_START:
                continue
        out.append((pos, end))
        taken = end
    return out


@lru_cache(maxsize=4096)
def sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence in ``text``."""
    return tuple(_pieces(_sentence_ends(text), 0, len(text)))


@lru_cache(maxsize=4096)
def clauses(text: str) -> tuple[tuple[int, int, int, int], ...]:
    """(clause start, clause end, sentence start, sentence end) of each clause."""
    out = []
    for s, e in sentences(text):
        if text.find(";", s, e) < 0:  # most sentences are one clause: no regex scan for them
            out.append((s, e, s, e))
            continue
        for cs, ce in _split(text, _CLAUSE_END_RE, s, e):
            out.append((cs, ce, s, e))
    return tuple(out)


@lru_cache(maxsize=4096)
def citations(text: str) -> frozenset[int]:
    """Passage numbers cited by ``[n]`` markers in ``text``."""
    cited: set[int] = set()
    for m in _MARKER_RE.finditer(text):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            bounds = re.split(r"\s*[-–]\s*", part)
            lo, hi = int(bounds[0]), int(bounds[-1])
            if lo <= hi and hi - lo <= _MAX_CITED:
                cited.update(range(lo, hi + 1))
            else:
                cited.update((lo, hi))
    return frozenset(cited)
