"""Sentences, clauses and citation markers: the scope a number's citation applies to.

A sentence ends at a line break or at ``.``/``!``/``?`` followed by white space and an upper-case
letter, a digit, a bracket or a list mark (decimals like ``2.5`` never split). A clause is a
sentence cut at ``;``. ``[1]``, ``[1, 2]``, ``[1–3]`` cite passages 1, 1 and 2, 1 to 3;
``[@source-id]`` markers name corpus sources, not passages, and scope nothing here.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["citations", "clauses", "sentences"]

# The white space after ".", "!" or "?" (group 1), or a run of line breaks. Matching the mark
# itself rather than looking behind for it lets the scan skip ahead by first character; a line
# break right after the mark is left to the second branch, which takes the breaks alone.
_SENT_END_RE = re.compile(r"[.!?](?!\n)(\s+)(?=[A-Z0-9\[(*#\-•])|\n+")
_CLAUSE_END_RE = re.compile(r";\s*")
_MARKER_RE = re.compile(r"\[\s*(\d+(?:\s*[-–,;]\s*\d+)*)\s*\]")
_MAX_CITED = 200  # a "[1–100000]" typo must not allocate a huge range


def _split(text: str, rx: re.Pattern[str], start: int, end: int) -> list[tuple[int, int]]:
    """Pieces of ``text[start:end]`` between matches of ``rx`` (of its group 1, where it has one
    and that group took part)."""
    out = []
    pos = start
    for m in rx.finditer(text, start, end):
        cut = m.start(1) if rx.groups and m.start(1) >= 0 else m.start()
        if cut > pos:
            out.append((pos, cut))
        pos = m.end()
    if pos < end:
        out.append((pos, end))
    return out


@lru_cache(maxsize=4096)
def sentences(text: str) -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence in ``text``."""
    return tuple(_split(text, _SENT_END_RE, 0, len(text)))


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
