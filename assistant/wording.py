"""Plain clinical wording of a corpus sentence, with its figures untouched.

The corpus names a sentence's source in front of it ("Azathioprine LN maintenance, secondary
summary: 2 mg/kg/day"); an answer shows where a line comes from as its citation's evidence tag,
so the source name goes. Abbreviations are spelled out on their first use in an answer, and an
excerpt is shown without its ``[@id]`` markers. The words come from ``vocabulary.toml``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from assistant.vocabulary import clinical, normalise
from guardrails.lexicon import DRUG_ALIASES

__all__ = ["Abbreviations", "MARKER_RE", "capital", "excerpt_view", "plain_wording", "split_lead"]

MARKER_RE = re.compile(r"\s*\[@([^\]]+)\]")
_DIGIT_RE = re.compile(r"\d")


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


_LEAD_RE = re.compile(r"^([^:\n]{2,120}?):\s+(?=\S)")
# A label's cross-reference to its own sections ("[see Use in Specific Populations (8.6)]"):
# section numbers, not figures of the dose, and nothing a reader of the answer can follow.
_XREF_RE = re.compile(r"\s*\[see\s[^\[\]]*\]", re.I)


def _segments(lead: str) -> list[str]:
    """The comma-separated parts of a lead, a parenthesis kept whole."""
    parts: list[str] = []
    for piece in lead.split(", "):
        if parts and parts[-1].count("(") > parts[-1].count(")"):
            parts[-1] = f"{parts[-1]}, {piece}"
        else:
            parts.append(piece)
    return parts


def split_lead(text: str) -> tuple[str, str]:
    """("Azathioprine LN maintenance, secondary summary", "2 mg/kg/day ...") for a sentence
    that names its topic before a colon; ("", text) for one that does not."""
    m = _LEAD_RE.match(text)
    if m is None or m.group(1).count("(") != m.group(1).count(")") or "[" in m.group(1):
        return "", text
    return m.group(1).strip(), text[m.end() :]


def plain_wording(text: str, *, sentence_start: bool = True, drugs: Iterable[str] = ()) -> str:
    """The sentence without the source names the corpus writes in front of it (the citation's
    evidence tag says where it comes from): "Azathioprine LN maintenance, secondary summary:
    2 mg/kg/day" -> "Azathioprine LN maintenance: 2 mg/kg/day"; "US label alternative:" keeps
    "alternative". A lead that is only a source name goes whole. Figures are never touched."""
    vocab = clinical()
    for rx in vocab.source_inline:
        text = rx.sub("", text)
    text = _XREF_RE.sub("", text)
    text = capital(text) if sentence_start else text
    lead, rest = split_lead(text)
    if not lead:
        return text
    kept: list[str] = []
    changed = False
    for segment in _segments(lead):
        if any(rx.search(segment) for rx in vocab.source_patterns):
            changed = True
            words = [w.strip("()") for w in segment.split()
                     if w.strip("()").lower() in vocab.source_keep_words]  # fmt: skip
            known = _DRUG_WORDS | {d.lower() for d in drugs}
            named = [w for w in segment.split() if w.lower() in known]
            if named and _needs_subject(", ".join(kept), rest, named[0], known):
                # "Leucovorin for methotrexate overdose, leucovorin label: 10 mg/m2": without
                # its drug the dose would read as methotrexate's (the guard reads it so too).
                words.insert(0, named[0])
            if words and not _DIGIT_RE.search(" ".join(words)):
                kept.append(" ".join(words))
        else:
            kept.append(segment)
    if not changed:
        return text
    if not kept:
        return capital(rest) if sentence_start else rest
    return f"{', '.join(kept)}: {rest}"


_DRUG_WORDS = frozenset(w.lower() for pair in DRUG_ALIASES.items() for w in pair if " " not in w)


def _needs_subject(lead: str, rest: str, drug: str, known: frozenset[str]) -> bool:
    """Would the figures after the colon lose their drug without ``drug``: the rest names no
    drug before its first figure and the lead's last-named drug is another one?"""
    first = _DIGIT_RE.search(rest)
    if any(w in known for w in normalise(rest[: first.start()] if first else rest)):
        return False
    named = [w for w in normalise(lead) if w in known]
    return bool(named) and named[-1] != drug.lower()


class Abbreviations:
    """Spells out each abbreviation of vocabulary.toml on its first use in one answer."""

    def __init__(self) -> None:
        self.table = clinical().abbreviations
        self.seen: set[str] = set()
        self._rx = (
            re.compile(r"(?<![\w/-])(" + "|".join(map(re.escape, self.table)) + r")(?![\w-])")
            if self.table
            else None
        )

    def expand(self, line: str) -> str:
        if self._rx is None:
            return line

        def sub(m: re.Match[str]) -> str:
            abbr = m.group(1)
            before = line[: m.start()]
            if abbr in self.seen or before.count("(") > before.count(")"):
                # Inside a parenthesis ("For this patient (TPMT poor metaboliser)") it is a
                # label: spelled out at its next use instead.
                return abbr
            self.seen.add(abbr)
            full = self.table[abbr]
            # Already spelled out in the sentence ("lupus nephritis (LN)"): leave it.
            if full.lower() in line.lower():
                return abbr
            return f"{full} ({abbr})"

        return self._rx.sub(sub, line)


def excerpt_view(
    text: str, *span_lists: Iterable[tuple[int, int]]
) -> tuple[str, tuple[tuple[tuple[int, int], ...], ...]]:
    """The passage as a reader sees it, without ``[@id]`` markers, and each list of spans moved
    onto that text (a span that falls inside a marker is dropped)."""
    cuts = [(m.start(), m.end()) for m in MARKER_RE.finditer(text)]
    if not cuts:
        return text, tuple(tuple(sorted(set(spans))) for spans in span_lists)
    kept: list[str] = []
    pos = 0
    for start, end in cuts:
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])

    def moved(i: int) -> int:
        shift = 0
        for start, end in cuts:
            if i >= end:
                shift += end - start
            elif i > start:
                return start - shift
        return i - shift

    out = []
    for spans in span_lists:
        mapped = {(moved(a), moved(b)) for a, b in spans}
        out.append(tuple(sorted((a, b) for a, b in mapped if a < b)))
    return "".join(kept), tuple(out)
