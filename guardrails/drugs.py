"""Drug names in clinical text: which drug a number is attached to.

Lower-case generic names; brand names and abbreviations map to the generic. The vocabulary is
the built-in list below plus any names the caller adds (limit table, passage metadata), so a
new drug in the corpus is recognised without editing this file.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from functools import lru_cache
from operator import itemgetter

from guardrails.lexicon import DRUG_ALIASES
from guardrails.textsearch import find_all, has_case_fold_trap, lowered

__all__ = [
    "KNOWN_DRUGS",
    "Mentions",
    "attached_drug",
    "attached_drug_in",
    "drugs_among",
    "drugs_between",
    "drugs_in",
    "mentions_in",
    "nearest_drug_before",
    "same_drug",
]

# alias -> generic: the project's one drug table (lexicon.toml)
_ALIASES: dict[str, str] = dict(DRUG_ALIASES)
# "azathioprine-based treatment", "methotrexate-induced": the drug named in a compound word.
_COMPOUND = r"(?:based|induced|treated|related|associated|containing|sparing|free|naive|dependent|resistant|intolerant|exposed)(?![\w-])"
_COMPOUND_RE = re.compile(_COMPOUND)
KNOWN_DRUGS = frozenset(_ALIASES.values())
_START = itemgetter(0)  # of a (offset, name) mention


@lru_cache(maxsize=64)
def _drug_re(extra: frozenset[str]) -> tuple[re.Pattern[str], dict[str, str]]:
    table = dict(_ALIASES)
    for name in extra:
        if name:
            table.setdefault(name.lower(), name.lower())
    alternation = "|".join(re.escape(a) for a in sorted(table, key=len, reverse=True))
    return re.compile(
        rf"(?<![\w-])(?:{alternation})(?![\w-])|(?<![\w-])(?:{alternation})(?=-{_COMPOUND})",
        re.IGNORECASE,
    ), table


@lru_cache(maxsize=256)
def _unknown_names(extra: frozenset[str]) -> frozenset[str]:
    # Names already known add nothing: dropping them lets every caller share one cache entry.
    return frozenset(e for e in (x.lower() for x in extra) if e not in _ALIASES)


def _mentions(text: str, extra: Iterable[str]) -> tuple[tuple[int, str], ...]:
    # The guard asks once per number with the same frozenset: keep that path allocation-free.
    names = extra if isinstance(extra, frozenset) else frozenset(extra)
    return _drugs_in(text, _unknown_names(names))


def drugs_in(text: str, extra: Iterable[str] = ()) -> list[tuple[int, str]]:
    """(offset, generic name) of every drug mention in ``text``."""
    return list(_mentions(text, extra))


@lru_cache(maxsize=64)
def _ascii_aliases(extra: frozenset[str]) -> tuple[str, ...] | None:
    """Every alias, for exact search in lower-cased text (None when one is not ASCII:
    IGNORECASE also pairs some non-ASCII letters with ASCII ones, e.g. 'ſ' and 's')."""
    table = _drug_re(extra)[1]
    if not all(alias.isascii() for alias in table):
        return None
    return tuple(table)


@lru_cache(maxsize=8192)
def _drugs_in(text: str, extra: frozenset[str]) -> tuple[tuple[int, str], ...]:
    aliases = _ascii_aliases(extra)
    if aliases is None or has_case_fold_trap(text):
        return _drugs_in_by_regex(text, extra)
    return _drugs_in_by_find(lowered(text), aliases, _drug_re(extra)[1])


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_" or c == "-"  # the regex's [\w-]


def _compound_after(lower: str, end: int) -> bool:
    """Does a name end at ``end`` as the first half of "azathioprine-based" (``_COMPOUND``)?"""
    return lower.startswith("-", end) and _COMPOUND_RE.match(lower, end + 1) is not None


def _drugs_in_by_find(
    lower: str, aliases: tuple[str, ...], table: dict[str, str]
) -> tuple[tuple[int, str], ...]:
    """What the alias regex finds, by ``str.find`` of each alias in the lower-cased text.

    The IGNORECASE alternation of dozens of names, tried at every offset, is the guard's
    costliest scan of an answer; a C-level substring search per name is several times cheaper.
    Without a case-fold trap (:mod:`guardrails.textsearch`), lower-casing keeps every offset and
    pairs characters as IGNORECASE does. As the regex: a name counts only between non-name
    characters, the longest name at an offset wins, and matches do not overlap (the leftmost is
    kept).
    """
    size = len(lower)
    longest: dict[int, str] = {}
    for alias in aliases:
        for i in find_all(lower, alias):
            end = i + len(alias)
            if (
                (i == 0 or not _is_name_char(lower[i - 1]))
                and (end == size or not _is_name_char(lower[end]) or _compound_after(lower, end))
                and len(alias) > len(longest.get(i, ""))
            ):
                longest[i] = alias
    out: list[tuple[int, str]] = []
    taken = 0
    for i in sorted(longest):
        if i >= taken:
            out.append((i, table[longest[i]]))
            taken = i + len(longest[i])
    return tuple(out)


def _alias_of(written: str, table: dict[str, str]) -> str:
    name = table.get(written.lower())
    if name is not None:
        return name
    # IGNORECASE pairs letters whose lower() differs ('İ' matches 'i' but lowers to 'i̇'): find
    # the alias the regex matched the same way it did.
    for alias, generic in table.items():
        if re.fullmatch(re.escape(alias), written, re.IGNORECASE):
            return generic
    raise LookupError(f"no alias matches {written!r}")  # unreachable: the regex matched one


def _drugs_in_by_regex(text: str, extra: frozenset[str]) -> tuple[tuple[int, str], ...]:
    rx, table = _drug_re(extra)
    return tuple((m.start(), _alias_of(m.group(0), table)) for m in rx.finditer(text))


def same_drug(a: str, b: str) -> bool:
    """One drug, whether or not its salt is named ("placebrinol hydrochloride" is placebrinol)."""
    return a == b or a.startswith(b + " ") or b.startswith(a + " ")


Mentions = tuple[tuple[int, str], ...]  # (offset, generic name) of each drug mention, in order


def mentions_in(text: str, extra: Iterable[str] = ()) -> Mentions:
    """The drug mentions of ``text``, for callers that ask about many spans of one text."""
    return _mentions(text, extra)


def nearest_drug_before(text: str, pos: int, extra: Iterable[str] = (), lo: int = 0) -> str | None:
    """The drug named closest before ``pos`` (and at or after ``lo``) in ``text``."""
    return _nearest_before(_mentions(text, extra), pos, lo)


def _nearest_before(mentions: Mentions, pos: int, lo: int) -> str | None:
    i = bisect_left(mentions, pos, key=_START) - 1
    if i < 0:
        return None
    start, name = mentions[i]
    return name if start >= lo else None


def drugs_between(text: str, lo: int, hi: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Drugs named in ``text[lo:hi]`` (searched once per whole text, then filtered)."""
    return drugs_among(_mentions(text, extra), lo, hi)


def drugs_among(mentions: Mentions, lo: int, hi: int) -> frozenset[str]:
    """Drugs of ``mentions`` that start in ``[lo, hi)``."""
    first = bisect_left(mentions, lo, key=_START)
    last = bisect_left(mentions, hi, lo=first, key=_START)
    return frozenset(name for _, name in mentions[first:last])


_OF_DRUG_RE = re.compile(r"[ \t]*(?:of|daily of|/day of)[ \t]+", re.IGNORECASE)


def attached_drug(
    text: str, span: tuple[int, int], extra: Iterable[str] = (), lo: int = 0
) -> str | None:
    """The drug a number at ``span`` belongs to: "300 mg of allopurinol" names it after the
    number; otherwise the drug named nearest before it, at or after ``lo`` (None if none)."""
    return attached_drug_in(text, _mentions(text, extra), span, lo)


def attached_drug_in(
    text: str, mentions: Mentions, span: tuple[int, int], lo: int = 0
) -> str | None:
    """:func:`attached_drug` with the text's mentions already found (``mentions_in``)."""
    # "of", "daily of", "/day of" after spaces: one character decides most numbers.
    pos, size = span[1], len(text)
    while pos < size and text[pos] in " \t":
        pos += 1
    m = _OF_DRUG_RE.match(text, span[1]) if pos < size and text[pos] in "oOdD/" else None
    if m:
        i = bisect_left(mentions, m.end(), key=_START)
        if i < len(mentions) and mentions[i][0] == m.end():
            return mentions[i][1]
    return _nearest_before(mentions, span[0], lo)
