"""What an imported document (text, HTML, PDF without front matter) is about: its drugs and
indications, read from its own content.

A hospital protocol names its subject in the title and headings and mentions other drugs in
passing ("avoid with warfarin"). A drug makes the document *about* it only when the title or a
heading names it, or when the body names it about as often as the main drug: a passing mention
would otherwise put the document in the vocabulary as a source on that drug, and a question
about it would be answered from a document that doses something else.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from guardrails.statements import indications_in

__all__ = ["DetectedTopics", "detect_topics", "headings_of"]

_HEADING_LINE_RE = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_TITLE_WEIGHT = 6
_HEADING_WEIGHT = 3
# A body-only drug needs this many mentions and this share of the main drug's score.
_BODY_MIN_MENTIONS = 3
_BODY_SHARE = 0.5
_MAX_DRUGS = 4
_MAX_BRANDS = 6
_SALT_TAIL_RE = re.compile(
    r"\s+(?:hydrochloride|hcl|sodium|potassium|calcium|magnesium|sulfate|sulphate|phosphate"
    r"|maleate|tartrate|succinate|besylate|mesylate|acetate|citrate|fumarate|bromide"
    r"|extended[- ]release|er|xr|sr|cr|usp)\b.*$",
    re.I,
)


class _Mention(Protocol):
    @property
    def written(self) -> str: ...
    @property
    def generic(self) -> str: ...


class _Lexicon(Protocol):
    def find(self, text: str) -> Sequence[_Mention]: ...


@dataclass(frozen=True)
class DetectedTopics:
    drugs: tuple[str, ...]  # the main drug first
    indications: tuple[str, ...]
    brand_names: tuple[str, ...]  # lower-case product names of those drugs, as written


def headings_of(body: str) -> list[str]:
    """The ``#`` heading texts of a loader's body, in order."""
    return [m.group(1).strip() for m in _HEADING_LINE_RE.finditer(body)]


def detect_topics(title: str, body: str, lexicon: _Lexicon) -> DetectedTopics:
    """Drugs (main first), indications and brand names of an imported document."""
    heads = headings_of(body)
    score: Counter[str] = Counter()
    body_count: Counter[str] = Counter()
    named_up_top: list[str] = []  # named in the title or a heading, in that order
    first_seen: dict[str, int] = {}
    written: dict[str, list[str]] = {}

    def note(mentions: Sequence[_Mention], weight: int, top: bool) -> None:
        for m in _drugs_only(mentions):
            score[m.generic] += weight
            first_seen.setdefault(m.generic, len(first_seen))
            written.setdefault(m.generic, []).append(m.written)
            if top and m.generic not in named_up_top:
                named_up_top.append(m.generic)

    title_mentions = _drugs_only(lexicon.find(title))
    if not title_mentions:
        title_mentions = _misspelt(title, lexicon)
    note(title_mentions, _TITLE_WEIGHT, True)
    for h in heads:
        note(lexicon.find(h), _HEADING_WEIGHT, True)
    for ingredients in _product_lines(body):
        # "MAALOX ANTACID - aluminum hydroxide, magnesium hydroxide, simethicone liquid": a
        # label's product line names its active ingredients, as a heading would.
        note(_parts(lexicon.find(ingredients), lexicon), _HEADING_WEIGHT, True)
    body_mentions = _drugs_only(lexicon.find(_HEADING_LINE_RE.sub("", body)))
    note(body_mentions, 1, False)
    body_count.update(m.generic for m in body_mentions)

    drugs: list[str] = []
    title_drugs = list(dict.fromkeys(m.generic for m in title_mentions))
    if title_drugs:
        # The title's drugs, most discussed first (a title naming one drug is about that drug).
        drugs.extend(sorted(title_drugs, key=lambda d: (-score[d], first_seen[d])))
    ranked = sorted(score, key=lambda d: (-score[d], first_seen[d]))
    top = score[drugs[0]] if drugs else (score[ranked[0]] if ranked else 0)
    for d in ranked:
        if d in drugs:
            continue
        if d in named_up_top and (not title_drugs or score[d] >= _BODY_SHARE * top):
            drugs.append(d)
        elif body_count[d] >= _BODY_MIN_MENTIONS and score[d] >= _BODY_SHARE * top:
            drugs.append(d)
    if not drugs and not title_drugs and len(body_count) == 1:
        # A title that is a brand the lexicon lacks ("Vicodin") over a body naming one drug
        # and no other: the document is about that drug (two or more would be a guess).
        drugs.append(next(iter(body_count)))
    drugs = drugs[:_MAX_DRUGS]

    brands: list[str] = []
    for d in drugs:
        for w in written.get(d, ()):
            name = " ".join(w.lower().split())
            base = _SALT_TAIL_RE.sub("", name)
            if (
                base != d
                and not d.startswith(base)
                and not base.startswith(d)
                and name not in brands
            ):
                brands.append(name)
    indications = _indications(title, heads, body)
    return DetectedTopics(tuple(drugs), indications, tuple(brands[:_MAX_BRANDS]))


# Words of document titles that sit close to some odd lexicon entry ("information" is one
# letter from "informatin"): never read as a misspelt drug.
_DOCUMENT_WORDS = frozenset(
    """information prescribing guideline guidelines protocol protocols management treatment
    treatments administration dosage dosing monitoring hospital formulary patient patients
    paediatric pediatric children neonatal neonates emergency department intravenous infusion
    injection injections tablets capsules solution suspension extended release delayed
    prophylaxis infection infections therapy therapeutic clinical pharmacy policy procedure
    anticoagulation antibiotic antibiotics summary product characteristics leaflet medicines
    medication medications""".split()
)


# Salt and ester words the lexicon lists as substances of their own ("succinate" ->
# succinates): in a title they qualify the drug before them, they are not the subject.
_SALTS = frozenset(
    """succinate succinates hydrochloride sodium potassium calcium magnesium sulfate sulphate
    phosphate maleate tartrate besylate mesylate acetate citrate fumarate bromide chloride
    lactate gluconate nitrate oxalate hyclate""".split()
)


# An SPL-style product line: the brand in capitals, a dash, then the ingredients and the form.
_PRODUCT_LINE_RE = re.compile(
    r"^[ \t]*([A-Z][A-Z0-9 .,&'+/®™()]{1,60}?)[ \t]*[-–—][ \t]+(.*[a-z].*)$", re.M
)
_PRODUCT_LINES = 3


def _product_lines(body: str) -> list[str]:
    """The ingredient part of the first few product lines of a label-like document."""
    return [m.group(2) for m in _PRODUCT_LINE_RE.finditer(body)][:_PRODUCT_LINES]


def _parts(mentions: Sequence[_Mention], lexicon: _Lexicon) -> list[_Mention]:
    """A combination's own entry ("acetaminophen and codeine") as the drugs it combines: a
    question names one of them, never the pair as one drug."""
    out: list[_Mention] = []
    for m in mentions:
        if " and " not in m.generic:
            out.append(m)
            continue
        for part in m.generic.split(" and "):
            out.extend(p for p in lexicon.find(part) if " and " not in p.generic)
    return out


def _drugs_only(mentions: Sequence[_Mention]) -> list[_Mention]:
    return [m for m in mentions if m.generic not in _SALTS and m.written.lower() not in _SALTS]


@dataclass(frozen=True)
class _Guess:
    written: str
    generic: str


def _misspelt(title: str, lexicon: _Lexicon) -> list[_Mention]:
    """A title naming no drug may misspell one ("Amoxiciliin", "Metroprolol succinate"): each
    long word is compared with the lexicon's names (``closest``, when the lexicon has it)."""
    closest = getattr(lexicon, "closest", None)
    if closest is None:
        return []
    out: list[_Mention] = []
    for word in re.findall(r"[A-Za-z]{7,}", title):
        if word.lower() in _DOCUMENT_WORDS or word.lower() in _SALTS:
            continue
        generic = closest(word)
        if generic:
            out.append(_Guess(word, generic))
    return _drugs_only(out)


def _indications(title: str, heads: Sequence[str], body: str) -> tuple[str, ...]:
    """Indications named in the title or a heading, then those the body names twice or more."""
    up_top = list(indications_in(" ; ".join([title, *heads])))
    counts: Counter[str] = Counter()
    for line in body.splitlines():
        counts.update(indications_in(line))
    for name, n in counts.most_common():
        if n >= 2 and name not in up_top:
            up_top.append(name)
    return tuple(up_top)
