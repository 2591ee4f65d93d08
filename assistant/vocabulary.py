"""What a question is about: drugs, indications, populations, phenotypes and intent.

The vocabulary is built from the corpus metadata (drugs and indications of every chunk) plus a
small synonym table for brands and abbreviations clinicians type (Imuran, AZA, LN, AIH...).
Drug names tolerate typos through ``difflib`` (rapidfuzz is not a dependency).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from guardrails.lexicon import DRUG_ALIASES
from guardrails.lexicon import INDICATION_ALIASES as _INDICATIONS
from guardrails.sentences import clauses
from ingest.model import Chunk

__all__ = [
    "ClinicalVocabulary",
    "INDICATION_ALIASES",
    "Layout",
    "INTENTS",
    "POPULATION_ALIASES",
    "QueryFacets",
    "Vocabulary",
    "ROUTE_ALIASES",
    "THIOPURINES",
    "answer_section",
    "clinical",
    "given_routes",
    "is_class_or_topic",
    "names_class_or_topic",
    "normalise",
    "routes_in",
    "uncovered_routes",
]

INTENTS = (
    "dose",
    "monitoring",
    "duration",
    "interaction",
    "pharmacogenomics",
    "adverse",
    "contraindication",
    "pregnancy",
    "general",
)

# alias -> canonical generic name, and canonical indication -> aliases: the project's one table
# (guardrails/lexicon.toml). Canonical drug names are resolved against the corpus drug list, so
# "mycophenolate" still finds a corpus that says "mycophenolate mofetil".
DRUG_SYNONYMS: Mapping[str, str] = DRUG_ALIASES
INDICATION_ALIASES: Mapping[str, tuple[str, ...]] = _INDICATIONS

# A thiopurine topic names no drug but is about the thiopurines the corpus covers.
_THIOPURINE_TOPIC_RE = re.compile(
    r"\b(tpmt|nudt15|6-?tgn|6-?mmp|thiopurines?|thioguanine nucleotides?|methylmercaptopurine"
    r"|thiopurine metabolites?)\b",
    re.IGNORECASE,
)
THIOPURINES = ("azathioprine", "mercaptopurine")
# Drug classes, resolved only when a question names no drug.
_CLASS_RE: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (
        re.compile(r"\b(gluco-?corticoids?|corticosteroids?|steroids?)\b", re.IGNORECASE),
        ("prednisone", "prednisolone"),
    ),
)


def names_class_or_topic(question: str) -> bool:
    """Does the question name a drug class or a thiopurine topic anywhere in it?"""
    return bool(_THIOPURINE_TOPIC_RE.search(question)) or any(
        rx.search(question) for rx, _ in _CLASS_RE
    )


def is_class_or_topic(name: str) -> bool:
    """A drug class ("corticosteroids") or thiopurine topic ("6-TGN") rather than one drug."""
    return bool(_THIOPURINE_TOPIC_RE.fullmatch(name.strip())) or any(
        rx.fullmatch(name.strip()) for rx, _ in _CLASS_RE
    )


# A word that looks like a drug we do not know (monoclonals, kinase inhibitors, ...): a question
# naming one is not answered with the corpus drugs for its indication.
_DRUGLIKE_RE = re.compile(
    r"\b\w{3,}(?:mab|nib|umab|cept|pril|sartan|olol|statin|cillin|mycin|floxacin|azole|parin"
    r"|xaban|gatran|dronate|prazole|vir|gliptin|gliflozin|glutide|tide|lukast)\b",
    re.IGNORECASE,
)
# Routes and formulations the corpus rarely covers; a question naming one needs a passage
# naming it too (or the answer would give oral doses for eye drops).
ROUTE_ALIASES: dict[str, tuple[str, ...]] = {
    "eye drops": ("eye drops", "eye drop", "eyedrops", "ophthalmic", "eye ointment"),
    "topical": ("topical", "topically", "cream", "ointment", "gel", "lotion", "skin application"),
    "inhaled": ("inhaled", "inhaler", "inhalation", "nebulised", "nebulized", "nebuliser"),
    "nasal spray": ("nasal spray", "intranasal", "nose spray"),
    "rectal": ("rectal", "suppository", "suppositories", "enema", "enemas", "foam enema"),
    "intra-articular": ("intra-articular", "intraarticular", "joint injection"),
    "transdermal": ("transdermal", "patch", "patches"),
    "subcutaneous": ("subcutaneous", "subcutaneously", "subcut", "sc injection"),
    "intramuscular": ("intramuscular", "intramuscularly", "im injection"),
    "injection": ("injection", "injections", "injectable"),
}


def _alternation(names: Iterable[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(re.escape(a) for a in names) + r")\b", re.IGNORECASE)


_ROUTE_RE = {route: _alternation(names) for route, names in ROUTE_ALIASES.items()}
# What counts as a passage covering the route: any injectable route covers "injection".
_COVERED_RE = dict(_ROUTE_RE)
_COVERED_RE["injection"] = _alternation(
    ROUTE_ALIASES["injection"]
    + ROUTE_ALIASES["subcutaneous"]
    + ROUTE_ALIASES["intramuscular"]
    + ("intravenous", "intravenously", "infusion")
)
# What a passage says about how the drug is given (for the abstention message).
_GIVEN_RE = {
    "oral": re.compile(r"\b(oral|orally|tablets?|by mouth)\b", re.IGNORECASE),
    # "class IV lupus nephritis" is a histological class, not a route.
    "IV": re.compile(r"\bintravenous\w*|(?<!class )(?<!/)\bIV\b(?!\s*(?:lupus|LN|nephritis))"),
}


def routes_in(text: str) -> tuple[str, ...]:
    """Routes/formulations of :data:`ROUTE_ALIASES` named in ``text``."""
    return tuple(route for route, rx in _ROUTE_RE.items() if rx.search(text))


def uncovered_routes(routes: Iterable[str], texts: Iterable[str]) -> tuple[str, ...]:
    """The routes no text mentions."""
    joined = " ".join(texts)
    return tuple(r for r in routes if r in _COVERED_RE and not _COVERED_RE[r].search(joined))


def given_routes(texts: Iterable[str], drug: str | None = None) -> tuple[str, ...]:
    """Oral/IV, as far as the passages say how ``drug`` is given.

    With a drug, only sentences naming it as a whole word count: "prednisone after IV
    methylprednisolone pulses" says nothing about how prednisolone is given."""
    parts: Iterable[str] = texts
    if drug:
        named = re.compile(rf"(?<![\w-]){re.escape(drug)}(?![\w-])", re.IGNORECASE)
        # The guard's one sentence splitter, cut at ";" too (clauses).
        parts = (t[cs:ce] for t in texts for cs, ce, _, _ in clauses(t) if named.search(t[cs:ce]))
    joined = " ".join(parts)
    return tuple(name for name, rx in _GIVEN_RE.items() if rx.search(joined))


# Terms that name every autoimmune indication at once: no indication filter, not "off-topic".
BROAD_INDICATION_TERMS = ("autoimmune disease", "autoimmune diseases", "autoimmune", "immune")

POPULATION_ALIASES: dict[str, tuple[str, ...]] = {
    "pregnancy": ("pregnancy", "pregnant", "conception", "trying to conceive", "fertility"),
    "breastfeeding": ("breastfeeding", "breast feeding", "breast-feeding", "lactation", "nursing"),
    "pediatric": ("pediatric", "paediatric", "child", "children", "kids", "infant", "adolescent"),
    "elderly": ("elderly", "older adults", "older patients", "geriatric"),
    "renal impairment": (
        "renal impairment",
        "renal insufficiency",
        "renal failure",
        "kidney disease",
        "kidney impairment",
        "ckd",
        "dialysis",
        "egfr",
        "gfr",
        "creatinine clearance",
    ),
    "hepatic impairment": ("hepatic impairment", "liver impairment", "liver disease", "cirrhosis"),
}

# First match wins, so the most specific intents come first.
_INTENT_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "pharmacogenomics",
        re.compile(r"\b(tpmt|nudt15|genotyp\w*|phenotyp\w*|metaboli[sz]er\w*|pharmacogen\w*)\b"),
    ),
    (
        "interaction",
        re.compile(
            r"\b(interact\w*|allopurinol|febuxostat|zyloprim|warfarin|co-?medicat\w*"
            r"|together with|combin\w+ with|at the same time)\b"
        ),
    ),
    (
        "pregnancy",
        re.compile(r"\b(pregnan\w*|breast-?\s?feed\w*|lactat\w*|nursing|conceiv\w*|concep\w*)\b"),
    ),
    (
        "contraindication",
        re.compile(r"\b(contraindicat\w*|should not|must not|shouldn't|who cannot|avoid\w*)\b"),
    ),
    (
        "monitoring",
        re.compile(
            r"\b(monitor\w*|blood counts?|cbc|labs?|laborator\w*|blood tests?|check\w*|lfts?"
            r"|liver (?:function )?tests?|6-?tgn|6-?mmp|metabolite levels?|trough levels?)\b"
        ),
    ),
    (
        "duration",
        re.compile(
            r"\b(how long|duration|for how many|stop\w*|discontinu\w*|withdraw\w*|taper\w*)\b"
        ),
    ),
    (
        "adverse",
        re.compile(r"\b(side[- ]effects?|adverse|toxicit\w*|risks?|dangerous|safety)\b"),
    ),
    (
        "dose",
        re.compile(
            r"\b(doses?|dosage|dosing|dosed|how much|mg|milligrams?|maximum|max|start\w*"
            r"|titrat\w*|regimen|usage|take)\b"
        ),
    ),
)

_PHENOTYPE_RE = re.compile(
    r"\b(tpmt|nudt15)\b(?:\W+\w+){0,3}?\W+"
    r"(normal|intermediate|poor|low|absent|deficien\w*|heterozygous|homozygous|reduced)\b"
    r"|\b(normal|intermediate|poor|low|absent|deficien\w*|heterozygous|homozygous|reduced)\W+"
    r"(?:\w+\W+){0,2}?(tpmt|nudt15)\b"
)
_PHENOTYPE_WORDS = {
    "normal": "normal",
    "intermediate": "intermediate",
    "heterozygous": "intermediate",
    "low": "intermediate",
    "reduced": "intermediate",
    "poor": "poor",
    "absent": "poor",
    "homozygous": "poor",
}

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_PHRASE = 4
_FUZZY_CUTOFF = 0.82
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_LETTER_INDEX = {c: i for i, c in enumerate(_LETTERS)}


def _letter_counts(word: str) -> list[int]:
    counts = [0] * (len(_LETTERS) + 1)
    for ch in word:
        counts[_LETTER_INDEX.get(ch, len(_LETTERS))] += 1
    return counts


_FUZZY_CACHE_SIZE = 20000  # question words are few; the cache is cleared whole when full


@lru_cache(maxsize=8192)
def _normalise(text: str) -> tuple[str, ...]:
    text = text.lower().replace("’", "'").replace("'s ", " ")
    return tuple(_TOKEN_RE.findall(text))


def normalise(text: str) -> list[str]:
    """Lower-case word tokens; hyphenated words stay one token ("6-mp", "non-renal")."""
    return list(_normalise(text))


@dataclass(frozen=True)
class QueryFacets:
    """What a question asks about. ``drugs`` are corpus drug names in question order;
    ``uncovered_drugs`` are drugs we recognise but the corpus does not cover."""

    drugs: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    populations: tuple[str, ...] = ()
    intent: str = "general"
    phenotypes: tuple[tuple[str, str], ...] = ()  # (gene, phenotype), e.g. ("tpmt", "poor")
    uncovered_drugs: tuple[str, ...] = ()
    broad_indication: bool = False
    routes: tuple[str, ...] = ()  # routes/formulations named, e.g. ("eye drops",)
    resolved_from: str = ""  # why drugs were inferred for a question naming none

    @property
    def drug(self) -> str | None:
        return self.drugs[0] if self.drugs else None

    @property
    def indication(self) -> str | None:
        return self.indications[0] if self.indications else None


@dataclass(frozen=True)
class _Alias:
    kind: str  # drug | indication | population | broad
    canonical: str


@dataclass
class Vocabulary:
    """Drugs and indications of the corpus plus synonyms; ``facets(question)`` reads a question."""

    drugs: frozenset[str] = frozenset()
    indications: frozenset[str] = frozenset()
    sections_by_drug: dict[str, frozenset[str]] = field(default_factory=dict)
    # canonical indication -> corpus drugs whose documents cover it, most documents first
    drugs_by_indication: dict[str, tuple[str, ...]] = field(default_factory=dict)
    brands: dict[str, str] = field(default_factory=dict)  # brand -> corpus drug, from metadata
    _aliases: dict[tuple[str, ...], _Alias] = field(default_factory=dict, repr=False)
    _fuzzy_drug_words: dict[str, str] = field(default_factory=dict, repr=False)
    _mention_cache: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, repr=False)
    # the fuzzy drug words with their lengths and letter counts, so one vectorised pass finds
    # the few words that could reach the cutoff before difflib scores them
    _fuzzy_words: tuple[str, ...] = field(default=(), repr=False)
    _fuzzy_lengths: Any = field(default=None, repr=False)
    _fuzzy_counts: Any = field(default=None, repr=False)
    _fuzzy_cache: dict[str, str | None] = field(default_factory=dict, repr=False)
    # drug -> aliases_of(drug): a scan of every alias, asked several times per question
    _aliases_of: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_chunks(cls, chunks: Iterable[Chunk]) -> Vocabulary:
        drugs: set[str] = set()
        indications: set[str] = set()
        sections: dict[str, set[str]] = defaultdict(set)
        brands: dict[str, str] = {}
        by_indication: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for chunk in chunks:
            drugs.update(d.lower() for d in chunk.drugs)
            if chunk.drugs:
                # A document's first drug is its subject; the others are companions.
                for ind in chunk.indications:
                    key = cls._canonical_indication(ind.lower())
                    by_indication[key][chunk.drugs[0].lower()].add(chunk.doc_id)
            if chunk.drugs and chunk.brand_names:
                # An imported label names its product ("Lipitor"): the brand means its first
                # drug, by its moiety when that is listed too ("atorvastatin calcium" ->
                # "atorvastatin"), so brand and generic questions find the same sentences.
                base = chunk.drugs[0].lower()
                for other in chunk.drugs:
                    if base.startswith(other.lower() + " "):
                        base = other.lower()
                for brand in chunk.brand_names:
                    brands.setdefault(brand.lower(), base)
            indications.update(i.lower() for i in chunk.indications)
            kind = answer_section(chunk.section_path, chunk.text)
            for drug in chunk.drugs:
                sections[drug.lower()].add(kind)
        vocab = cls(
            drugs=frozenset(drugs),
            indications=frozenset(indications),
            sections_by_drug={d: frozenset(s) for d, s in sections.items()},
            brands=brands,
            drugs_by_indication={
                ind: tuple(sorted(docs, key=lambda d: (-len(docs[d]), d)))
                for ind, docs in by_indication.items()
            },
        )
        vocab._build_aliases()
        return vocab

    def to_dict(self) -> dict[str, Any]:
        """What ``from_chunks`` read from the corpus, as JSON-able data (aliases are derived
        again on load), so a restart need not read every chunk back to rebuild it."""
        return {
            "drugs": sorted(self.drugs),
            "indications": sorted(self.indications),
            "sections_by_drug": {d: sorted(s) for d, s in sorted(self.sections_by_drug.items())},
            "drugs_by_indication": {
                i: list(d) for i, d in sorted(self.drugs_by_indication.items())
            },
            "brands": dict(sorted(self.brands.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        vocab = cls(
            drugs=frozenset(str(d) for d in data["drugs"]),
            indications=frozenset(str(i) for i in data["indications"]),
            sections_by_drug={
                str(d): frozenset(str(x) for x in s) for d, s in data["sections_by_drug"].items()
            },
            drugs_by_indication={
                str(i): tuple(str(x) for x in d) for i, d in data["drugs_by_indication"].items()
            },
            brands={str(b): str(d) for b, d in data["brands"].items()},
        )
        vocab._build_aliases()
        return vocab

    @classmethod
    def from_names(cls, drugs: Iterable[str], indications: Iterable[str] = ()) -> Vocabulary:
        vocab = cls(
            drugs=frozenset(d.lower() for d in drugs),
            indications=frozenset(i.lower() for i in indications),
        )
        vocab._build_aliases()
        return vocab

    # -- building -------------------------------------------------------------------------
    def _resolve_drug(self, canonical: str) -> str | None:
        """The corpus's own name for a canonical drug, or None when the corpus lacks it."""
        if canonical in self.drugs:
            return canonical
        for name in sorted(self.drugs):
            if name.startswith(canonical) or canonical.startswith(name):
                return name
        return None

    def _build_aliases(self) -> None:
        aliases: dict[tuple[str, ...], _Alias] = {}

        def add(phrase: str, alias: _Alias) -> None:
            key = tuple(normalise(phrase))
            if key:
                aliases.setdefault(key, alias)

        for drug in sorted(self.drugs):
            add(drug, _Alias("drug", drug))
        for brand, drug in sorted(self.brands.items()):
            add(brand, _Alias("drug", drug))
        for alias, canonical in DRUG_SYNONYMS.items():
            add(alias, _Alias("drug", self._resolve_drug(canonical) or f"?{canonical}"))
        for canonical, names in INDICATION_ALIASES.items():
            for name in names:
                add(name, _Alias("indication", canonical))
        for indication in sorted(self.indications):
            add(indication, _Alias("indication", self._canonical_indication(indication)))
        for canonical, names in POPULATION_ALIASES.items():
            for name in names:
                add(name, _Alias("population", canonical))
        for term in BROAD_INDICATION_TERMS:
            add(term, _Alias("broad", ""))
        self._aliases = aliases
        # Typo tolerance only for drug words long enough that a near miss is still unambiguous.
        self._fuzzy_drug_words = {
            key[0]: alias.canonical
            for key, alias in aliases.items()
            if alias.kind == "drug" and len(key) == 1 and len(key[0]) >= 5
        }
        words = tuple(self._fuzzy_drug_words)
        self._fuzzy_words = words
        self._fuzzy_lengths = np.array([len(w) for w in words], dtype=np.int32)
        self._fuzzy_counts = np.array([_letter_counts(w) for w in words], dtype=np.int32).reshape(
            len(words), len(_LETTERS) + 1
        )
        self._fuzzy_cache = {}
        self._aliases_of = {}

    @staticmethod
    def _canonical_indication(indication: str) -> str:
        words = " ".join(normalise(indication))
        for canonical, names in INDICATION_ALIASES.items():
            if words == canonical or words in names:
                return canonical
        return words

    # -- reading a question -----------------------------------------------------------------
    def facets(self, question: str) -> QueryFacets:
        tokens = normalise(question)
        drugs: list[str] = []
        uncovered: list[str] = []
        indications: list[str] = []
        populations: list[str] = []
        broad = False
        i = 0
        while i < len(tokens):
            for n in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
                alias = self._aliases.get(tuple(tokens[i : i + n]))
                if alias is None:
                    continue
                if alias.kind == "drug":
                    target = uncovered if alias.canonical.startswith("?") else drugs
                    name = alias.canonical.lstrip("?")
                    if name not in target:
                        target.append(name)
                elif alias.kind == "indication" and alias.canonical not in indications:
                    indications.append(alias.canonical)
                elif alias.kind == "population" and alias.canonical not in populations:
                    populations.append(alias.canonical)
                elif alias.kind == "broad":
                    broad = True
                i += n
                break
            else:
                fuzzy = self._fuzzy_drug(tokens[i])
                if fuzzy and not fuzzy.startswith("?") and fuzzy not in drugs:
                    drugs.append(fuzzy)
                i += 1
        # "lupus nephritis" already implies lupus; keep the specific one only.
        if "lupus nephritis" in indications and "systemic lupus erythematosus" in indications:
            indications.remove("systemic lupus erythematosus")
        intent = classify_intent(question)
        if intent == "interaction" and len(drugs) == 1:
            # "allopurinol starting dose": the interaction words include allopurinol's name,
            # which is no interaction when allopurinol is the only drug asked about.
            names = "|".join(re.escape(a) for a in self.aliases_of(drugs[0]))
            intent = classify_intent(re.sub(rf"\b(?:{names})\b", " ", question.lower()))
        return QueryFacets(
            drugs=tuple(drugs),
            indications=tuple(indications),
            populations=tuple(populations),
            intent=intent,
            phenotypes=parse_phenotypes(question),
            uncovered_drugs=tuple(d for d in uncovered if d not in drugs),
            broad_indication=broad,
            routes=routes_in(question),
        )

    def resolve_topic(self, facets: QueryFacets, question: str) -> QueryFacets:
        """Drugs for a question that names none: a thiopurine topic (TPMT, 6-TGN, "thiopurines")
        means the thiopurines the corpus covers; a drug class means its corpus members; an
        indication means the corpus drugs for it. Unchanged when it names (or seems to name)
        a drug we do not cover, or none of these."""
        if facets.drugs or facets.uncovered_drugs or _DRUGLIKE_RE.search(question):
            return facets
        if _THIOPURINE_TOPIC_RE.search(question):
            found = tuple(d for d in (self._resolve_drug(t) for t in THIOPURINES) if d)
            if found:
                return replace(facets, drugs=found, resolved_from="a thiopurine topic")
        for rx, members in _CLASS_RE:
            if rx.search(question):
                found = tuple(d for d in (self._resolve_drug(m) for m in members) if d)
                if found:
                    return replace(facets, drugs=found, resolved_from="a drug class")
        if facets.indications and not facets.broad_indication:
            found = tuple(
                dict.fromkeys(
                    d for ind in facets.indications for d in self.drugs_by_indication.get(ind, ())
                )
            )
            if found:
                return replace(
                    facets, drugs=found, resolved_from=f"the indication {facets.indications[0]}"
                )
        return facets

    def _fuzzy_drug(self, token: str) -> str | None:
        if len(token) < 5 or not token.isalpha():
            return None
        try:
            return self._fuzzy_cache[token]
        except KeyError:
            pass
        # difflib keeps a word only if quick_ratio (2 * shared letters, counted with
        # multiplicity, over both lengths) reaches the cutoff; that bound is computed for every
        # word at once here, and only the survivors are scored: the same answer, far fewer
        # SequenceMatchers. Characters outside a-z share one bucket, which only raises the bound.
        candidates: list[str] = []
        if self._fuzzy_words:
            shared = np.minimum(self._fuzzy_counts, np.array(_letter_counts(token))).sum(axis=1)
            bound = 2.0 * shared / (self._fuzzy_lengths + len(token))
            candidates = [self._fuzzy_words[i] for i in np.flatnonzero(bound >= _FUZZY_CUTOFF)]
        match = difflib.get_close_matches(token, candidates, n=1, cutoff=_FUZZY_CUTOFF)
        found = self._fuzzy_drug_words[match[0]] if match else None
        if len(self._fuzzy_cache) >= _FUZZY_CACHE_SIZE:
            self._fuzzy_cache.clear()
        self._fuzzy_cache[token] = found
        return found

    # -- matching text against facets ---------------------------------------------------------
    def aliases_of(self, drug: str) -> tuple[str, ...]:
        """Every phrase that names ``drug`` (generic, brands, abbreviations)."""
        cached = self._aliases_of.get(drug)
        if cached is not None:
            return cached
        names = {drug}
        for key, alias in self._aliases.items():
            if alias.kind == "drug" and alias.canonical == drug:
                names.add(" ".join(key))
        found = tuple(sorted(names, key=len, reverse=True))
        if len(self._aliases_of) >= _FUZZY_CACHE_SIZE:  # any string may be asked: stay bounded
            self._aliases_of.clear()
        self._aliases_of[drug] = found
        return found

    def mentions(self, text: str, kind: str) -> set[str]:
        """Canonical names of ``kind`` ('drug' | 'indication' | 'population') named in text."""
        key = (kind, text)
        cached = self._mention_cache.get(key)
        if cached is None:
            if len(self._mention_cache) > 20000:
                self._mention_cache.clear()
            cached = self._mention_cache[key] = frozenset(self._mentions(text, kind))
        return set(cached)

    def _mentions(self, text: str, kind: str) -> set[str]:
        tokens = _normalise(text)
        found: set[str] = set()
        i = 0
        while i < len(tokens):
            for n in range(min(_MAX_PHRASE, len(tokens) - i), 0, -1):
                alias = self._aliases.get(tuple(tokens[i : i + n]))
                if alias is not None:
                    if alias.kind == kind and not alias.canonical.startswith("?"):
                        found.add(alias.canonical)
                    i += n
                    break
            else:
                i += 1
        return found

    @staticmethod
    @lru_cache(maxsize=8192)
    def indication_matches(corpus_indication: str, facet: str) -> bool:
        """Does a chunk's indication cover the question's? ("lupus" covers lupus nephritis)
        A function of the two names only, asked for every candidate sentence: remembered."""
        words = " ".join(normalise(corpus_indication))
        if not words:
            return False
        if words == facet or Vocabulary._canonical_indication(words) == facet:
            return True
        padded = f" {words} "
        return any(
            len(alias) >= 4 and f" {alias} " in padded
            for alias in INDICATION_ALIASES.get(facet, ())
        )


def classify_intent(question: str) -> str:
    text = question.lower()
    for intent, pattern in _INTENT_RULES:
        if pattern.search(text):
            return intent
    return "general"


def parse_phenotypes(question: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for m in _PHENOTYPE_RE.finditer(question.lower()):
        gene = m.group(1) or m.group(4)
        word = m.group(2) or m.group(3)
        phenotype = _PHENOTYPE_WORDS.get(word, "poor" if word.startswith("deficien") else "")
        if gene and phenotype and (gene, phenotype) not in found:
            found.append((gene, phenotype))
    return tuple(found)


_SECTION_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    # A label's "Indications and Usage" says what the drug is for, not how much to give.
    ("Background", re.compile(r"indications? (and|&) usage")),
    ("Pharmacogenomics", re.compile(r"tpmt|nudt15|pharmacogen|genotyp|phenotyp|metaboli[sz]er")),
    ("Interactions", re.compile(r"interact|allopurinol|febuxostat|warfarin|vaccin")),
    (
        "Special populations",
        re.compile(
            r"pregnan|lactat|breast|pediatric|paediatric|child|elderly|geriatric|older"
            r"|renal (impair|insuff|failure)|hepatic impair|special population|fertility"
        ),
    ),
    ("Contraindications", re.compile(r"contraindicat|warning|precaution|boxed|do not use")),
    ("Monitoring", re.compile(r"monitor|laborator|blood count|cbc|follow-up")),
    ("Duration", re.compile(r"duration|how long|withdraw|discontinu|stopping|taper")),
    ("Adverse effects", re.compile(r"adverse|side effect|toxicit|malignan|overdos")),
    (
        "Dosing",
        re.compile(
            # A label's "How Supplied", "Dosage Forms and Strengths", "Description" and a Drug
            # Facts "Active ingredients" list the strengths a dose is given in: what "what doses
            # does it come in?" asks.
            r"dos(e|age|ing)|administration|regimen|maintenance|induction|starting|titrat|usage"
            r"|how supplied|strengths?|dosage forms|active ingredients?|description"
        ),
    ),
)


def _section_of(heading: str) -> str | None:
    low = heading.lower()
    for name, pattern in _SECTION_RULES:
        if pattern.search(low):
            return name
    return None


def answer_section(section_path: Sequence[str], text: str = "") -> str:
    """Map a chunk's heading path (title first) to an answer section.

    A specific heading below the title wins, deepest first ("Dosing > Intermediate metabolizer"
    is pharmacogenomics); dosing words are weak ("Monitoring > Maintenance phase" is still
    monitoring); the document title decides last. (``text`` is not read: the heading path
    alone decides, so the answer is remembered per path - composing asks it for every
    candidate chunk of every question.)"""
    return _answer_section(tuple(section_path))


@lru_cache(maxsize=8192)
def _answer_section(path: tuple[str, ...]) -> str:
    below = path[1:] if len(path) > 1 else ()
    found = [_section_of(h) for h in reversed(below)]
    for name in found:
        if name is not None and name != "Dosing":
            return name
    if "Dosing" in found:
        return "Dosing"
    if path:
        return _section_of(path[0]) or "Background"
    return "Background"


# -- the clinical vocabulary (vocabulary.toml) ----------------------------------------------------
_DATA = Path(__file__).with_name("vocabulary.toml")
# A number standing alone; a digit inside a gene name ("NUDT15") is no quantity.
_DIGIT_RE = re.compile(r"(?<!\w)\d")


@dataclass(frozen=True)
class Layout:
    """How one intent's answer is laid out: the sections its direct sentence comes from, whether
    that sentence also gets the indication's duration, and how many lines each section shows."""

    direct: tuple[str, ...]
    lines: Mapping[str, int]
    duration: bool = False
    # The layout for a question of this intent that names a role or a population ("starting
    # dose", "in renal impairment"): only what it asks, no neighbouring sections. None: the same.
    scoped: Layout | None = None


@dataclass(frozen=True)
class ClinicalVocabulary:
    """The words of an answer, read from ``vocabulary.toml`` (see the comments there)."""

    sections: tuple[str, ...]
    patient_headings: Mapping[str, str]
    layouts: Mapping[str, Layout]
    population_lines: int
    broad_extra: int
    safety_lines: int
    followups: Mapping[str, str]
    followup_order: tuple[str, ...]
    genetics_followup: str
    safety: Mapping[str, tuple[re.Pattern[str], ...]]
    abbreviations: Mapping[str, str]
    source_patterns: tuple[re.Pattern[str], ...]
    source_keep_words: frozenset[str]
    source_inline: tuple[re.Pattern[str], ...]
    evidence_tags: Mapping[str, str]

    def layout(self, intent: str) -> Layout:
        return self.layouts.get(intent) or self.layouts["dose"]

    def evidence_tag(self, kind: str) -> str:
        return self.evidence_tags.get(kind, kind or "other")


def _load_clinical(path: Path) -> ClinicalVocabulary:
    data = tomllib.loads(path.read_text(encoding="utf-8"))

    def layout_row(row: Mapping[str, Any]) -> Layout:
        scoped = row.get("scoped")
        return Layout(
            direct=tuple(row["direct"]),
            lines={str(k): int(v) for k, v in row.get("lines", {}).items()},
            duration=bool(row.get("duration", False)),
            scoped=layout_row({"direct": row["direct"], **scoped}) if scoped else None,
        )

    layouts = {intent: layout_row(row) for intent, row in data["layout"].items()}
    followups = {k: str(v) for k, v in data["followups"].items() if isinstance(v, str)}
    genetics = followups.pop("genetics_other")
    abbreviations = {str(k): str(v) for k, v in data["abbreviations"].items()}
    shown = [*abbreviations.values(), *followups.values(), genetics,
             *data["patient_headings"].values()]  # fmt: skip
    digits = [t for t in shown if _DIGIT_RE.search(t)]
    if digits:
        # A number the composer wrote itself would have no source for the guard to find.
        raise ValueError(f"{path.name}: shown text must hold no digit: {digits}")
    sections = tuple(data["sections"])
    rows = [*layouts.values(), *(lay.scoped for lay in layouts.values() if lay.scoped)]
    unknown = {s for lay in rows for s in (*lay.direct, *lay.lines)} - set(sections)
    if unknown or "dose" not in layouts:
        raise ValueError(f"{path.name}: layout names unknown sections {sorted(unknown)}")
    sources = data["source_names"]
    return ClinicalVocabulary(
        sections=sections,
        patient_headings=dict(data["patient_headings"]),
        layouts=layouts,
        population_lines=int(data["layout_rules"]["population_lines"]),
        broad_extra=int(data["layout_rules"]["broad_extra"]),
        safety_lines=int(data["layout_rules"]["safety_lines"]),
        followups=followups,
        followup_order=tuple(data["followups"]["order"]),
        genetics_followup=genetics,
        safety={
            drug: tuple(re.compile(p, re.IGNORECASE) for p in patterns)
            for drug, patterns in data["safety"].items()
        },
        abbreviations=abbreviations,
        source_patterns=tuple(re.compile(p) for p in sources["patterns"]),
        source_keep_words=frozenset(sources["keep_words"]),
        source_inline=tuple(re.compile(p, re.IGNORECASE) for p in sources["inline"]),
        evidence_tags={str(k): str(v) for k, v in data["evidence_tags"].items()},
    )


@lru_cache(maxsize=1)
def clinical() -> ClinicalVocabulary:
    """The packaged clinical vocabulary (read once)."""
    return _load_clinical(_DATA)


# Answer sections, in the order a clinician reads them (vocabulary.toml).
SECTION_ORDER: tuple[str, ...] = clinical().sections
