"""The default, deterministic answer composer (no LLM): ranking, then layout.

It picks cited sentences and bullets out of the retrieved chunks and never writes a number of
its own: every figure in the answer is copied verbatim from a passage, next to the ``[n]`` of
the passage it came from, so the dose guard can verify it.

- **Ranking** (:func:`rank`) scores every cited sentence for the question with named
  :class:`Weights`, reading the guard's typed dose statements for what each figure is (its role);
  each score keeps the reasons it was given.
- **Layout** (:func:`compose_answer`) follows one per-intent row of ``vocabulary.toml``: one bold
  direct sentence (drug, indication, role, population), a few lines per asked section, the
  drug's fixed safety lines, and the patient's block. Each chosen line records why
  (:class:`assistant.model.Explanation`).
- **Wording**: source names in front of a sentence ("..., secondary summary:") are dropped, as
  the citation's evidence tag says where a line comes from; abbreviations are spelled out on
  first use; one ``[n]`` per passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

from assistant.model import Explanation, RetrievedChunk
from assistant.vocabulary import (
    INDICATION_ALIASES,
    POPULATION_ALIASES,
    SECTION_ORDER,
    THIOPURINES,
    QueryFacets,
    Vocabulary,
    answer_section,
    clinical,
    normalise,
)
from assistant.wording import MARKER_RE, Abbreviations, capital, plain_wording, split_lead
from guardrails import parse_quantities
from guardrails.drugs import attached_drug, same_drug
from guardrails.model import Derivation, DoseStatement, Passage, Role, fast_constructor
from guardrails.sentences import sentences
from guardrails.statements import asked_scope, phenotype_values, statement_sources

__all__ = [
    "WEIGHTS",
    "CitedSource",
    "Composition",
    "Statement",
    "Weights",
    "clear_memos",
    "compose_answer",
    "extract_statements",
    "is_label",
    "rank",
    "render_references",
    "replace_markers",
    "strip_markers",
    "suggest_followups",
]

_BULLET_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+")
_HEADING_RE = re.compile(r"^\s*#{1,6}\s")
# A dose-like figure, used only to rank sentences (the guard does the real parsing).
_DOSE_RE = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)?(?:\s*(?:[-–—]|to)\s*\d+(?:[.,]\d+)?)?\s*"
    r"(?:mg|g|mcg|µg|micrograms?|milligrams?|grams?|units?|iu)\b"
    r"(?:\s*/\s*(?:kg|m2|m²|day|d|week|wk|dose))*",
    re.I,
)
_PER_KG_RE = re.compile(r"/\s*kg", re.I)
_DIGIT_RE = re.compile(r"\d")
# "How common is TPMT deficiency?" asks for a frequency, not a dose.
_FREQUENCY_Q_RE = re.compile(
    r"\bhow (?:common|rare|frequent|often do)\b|\bwhat (?:fraction|proportion|percentage)\b"
    r"|\bprevalen|\bfrequenc|\bepidemiolog|\bwhich populations?\b|\bcarry\b",
    re.I,
)
_FREQUENCY_ST_RE = re.compile(
    r"frequenc|prevalen|epidemiolog|\bpopulations?\b|\b1 in \d|\bcarr(?:y|iers?)\b|ancestry", re.I
)
# A heading that makes every line below it a frequency ("Population frequencies"); narrower
# than the statement pattern, so "Special populations" does not count.
_FREQUENCY_HEADING_RE = re.compile(r"frequenc|prevalen|epidemiolog", re.I)
_SUPERSEDED_RE = re.compile(r"\bsuperseded\b", re.I)
_DURATION_RE = re.compile(r"\d\s*(?:(?:–|-|to)\s*\d+\s*)?(?:years?|months?|weeks?|days?)\b", re.I)
_MAXIMUM_Q_RE = re.compile(r"\b(?:max(?:imum)?|ceiling|highest|upper|exceed)\b", re.I)
_TOPIC_WORDS = ("maintenance", "initial", "starting", "start", "ceiling", "maximum", "induction")
_DOSE_INTENTS = ("dose", "general")
# Plainer words for patients; numbers are never touched.
_PATIENT_TERMS = (
    (re.compile(r"\bmyelosuppression\b", re.I), "low blood counts (myelosuppression)"),
    (re.compile(r"\bhaematological\b|\bhematological\b", re.I), "blood"),
    (re.compile(r"\bCBCs?\b"), "blood counts"),
    (re.compile(r"\bhepatotoxicity\b", re.I), "liver damage"),
    (re.compile(r"\bcytopenias?\b", re.I), "low blood counts"),
    (re.compile(r"\bleukopenia\b", re.I), "low white-cell count"),
    (re.compile(r"\bthrombocytopenia\b", re.I), "low platelet count"),
)


@dataclass(frozen=True)
class Weights:
    """What each property of a sentence adds to its rank for a question (higher ranks first).

    Scores are only compared with each other: what matters is the order the weights produce,
    e.g. a sentence for the question's indication (+match) outranks one about the drug in
    general (+neutral) unless the general one is far better on the other counts."""

    retrieval: float = 1.0  # times 1/(1 + the chunk's retrieval rank): the retriever's vote
    names_drug: float = 1.0  # the sentence names the question's drug (not only its document)
    indication_match: float = (
        2.0  # the sentence (or its sub-topic heading) is for the asked indication
    )
    indication_neutral: float = 0.5  # it names no indication: about the drug in general
    indication_weak: float = -2.0  # its document is about another indication only
    asked_section: float = 2.0  # it sits in a section the intent's layout answers from
    drug_leads_dose: float = 1.5  # the drug is named before the first dose: it is the dosed drug
    dose_in_asked_section: float = 1.5  # a dose question and a dose in an asked section
    per_dose: float = 0.3  # each dose figure there (three at most): a fuller answer
    per_kg: float = 0.5  # a weight-based dose, the form clinicians dose by
    companion_dose: float = -3.0  # the first dose is another drug's (a companion steroid)
    dose_role: float = 1.0  # the guard reads its first figure as a starting/maintenance/usual dose
    maximum_unasked: float = -1.0  # its first figure is a ceiling the question did not ask for
    outcome_figure: float = -2.0  # its first figure is a trial result or frequency, not a dose
    mixed_roles: float = -1.0  # figures of three or more roles: a comparison, not an answer
    question_word: float = 0.2  # each word shared with the question
    frequency_answer: float = 5.0  # a "how common" question and a frequency sentence
    spans_indications: float = 2.0  # it covers every indication the question names at once
    population: float = 2.0  # it is about the population the question names (pregnancy, ...)
    gene: float = 0.5  # it names the gene the question names
    phenotype: float = 4.0  # it names the phenotype the question names
    other_drug_asked: float = 2.0  # it names the question's second drug (an interaction)
    asked_source: float = 2.0  # it is attributed to the guideline or label the question names
    superseded: float = -3.0  # its source marks it superseded (an older regimen or label)
    neighbour_dose: float = -1.5  # per dose, in a section the question did not ask about
    concrete_schedule: float = 0.25  # a figure that is no dose there ("weekly for 8 weeks")
    direct_per_dose: float = 0.4  # per dose, when choosing the one direct sentence
    direct_tie: float = 0.5  # direct candidates this close count as equal: document order decides
    safety_per_figure: float = -0.5  # per dose, when choosing a safety line (topic, not dose)
    # Per figure, choosing a safety line under a narrow question (a role or population asked):
    # there the line is a reminder of the topic, and its figures answer another question.
    safety_per_figure_narrow: float = -3.0
    strong_extra_lines: int = (
        2  # lines a section adds beyond its layout for the question's own words
    )


WEIGHTS = Weights()


@dataclass(frozen=True)
class Statement:
    """One cited sentence or bullet from a chunk."""

    raw: str  # as in the chunk, with [@id] markers
    text: str  # markers removed
    source_ids: tuple[str, ...]
    chunk: RetrievedChunk
    section: str  # answer section
    group: str  # deepest heading below the answer-section heading, "" when none
    rank: int  # chunk rank in the retrieval
    order: int  # position in the chunk
    span: tuple[int, int] = (-1, -1)  # where the unit is in the chunk's text ((-1, -1): unknown)

    @cached_property
    def key(self) -> str:
        # Read ~650 times per answer while laying out: made once.
        return f"{self.chunk.chunk_id}:{self.order}"

    @cached_property
    def doses(self) -> tuple[str, ...]:
        # Read ~200 times per sentence while ranking and laying out: found once.
        return _doses_in(self.text)

    def _derived(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per statement, and once per unit of a chunk across statements:
        ``extract_statements`` gives each statement its unit's shared memo (``_shared``)."""
        own = self.__dict__
        got = own.get(name)
        if got is None:
            shared = own.get("_shared")
            got = shared.get(name) if shared is not None else None
            if got is None:
                got = compute()
                if shared is not None:
                    shared[name] = got
            own[name] = got
        return got

    @cached_property
    def dose_facts(self) -> frozenset[object]:
        """Each dose as the guard reads it, with its schedule: "20 mg once daily" (renal) is
        another fact than "20 mg twice daily" (usual), though both show "20 mg". A figure the
        guard reads no dose statement from (a strength, a description) stays as written. Read
        from the dose statements ranking reads anyway: parsing each sentence again cost more than
        the rest of composing."""
        facts: frozenset[object] = self._derived("_dose_facts", self._read_dose_facts)
        return facts

    def _read_dose_facts(self) -> frozenset[object]:
        read = self.typed()
        facts: set[object] = {
            (q.low, q.high, q.unit, q.per, q.per_count, q.per_kg, q.per_m2)
            for q in (s.quantity for s in read)
        }
        for m in _DOSE_RE.finditer(self.text):
            at, end = self.span[0] + m.start(), self.span[0] + m.end()
            if not any(s.span[0] < end and at < s.span[1] for s in read):
                facts.add(_norm(m.group(0)))
        return frozenset(facts)

    @cached_property
    def figures(self) -> int:
        """How many numbers the guard reads in it (doses, durations, percentages, ...)."""
        return _figures_in(self.text)

    def typed(self) -> tuple[DoseStatement, ...]:
        """The guard's dose statements of this sentence's figures, in order."""
        # Asked ~80 times per answer per sentence (ranking, facts, layout): each scan of the
        # chunk's statements is made once per unit.
        got: tuple[DoseStatement, ...] = self._derived("_typed", self._read_typed)
        return got

    def _read_typed(self) -> tuple[DoseStatement, ...]:
        if self.span[0] < 0:
            return ()
        at, end = self.span
        return tuple(s for s in self.chunk.statements if at <= s.span[0] < end)

    def roles(self) -> tuple[Role, ...]:
        """The guard's role of each figure of this sentence, in order (its dose statements). A
        weight band ("for patients 10 kg to 25 kg") says whom the dose is for: it is no figure
        of its own, so it neither leads nor counts."""
        got: tuple[Role, ...] = self._derived(
            "_roles", lambda: tuple(s.role for s in self.typed() if s.quantity.kind != "weight")
        )
        return got


# The plain wording of a sentence depends only on it and its document's drugs: the same
# sentences are shown answer after answer, so each is worded once.
_plain_wording = lru_cache(maxsize=8192)(plain_wording)

# Statements are made for every unit of every retrieved chunk of every answer (~70): the
# frozen dataclass's own __init__ (a setattr per field) cost more than reading the units.
_statement = fast_constructor(Statement)


@lru_cache(maxsize=8192)
def _doses_in(text: str) -> tuple[str, ...]:
    """The dose-like figures of a sentence (the same sentences come back answer after answer)."""
    return tuple(m.group(0) for m in _DOSE_RE.finditer(text))


@lru_cache(maxsize=8192)
def _figures_in(text: str) -> int:
    """How many numbers the guard reads in a sentence, remembered like ``_doses_in``."""
    return len(parse_quantities(text))


@dataclass(frozen=True)
class CitedSource:
    """One ``[n]``: one passage (chunk), whichever of its sources the answer cites."""

    n: int
    chunk: RetrievedChunk
    source_id: str  # the cited source ids, comma-separated
    reference: str  # their references, "; "-separated
    kind: str = ""  # their evidence tags, comma-separated ("guideline, trial")
    sentences: tuple[tuple[int, int], ...] = ()  # spans of the cited sentences in chunk.text


@dataclass(frozen=True)
class Composition:
    body: str  # the Markdown the guard checks: direct answer + sections
    references: str  # the numbered reference list (bibliographic, not a claim)
    summary: str
    cited: tuple[CitedSource, ...]
    statements: tuple[Statement, ...] = ()
    line_keys: tuple[tuple[int, int, tuple[str, ...]], ...] = ()  # (start, end, statement keys)
    derivations: tuple[Derivation, ...] = ()
    explanations: tuple[Explanation, ...] = ()

    @property
    def answer(self) -> str:
        return f"{self.body}\n\n{self.references}".strip() if self.references else self.body

    @property
    def passages(self) -> tuple[Passage, ...]:
        return passages_for(self.cited)

    def keys_at(self, span: tuple[int, int]) -> tuple[str, ...]:
        for start, end, keys in self.line_keys:
            if start <= span[0] < end:
                return keys
        return ()


def strip_markers(text: str) -> str:
    return MARKER_RE.sub("", text).strip()


def _marker_ids(raw_marker: str) -> tuple[str, ...]:
    return tuple(p.strip().lstrip("@").strip() for p in raw_marker.split(";") if p.strip())


@lru_cache(maxsize=4096)
def _split_units(text: str) -> tuple[tuple[str, int], ...]:
    """(unit, offset in text): each bullet, and each sentence of a paragraph line (the guard's
    one sentence splitter), with a marker that trails a full stop joined to its sentence."""
    units: list[tuple[str, int]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        body = line.rstrip("\n")
        if not body.strip() or _HEADING_RE.match(body):
            continue
        bullet = _BULLET_RE.match(body)
        if bullet:
            units.append((body[bullet.end() :].strip(), start + bullet.end()))
            continue
        for s, e in sentences(body):
            sentence = body[s:e].strip()
            at = start + s + (len(body[s:e]) - len(body[s:e].lstrip()))
            if sentence.startswith("[@") and units:
                # A marker that trails the full stop belongs to the sentence before it.
                end = sentence.find("]") + 1
                prev, prev_at = units[-1]
                units[-1] = (f"{prev} {sentence[:end]}", prev_at)
                sentence, at = sentence[end:].strip(), at + end + 1
            if sentence:
                units.append((sentence, at))
    return tuple(units)


def is_label(chunk: RetrievedChunk) -> bool:
    """Is the chunk a passage of an imported drug label (SPL)?"""
    return chunk.metadata.get("doc_kind") == "label"


# Imported documents (text, HTML, PDF without front matter) carry no [@id] markers either: the
# document itself is their one source ("local document"), cited by title and section.
_IMPORTED_KINDS = frozenset({"text", "html", "pdf"})


def is_imported(chunk: RetrievedChunk) -> bool:
    """Is the chunk a passage of a document imported without front matter?"""
    return chunk.metadata.get("doc_kind") in _IMPORTED_KINDS and bool(chunk.metadata.get("sources"))


def _own_source_ids(chunk: RetrievedChunk) -> tuple[str, ...]:
    ids: list[str] = []
    for source in chunk.metadata.get("sources", ()):
        sid = source.get("id") if isinstance(source, dict) else getattr(source, "id", None)
        if sid and str(sid) not in ids:
            ids.append(str(sid))
    return tuple(ids)


def extract_statements(chunks: Sequence[RetrievedChunk]) -> list[Statement]:
    """Every cited unit of every chunk; uncited text is never used (it cannot be cited).

    A label is its own source and marks a paragraph once, after its last sentence, so an
    unmarked unit of a label chunk is cited by the chunk's own sources: the marker is written
    into ``raw``, so the unit is rendered with its ``[n]`` and the guard checks its numbers
    against the label passage like any other cited sentence."""
    out: list[Statement] = []
    for rank_, chunk in enumerate(chunks):
        for u in _units(chunk):
            st = _statement(
                raw=u.raw,
                text=u.text,
                source_ids=u.source_ids,
                chunk=chunk,
                section=u.section,
                group=u.group,
                rank=rank_,
                order=u.order,
                span=u.span,
            )
            # Every statement's key and figures are read: set now, the cached properties'
            # first-call path (a lock per attribute per statement) showed up in profiles.
            st.__dict__.update(u.memo, key=u.key, doses=u.doses, _shared=u.memo)
            out.append(st)
    return out


@dataclass(frozen=True)
class _Unit:
    """One cited unit of a chunk as every question reads it, and a memo of what is derived from
    it (its dose statements, roles, dose facts): the same chunks come back question after
    question."""

    order: int
    raw: str
    text: str
    source_ids: tuple[str, ...]
    span: tuple[int, int]
    section: str
    group: str
    key: str
    doses: tuple[str, ...]
    memo: dict[str, Any] = field(default_factory=dict, compare=False)


_UNITS: dict[tuple[Any, ...], tuple[_Unit, ...]] = {}
_UNITS_SIZE = 4096  # chunks


def clear_memos() -> None:
    """Forget what extraction and ranking remember of chunks and sentences (``_UNITS``,
    ``_FEATURES``): the next question reads its sentences again, as the first question about a
    drug does (the bench times that apart)."""
    global _FEATURES
    _UNITS.clear()
    _FEATURES = (None, {})


def _units(chunk: RetrievedChunk) -> tuple[_Unit, ...]:
    m = chunk.metadata
    # Everything a unit and its dose statements are read from: the chunk's text, headings and
    # what its passage carries (drugs, indications, kind, sources).
    try:
        key: tuple[Any, ...] | None = (
            chunk.chunk_id, chunk.doc_id, chunk.text, chunk.section, m.get("doc_kind"),
            tuple(m.get("section_path") or ()), tuple(m.get("drugs", ())),
            tuple(m.get("indications", ())), tuple(m.get("sources", ())),
        )  # fmt: skip
        got = _UNITS.get(key)  # type: ignore[arg-type]
    except TypeError:  # a hand-made chunk with unhashable metadata: read, not remembered
        key, got = None, None
    if got is not None:
        return got
    path = tuple(m.get("section_path") or chunk.section.split(" > "))
    section = answer_section(path, chunk.text)
    group = _group_heading(path)
    own = _own_source_ids(chunk) if is_label(chunk) or is_imported(chunk) else ()
    got = tuple(
        _Unit(
            order=order,
            raw=unit,
            text=text,
            source_ids=ids,
            span=span,
            section=section,
            group=group,
            key=f"{chunk.chunk_id}:{order}",
            doses=_doses_in(text),
            memo={} if key is None else {"_identity": (key, order)},
        )
        for order, unit, text, ids, span in _cited_units(chunk.text, own)
    )
    if key is not None:
        if len(_UNITS) >= _UNITS_SIZE:
            _UNITS.clear()
        _UNITS[key] = got
    return got


@lru_cache(maxsize=4096)
def _cited_units(
    chunk_text: str, own: tuple[str, ...]
) -> tuple[tuple[int, str, str, tuple[str, ...], tuple[int, int]], ...]:
    """(order, raw, text, source ids, span) of each cited unit of a chunk's text. The same
    chunks come back question after question: each is read once."""
    out = []
    for order, (unit, at) in enumerate(_split_units(chunk_text)):
        span = (at, at + len(unit)) if chunk_text.startswith(unit, at) else (-1, -1)
        ids: list[str] = []
        for m in MARKER_RE.finditer(unit):
            ids.extend(i for i in _marker_ids(m.group(1)) if i not in ids)
        if not ids and own and " | " not in unit:
            # (A table row without a figure is a header: alone it says nothing.)
            unit = f"{unit} [@{'; '.join(own)}]"
            ids = list(own)
        if not ids:
            continue
        out.append((order, unit, strip_markers(unit), tuple(ids), span))
    return tuple(out)


def _group_heading(path: Sequence[str]) -> str:
    # The deepest heading names the sub-topic ("Lupus nephritis maintenance") unless it is
    # the section heading itself ("Dosing") or the document title.
    if len(path) >= 3:
        return path[-1]
    return ""


# -- ranking ----------------------------------------------------------------------------------
@dataclass
class _Scored:
    statement: Statement
    score: float
    indication_fit: str  # match | neutral | weak
    label: str = ""
    other_dose: bool = False  # its figures are another drug's dose (a companion steroid)
    strong: bool = False  # contains most of the question's distinctive words ("steady state")
    # (why, points); worded by ``worded_reasons`` for the few statements an answer shows
    # (wording every reason of every ranked statement cost more than scoring them).
    reasons: list[tuple[str, float]] = field(default_factory=list)

    def add(self, weight: float, why: str, times: float = 1.0) -> None:
        if weight and times:
            self.score += weight * times
            self.reasons.append((why, weight * times))

    def worded_reasons(self) -> tuple[str, ...]:
        return tuple(f"{why} ({points:+.1f})" for why, points in self.reasons)


def _about_drug(
    st: Statement, drug: str, vocab: Vocabulary, aliases: Sequence[str]
) -> tuple[bool, bool]:
    """(relevant, mentions): is the statement about the question's drug?"""
    chunk_drugs = _lowered(tuple(st.chunk.metadata.get("drugs", ())))
    if drug and is_imported(st.chunk) and drug not in chunk_drugs:
        # An imported document is a source only on the drugs it is about: another drug's
        # label naming this one in passing ("coadministration with metoprolol") is not.
        return False, False
    if is_imported(st.chunk) and drug in chunk_drugs:
        # A combination's own document gives its figures per ingredient: "the higher doses of
        # buprenorphine (8-32 mg)" in a buprenorphine/naloxone label is about the product.
        aliases = (*aliases, *_ingredients(drug))
    # Hyphens split words here, so "azathioprine-based" names azathioprine.
    mentions = _names_any(st.text, tuple(aliases))
    if mentions:
        return True, True
    primary = bool(chunk_drugs) and chunk_drugs[0] == drug
    others = vocab.mentions(st.text, "drug") - {drug}
    if is_label(st.chunk):
        # A label lists its generic (a salt, "atorvastatin calcium") before the active moiety
        # the question names; reduced to moieties, a single-drug label is about that one drug. A
        # combination label's unnamed sentence stays its first drug's (it may be the other's).
        asked = {drug, *_label_drugs((drug,))}
        bases = _label_drugs(chunk_drugs)
        primary = primary or (bool(bases) and bases[0] in asked)
    return primary and not others, False


def _ingredients(drug: str) -> tuple[str, ...]:
    """A combination's ingredients ("buprenorphine/naloxone" -> both); () for a single drug."""
    return tuple(p.strip() for p in drug.split("/") if p.strip()) if "/" in drug else ()


@lru_cache(maxsize=1024)
def _lowered(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(n.lower() for n in names)


@lru_cache(maxsize=16384)
def _names_any(text: str, aliases: tuple[str, ...]) -> bool:
    """Does the sentence name the drug by one of its aliases? The same sentences and drugs
    come back answer after answer: remembered."""
    low = _spaced_words(text)
    return any(_spaced_words(a) in low for a in aliases)


@lru_cache(maxsize=8192)
def _spaced_words(text: str) -> str:
    """The words of ``text``, hyphens split, between spaces (for "is this phrase in it"):
    asked for every candidate sentence and alias of every answer (the same few hundred
    texts), so remembered."""
    return f" {' '.join(normalise(text.replace('-', ' ')))} "


@lru_cache(maxsize=8192)
def _word_set(text: str) -> frozenset[str]:
    """The sentence's words as a set (ranking compares them with the question's), remembered
    per sentence text like ``_spaced_words``."""
    return frozenset(normalise(text))


# Salt and hydrate words a label's generic name adds to the active moiety.
_SALT_WORDS = frozenset(
    """hydrochloride hcl dihydrochloride hydrobromide calcium sodium potassium magnesium
    besylate besilate mesylate mesilate maleate tartrate bitartrate succinate sulfate sulphate
    phosphate acetate citrate fumarate bromide chloride lactate gluconate nitrate oxalate
    hyclate monohydrate dihydrate trihydrate hemihydrate sesquihydrate anhydrous""".split()
)


@lru_cache(maxsize=1024)
def _label_drugs(drugs: tuple[str, ...]) -> tuple[str, ...]:
    """A label's drug names reduced to their active moieties, first-listed first, without
    repeats: ("placebrinol hydrochloride", "placebrinol") -> ("placebrinol",)."""
    out: list[str] = []
    for name in drugs:
        words = name.split()
        while len(words) > 1 and words[-1] in _SALT_WORDS:
            words.pop()
        base = " ".join(words)
        # The moiety listed next to its salt is the authority ("x y-salt" + "x").
        base = next((d for d in drugs if base.startswith(d + " ")), base)
        if base not in out:
            out.append(base)
    return tuple(out)


def _indication_fit(st: Statement, facets: QueryFacets, vocab: Vocabulary) -> tuple[str, str]:
    """How the statement's indication relates to the question's, plus a label for it."""
    # The sub-topic heading ("Non-renal lupus") is the authority on what a statement is for; its
    # text may name other indications in passing ("SLE without nephritis").
    group_inds = vocab.mentions(st.group, "indication") if st.group else set()
    unit_inds = group_inds or vocab.mentions(f"{st.group} {st.text}", "indication")
    label = st.group or (sorted(unit_inds)[0] if unit_inds else "")
    if not facets.indications or facets.broad_indication:
        return "neutral", label
    if unit_inds:
        ok = any(vocab.indication_matches(u, f) for u in unit_inds for f in facets.indications)
        return ("match" if ok else "mismatch"), label
    chunk_inds = st.chunk.metadata.get("indications", ())
    if not chunk_inds:
        return "neutral", label
    ok = any(vocab.indication_matches(c, f) for c in chunk_inds for f in facets.indications)
    # A sentence naming no indication in a document about the asked one is about it.
    return ("match" if ok else "weak"), label


def _frequency_heading(st: Statement) -> bool:
    """Is the statement under a frequency heading below the document title ("TPMT, secondary
    summary: roughly 0.3% homozygous deficient" sits under "Population frequencies")?"""
    path = tuple(st.chunk.metadata.get("section_path") or st.chunk.section.split(" > "))
    return any(_FREQUENCY_HEADING_RE.search(h) for h in path[1:])


@dataclass(frozen=True)
class _Features:
    """What ranking reads of one statement for one asked drug and indication: a function of the
    sentence, its document and those facets, not of the question's own words."""

    relevant: bool  # about the asked drug (``_about_drug``)
    mentions: bool  # names it
    fit: str  # ``_indication_fit``
    label: str
    other_dose: bool  # its first dose is another drug's
    leads: bool  # the asked drug is the dosed drug
    per_kg: bool  # a weight-based dose
    first_role: Role | None  # the guard's role of its first figure
    kinds: int  # how many roles its figures have
    words: frozenset[str]
    superseded: bool


_NOT_ABOUT = _Features(False, False, "", "", False, False, False, None, 0, frozenset(), False)
# Features by (asked drugs, indications, broad), then by unit identity, for one vocabulary: a new
# question about a drug asked before retrieves mostly the same sentences, each read once per
# drug, not once per question (reading them was half of ranking). The vocabulary and its dict
# are one value: a thread that meets another generation's vocabulary swaps in a new pair, and
# never writes one vocabulary's features into the other's dict.
_FEATURES: tuple[Any, dict[tuple[Any, ...], dict[tuple[Any, ...], _Features]]] = (None, {})
_FEATURE_CONTEXTS = 256
_FEATURES_PER_CONTEXT = 20000


def _features_for(facets: QueryFacets, vocab: Vocabulary) -> dict[tuple[Any, ...], _Features]:
    global _FEATURES
    held, contexts = _FEATURES
    if held is not vocab:  # another generation's vocabulary: its own drugs and names
        contexts = {}
        _FEATURES = (vocab, contexts)
    context = (facets.drugs, facets.indications, facets.broad_indication)
    cache = contexts.get(context)
    if cache is None:
        if len(contexts) >= _FEATURE_CONTEXTS:  # any drug may be asked: stay bounded
            contexts.clear()
        cache = contexts[context] = {}
    elif len(cache) >= _FEATURES_PER_CONTEXT:
        cache.clear()
    return cache


def _features(
    st: Statement,
    facets: QueryFacets,
    vocab: Vocabulary,
    aliases: Sequence[str],
    cache: dict[tuple[Any, ...], _Features],
) -> _Features:
    # The unit's identity (its chunk, as ``_units`` remembers it, and its place there) is all
    # the features read besides the facets; a statement made by hand has none and is read now.
    shared = st.__dict__.get("_shared")
    key = shared.get("_identity") if shared is not None else None
    got = cache.get(key) if key is not None else None
    if got is not None:
        return got
    drug = facets.drug or ""
    relevant, mentions = _about_drug(st, drug, vocab, aliases)
    if drug and not relevant:
        got = _NOT_ABOUT
    else:
        fit, label = _indication_fit(st, facets, vocab)
        doses = st.doses
        roles = st.roles()
        got = _Features(
            relevant=relevant,
            mentions=mentions,
            fit=fit,
            label=label,
            other_dose=bool(
                drug
                and doses
                and _other_drug_dose(st.text, facets, vocab)
                and not _subject_is(st.text, aliases)
            ),
            leads=bool(mentions and doses and _leads(st.text, aliases, vocab, drug)),
            per_kg=any(_PER_KG_RE.search(d) for d in doses),
            first_role=roles[0] if roles else None,
            kinds=len(set(roles)),
            words=_word_set(st.text),
            superseded=bool(_SUPERSEDED_RE.search(st.text)),
        )
    if key is not None:
        cache[key] = got
    return got


def rank(
    statements: Iterable[Statement],
    facets: QueryFacets,
    vocab: Vocabulary,
    question: str = "",
    weights: Weights = WEIGHTS,
) -> list[_Scored]:
    """Every statement about the question's drug (and not for another indication), scored for
    the question; each score keeps its reasons. Best first."""
    question_tokens = set(normalise(question)) - {
        "the",
        "of",
        "for",
        "in",
        "a",
        "and",
        "is",
        "what",
    }
    drug = facets.drug or ""
    aliases = vocab.aliases_of(drug) if drug else ()
    asked = clinical().layout(facets.intent).direct
    dose_intent = facets.intent in _DOSE_INTENTS
    distinctive = _distinctive(question_tokens, facets, vocab)
    asks_frequency = bool(question and _FREQUENCY_Q_RE.search(question))
    asks_maximum = bool(question and _MAXIMUM_Q_RE.search(question))
    concepts = len(facets.indications) + (1 if facets.broad_indication else 0)
    # "ACR 2024 oral prednisone dose", "dose on day one per SmPC": the source the question names.
    asked_sources = [rx for rx in clinical().source_patterns if rx.search(question)]
    w = weights
    fits = {"match": w.indication_match, "neutral": w.indication_neutral, "weak": w.indication_weak}
    cache = _features_for(facets, vocab)
    scored: list[_Scored] = []
    for st in statements:
        f = _features(st, facets, vocab, aliases, cache)
        if drug and not f.relevant:
            continue
        if f.fit == "mismatch":
            continue
        s = _Scored(st, 0.0, f.fit, f.label)
        s.add(w.retrieval, f"retrieval rank {st.rank + 1}", 1.0 / (1 + st.rank))
        if f.mentions:
            s.add(w.names_drug, f"names {drug}")
        s.add(fits.get(f.fit, 0.0), f"indication {f.fit}")
        if st.section in asked:
            s.add(w.asked_section, f"{st.section}: the section asked")
        doses = st.doses
        s.other_dose = f.other_dose
        if f.leads:
            s.add(w.drug_leads_dose, f"{drug} is the dosed drug")
        if dose_intent and doses and st.section in asked:
            if s.other_dose:
                s.add(w.companion_dose, "another drug's dose")
            else:
                s.add(w.dose_in_asked_section, "a dose where a dose was asked")
                s.add(w.per_dose, "dose figures", min(len(doses), 3))
                if f.per_kg:
                    s.add(w.per_kg, "a weight-based dose")
        first = f.first_role
        if dose_intent and first is not None:
            if first.is_dose and not s.other_dose:
                s.add(w.dose_role, f"a {first.value} dose")
            elif first is Role.MAXIMUM and not asks_maximum:
                s.add(w.maximum_unasked, "a ceiling, not asked for")
            elif first is Role.OUTCOME:
                s.add(w.outcome_figure, "an outcome figure, not a dose")
            if f.kinds >= 3:
                s.add(w.mixed_roles, f"{f.kinds} kinds of figure: a comparison")
        words = f.words
        shared = len(words & question_tokens)
        s.add(w.question_word, "words of the question", shared)
        if asks_frequency and (
            _FREQUENCY_ST_RE.search(f"{st.group} {st.text}") or _frequency_heading(st)
        ):
            s.add(w.frequency_answer, "a frequency, as asked")
        hits = len(words & distinctive)
        s.strong = hits >= max(2, (len(distinctive) + 1) // 2)
        if concepts >= 2:
            # "1–2 mg/kg/day for both autoimmune disease and transplantation" answers a
            # question naming both better than either alone.
            hit = len(vocab.mentions(st.text, "indication") & set(facets.indications))
            hit += 1 if facets.broad_indication and "autoimmune" in words else 0
            if hit >= concepts:
                s.add(w.spans_indications, "covers every indication asked")
        for population in facets.populations:
            if (
                vocab.mentions(st.text, "population") & {population}
                or population.split()[0] in words
            ):
                s.add(w.population, f"about {population}")
        for gene, phenotype in facets.phenotypes:
            if gene in words:
                s.add(w.gene, f"names {gene.upper()}")
            if phenotype in words or (phenotype == "poor" and "absent" in words):
                s.add(w.phenotype, f"names the {phenotype} phenotype")
        for other in facets.drugs[1:]:
            if other in words:
                s.add(w.other_drug_asked, f"names {other}")
        if f.superseded:
            s.add(w.superseded, "marked superseded by its source")
        if any(rx.search(st.text) for rx in asked_sources):
            s.add(w.asked_source, "attributed to the source the question names")
        scored.append(s)
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


# Words every dosing question and statement shares: they say nothing about which one it wants.
_COMMON_WORDS = frozenset(
    """dose doses dosing dosed dosage mg day daily how much many when which who should does do
    on to at by with an be are can it its this that patient patients usual recommended treat
    treating treatment usage use used per""".split()
)
# Abbreviations clinicians type for what statements spell out.
_QUESTION_EXPANSIONS = {
    "lft": ("liver",),
    "lfts": ("liver",),
    "cbc": ("blood", "counts"),
    "fbc": ("blood", "counts"),
    "tgn": ("6-tgn",),
    "mmp": ("6-mmp",),
}


def _distinctive(
    question_tokens: set[str], facets: QueryFacets, vocab: Vocabulary
) -> frozenset[str]:
    # Drug, indication and population words are matched by the facets already.
    names = {t for d in facets.drugs for a in vocab.aliases_of(d) for t in normalise(a)}
    for ind in facets.indications:
        names.update(t for a in (ind, *INDICATION_ALIASES.get(ind, ())) for t in normalise(a))
    for pop in facets.populations:
        names.update(t for a in (pop, *POPULATION_ALIASES.get(pop, ())) for t in normalise(a))
    out = {t for t in question_tokens if t not in _COMMON_WORDS and t not in names and len(t) > 1}
    for t in list(out):
        out.update(_QUESTION_EXPANSIONS.get(t, ()))
    return frozenset(out)


def _other_drug_dose(text: str, facets: QueryFacets, vocab: Vocabulary) -> bool:
    """Is the statement's first dose attached to a drug the question does not ask about?"""
    named = _first_dose_drug(text, tuple(vocab.drugs))
    if named is None:
        return False
    # An ingredient of an asked combination is the asked product's ("placebrinol 8 to 32 mg" of
    # placebrinol/naloxone).
    return not any(
        named == d or named in vocab.aliases_of(d) or named in _ingredients(d) for d in facets.drugs
    )


@lru_cache(maxsize=8192)
def _first_dose_drug(text: str, drugs: tuple[str, ...]) -> str | None:
    """The drug the sentence's first dose is attached to (None: no dose, or no drug): asked
    for every dosed candidate sentence of every answer, the same sentences each time."""
    first = _DOSE_RE.search(text)
    if first is None:
        return None
    return attached_drug(text, first.span(), drugs)


def _subject_is(text: str, aliases: Sequence[str]) -> bool:
    """Does the sentence's lead open with the drug ("Leucovorin for methotrexate overdose:
    10 mg/m2"): then its dose is that drug's, whatever other drug the lead names?"""
    lead = split_lead(text)[0].lower()
    return bool(lead) and any(lead.startswith(a) for a in aliases)


def _leads(text: str, aliases: Sequence[str], vocab: Vocabulary, drug: str) -> bool:
    """Is the question's drug the subject of the figures (named before the first dose, with
    no other drug before it)?"""
    head = _before_first_dose(text)
    low = head.lower()
    at = min((low.find(a) for a in aliases if low.find(a) >= 0), default=-1)
    if at < 0:
        return False
    return not (vocab.mentions(head[:at], "drug") - {drug})


@lru_cache(maxsize=8192)
def _before_first_dose(text: str) -> str:
    first = _DOSE_RE.search(text)
    return text[: first.start()] if first else text


# -- rendering --------------------------------------------------------------------------------
class _Numbering:
    """One ``[n]`` per passage (chunk), in order of first citation: several sentences and
    sources of one passage share its number."""

    def __init__(self) -> None:
        self._chunks: list[RetrievedChunk] = []
        self._index: dict[str, int] = {}
        self._sources: dict[int, list[str]] = {}
        self._sentences: dict[int, list[tuple[int, int]]] = {}

    def number(self, chunk: RetrievedChunk, source_id: str | None = None) -> int:
        if chunk.chunk_id not in self._index:
            self._chunks.append(chunk)
            self._index[chunk.chunk_id] = len(self._chunks)
        n = self._index[chunk.chunk_id]
        ids = self._sources.setdefault(n, [])
        if source_id and source_id not in ids:
            ids.append(source_id)
        return n

    def cite(self, st: Statement) -> int:
        n = 0
        for sid in st.source_ids:
            n = self.number(st.chunk, sid)
        spans = self._sentences.setdefault(n, [])
        if st.span[0] >= 0 and st.span not in spans:
            spans.append(st.span)
        return n

    def tag(self, n: int, source_ids: Iterable[str]) -> str:
        """ "guideline, trial · draft": the evidence kind of the sources a sentence cites from
        passage n, and the review status of its document."""
        chunk = self._chunks[n - 1]
        kinds = [_source_reference(chunk, sid)[1] for sid in source_ids]
        tags = list(dict.fromkeys(clinical().evidence_tag(k) for k in kinds if k))
        if not tags:
            tags = [clinical().evidence_tag("local document" if is_imported(chunk) else "other")]
        status = str(chunk.metadata.get("review_status") or "draft")
        return f"{', '.join(tags)} · {status}"

    @property
    def cited(self) -> list[CitedSource]:
        out = []
        for n, chunk in enumerate(self._chunks, start=1):
            ids = self._sources.get(n) or list(_own_source_ids(chunk)[:1])
            refs = [_source_reference(chunk, sid) for sid in ids]
            out.append(
                CitedSource(
                    n=n,
                    chunk=chunk,
                    source_id=",".join(ids),
                    reference="; ".join(dict.fromkeys(r.rstrip(". ") for r, _ in refs))
                    or chunk.title,
                    kind=", ".join(dict.fromkeys(clinical().evidence_tag(k) for _, k in refs if k)),
                    sentences=tuple(sorted(self._sentences.get(n, ()))),
                )
            )
        return out


def _source_reference(chunk: RetrievedChunk, source_id: str) -> tuple[str, str]:
    for source in chunk.metadata.get("sources", ()):
        sid = getattr(source, "id", None) if not isinstance(source, dict) else source.get("id")
        if sid == source_id:
            if isinstance(source, dict):
                return str(source.get("reference", source_id)), str(source.get("kind", ""))
            return str(source.reference), str(source.kind)
    return source_id, ""


_REPEATED_N_RE = re.compile(r"(\[(\d+)\])(?:\s*\[\2\])+")
_N_RE = re.compile(r"\[(\d+)\]")


def replace_markers(raw: str, chunk: RetrievedChunk, numbering: _Numbering) -> str:
    """``[@a; @b]`` -> ``[n]`` (the passage's one number), then its evidence tag."""

    ids: list[str] = []

    def sub(m: re.Match[str]) -> str:
        ids.extend(_marker_ids(m.group(1)))
        ns = list(dict.fromkeys(numbering.number(chunk, sid) for sid in _marker_ids(m.group(1))))
        return " " + "".join(f"[{n}]" for n in ns)

    text = MARKER_RE.sub(sub, raw).strip()
    # The last marker of the sentence carries the tag, once ("[1][1]" from two markers -> "[1]").
    text = _REPEATED_N_RE.sub(r"\1", text)
    m = list(_N_RE.finditer(text))
    if m:
        last = m[-1]
        tag = numbering.tag(int(last.group(1)), ids)
        text = f"{text[: last.end()]} [{tag}]{text[last.end() :]}"
    return text


def _patientise(text: str, audience: str) -> str:
    if audience != "patient":
        return text
    for pattern, plain in _PATIENT_TERMS:
        text = pattern.sub(plain, text)
    return text


def passages_for(cited: Sequence[CitedSource]) -> tuple[Passage, ...]:
    return tuple(c.chunk.passage(c.n) for c in cited)


@dataclass
class _Builder:
    audience: str
    numbering: _Numbering = field(default_factory=_Numbering)
    lines: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    used_statements: list[Statement] = field(default_factory=list)
    explanations: list[Explanation] = field(default_factory=list)

    def used_keys(self) -> set[str]:
        return {st.key for st in self.used_statements}

    def add(self, text: str, keys: tuple[str, ...] = ()) -> None:
        self.lines.append((text, keys))

    def statement(self, st: Statement, raw: str | None = None) -> str:
        self.numbering.cite(st)
        # A fragment (``raw``) continues a sentence the layout started: no capital for it.
        drugs = tuple(str(d) for d in st.chunk.metadata.get("drugs", ()))
        wording = _plain_wording(raw or st.raw, sentence_start=raw is None, drugs=drugs)
        text = replace_markers(wording, st.chunk, self.numbering)
        return _patientise(text, self.audience)

    def use(self, s: _Scored, place: str, why: str) -> None:
        """Record a chosen statement and why it was chosen."""
        self.used_statements.append(s.statement)
        st = s.statement
        path = " > ".join(p for p in (st.chunk.doc_id, st.chunk.section) if p)
        self.explanations.append(
            Explanation(
                place=place,
                why=why,
                text=st.text,
                source=path,
                score=round(s.score, 2),
                reasons=s.worded_reasons(),
            )  # fmt: skip
        )

    def use_statement(self, st: Statement, place: str, why: str) -> None:
        self.used_statements.append(st)
        path = " > ".join(p for p in (st.chunk.doc_id, st.chunk.section) if p)
        self.explanations.append(Explanation(place=place, why=why, text=st.text, source=path))

    def heading(self, name: str) -> None:
        headings = clinical().patient_headings if self.audience == "patient" else {}
        self.add("")
        self.add(f"### {headings.get(name, name)}")

    def build(self) -> tuple[str, tuple[tuple[int, int, tuple[str, ...]], ...]]:
        expander = Abbreviations()
        parts: list[str] = []
        spans: list[tuple[int, int, tuple[str, ...]]] = []
        pos = 0
        for text, keys in self.lines:
            if not text.startswith("###"):
                expanded = expander.expand(text)
                if expanded[:12] != text[:12]:
                    # A spelled-out abbreviation now opens the line: it still starts a sentence.
                    expanded = re.sub(
                        r"^((?:- |\*\*)?)([a-z])",
                        lambda m: m.group(1) + m.group(2).upper(),
                        expanded,
                    )
                text = expanded
            parts.append(text)
            spans.append((pos, pos + len(text) + 1, keys))
            pos += len(text) + 1
        return "\n".join(parts).strip("\n"), tuple(spans)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _doc_order(s: _Scored) -> tuple[int, int, int]:
    meta = s.statement.chunk.metadata
    return (
        int(meta.get("doc_rank", s.statement.rank)),
        int(meta.get("start", 0)),
        s.statement.order,
    )


def _disagreements(selected: list[_Scored], builder: _Builder) -> list[str]:
    """Same sub-topic, same kind of figure, different sources, different numbers."""
    notes: list[str] = []
    seen: set[tuple[str, str]] = set()
    for i, a in enumerate(selected):
        for b in selected[i + 1 :]:
            sa, sb = a.statement, b.statement
            if sa.section != "Dosing" or sb.section != "Dosing" or sa.group != sb.group:
                continue
            if set(sa.source_ids) & set(sb.source_ids):
                continue
            topic = next(
                (w for w in _TOPIC_WORDS if w in sa.text.lower() and w in sb.text.lower()), None
            )
            if topic is None:
                continue
            qa = _dose_near(sa.text, topic)
            qb = _dose_near(sb.text, topic)
            if not qa or not qb or _basis(qa) != _basis(qb) or _norm(qa) == _norm(qb):
                continue
            key = (sa.group, topic)
            if key in seen:
                continue
            seen.add(key)
            na = builder.numbering.number(sa.chunk, sa.source_ids[0])
            nb = builder.numbering.number(sb.chunk, sb.source_ids[0])
            what = f"{sa.group.lower()}" if sa.group else topic
            ta = builder.numbering.tag(na, sa.source_ids)
            tb = builder.numbering.tag(nb, sb.source_ids)
            if na != nb:
                notes.append(f"Sources differ on {what}: {qa} [{na}] [{ta}] vs {qb} [{nb}] [{tb}].")
                continue
            # Two sources of one passage share its [n] ("[1] vs [1]" said nothing): the passage
            # is cited once, each figure followed by its own evidence tag when the kinds differ.
            # (A tag, not "(secondary summary)": the guard holds a figure to a source its
            # sentence names in words, and an evidence kind is no source.)
            ka, kb = ta.rsplit(" · ", 1)[0], tb.rsplit(" · ", 1)[0]
            if ka != kb:
                notes.append(f"Sources differ on {what}: {qa} [{ta}] vs {qb} [{tb}] [{na}].")
                continue
            both = builder.numbering.tag(na, (*sa.source_ids, *sb.source_ids))
            notes.append(f"Sources differ on {what}: {qa} vs {qb} [{na}] [{both}].")
    return notes


def _dose_near(text: str, topic: str) -> str | None:
    at = text.lower().find(topic)
    best: tuple[int, str] | None = None
    for m in _DOSE_RE.finditer(text):
        distance = abs(m.start() - at)
        if best is None or distance < best[0]:
            best = (distance, m.group(0))
    return best[1] if best else None


def _basis(dose: str) -> str:
    return re.sub(r"[\d.,\s–—-]|to", "", dose.lower())


@lru_cache(maxsize=8192)
def _norm(dose: str) -> str:
    # Asked for every shown dose of every candidate line while laying out: a few hundred
    # distinct figures, so remembered.
    return re.sub(r"\s+|to", "", dose.replace("—", "-").replace("–", "-"))


# -- layout -------------------------------------------------------------------------------------
_ROLE_WORDS = re.compile(r"\b(?:maintenance|induction|initial|start\w*|maximum|ceiling|usual|"
                         r"loading|taper\w*|titrat\w*)\b", re.I)  # fmt: skip


def _lower(text: str) -> str:
    """ "Lupus nephritis maintenance" -> "lupus nephritis ..."; "TPMT ..." stays."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def _topic(s: _Scored, facets: QueryFacets, vocab: Vocabulary, lead: str) -> str:
    """What the direct sentence is about, in the words a clinician scans for: drug,
    indication (the sub-topic heading or the sentence's own lead), role, population."""
    st = s.statement
    drug = facets.drug or next(iter(st.chunk.metadata.get("drugs", ())), "")
    names_drug = bool(drug) and any(a in lead.lower() for a in vocab.aliases_of(drug))
    if lead and names_drug:
        topic = lead
    elif lead:
        topic = f"{capital(drug)}, {_lower(lead)}" if drug else lead
    elif st.group:
        topic = f"{capital(drug)}, {_lower(st.group)}" if drug else st.group
    else:
        return ""
    roles = st.roles()
    if roles and roles[0].is_dose and roles[0] is not Role.USUAL and not _ROLE_WORDS.search(topic):
        topic += f", {roles[0].value} dose"
    for population in facets.populations:
        if not vocab.mentions(f"{topic} {st.text}", "population") & {population}:
            continue
        if population.split()[0] not in topic.lower():
            topic += f" ({population})"
    return topic


def _fragment(builder: _Builder, st: Statement) -> tuple[str, str]:
    """(lead, rest) of a statement in plain wording, rest rendered with its [n] and tag."""
    drugs = tuple(str(d) for d in st.chunk.metadata.get("drugs", ()))
    lead, rest = split_lead(_plain_wording(st.raw, drugs=drugs))
    return lead, builder.statement(st, rest if lead else None)


# -- the question's scope ---------------------------------------------------------------------
# The populations a line is for, beside those its words name: its dose statements' typed
# population and conditions (a kidney-function rule is for renal impairment).
_TYPED_POPULATIONS = frozenset({"pediatric", "elderly"})
_CONDITION_POPULATIONS = {
    "kidney:impaired": "renal impairment",
    "liver:impaired": "hepatic impairment",
}
# A usual dose (the source gives it no narrower phase) answers a starting or maintenance
# question; a ceiling question wants the ceiling.
_USUAL_ANSWERS = frozenset({Role.INITIAL, Role.MAINTENANCE})


@dataclass(frozen=True)
class _Scope:
    """What a question narrows its answer to: the role it asks (the guard's reading of the
    question: starting, maintenance or maximum; None for none or several, "induction and
    maintenance" asks the regimen), and the populations, metaboliser phenotypes and
    indication it names. A question naming a role, a population or a phenotype is *narrow*:
    its answer uses the layout's ``scoped`` row and shows only lines of that role, population,
    phenotype and indication."""

    role: Role | None = None
    populations: frozenset[str] = frozenset()
    indications: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()
    phenotypes: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()

    @property
    def narrow(self) -> bool:
        return self.role is not None or bool(self.populations or self.phenotypes or self.sources)


def _scope(question: str, facets: QueryFacets) -> _Scope:
    dose = facets.intent in _DOSE_INTENTS
    asked = asked_scope(question) if dose else None
    role = asked.role if asked is not None else None
    # The indication decides a regimen; a phenotype's rule holds whatever the indication (the
    # sentence says "with malignancy", its document lists autoimmune uses).
    indications = facets.indications if dose and not facets.broad_indication else ()
    phenotypes = frozenset(p for _, p in facets.phenotypes if p != "normal")
    sources = frozenset(asked.sources) if asked is not None else frozenset()
    return _Scope(role, frozenset(facets.populations), tuple(indications), facets.drugs,
                  phenotypes, sources)  # fmt: skip


def _populations(st: Statement, vocab: Vocabulary) -> set[str]:
    found = set(vocab.mentions(f"{st.group} {st.text}", "population"))
    for d in st.typed():
        if d.population in _TYPED_POPULATIONS:
            found.add(d.population)
        found.update(_CONDITION_POPULATIONS[c] for c in d.conditions if c in _CONDITION_POPULATIONS)
    return found


def _in_scope(s: _Scored, scope: _Scope, vocab: Vocabulary) -> bool:
    """Is the line about what a narrow question asks: a dose of an asked drug (its dose
    statements' dosed drug; a figure naming none is the asked drug's), the asked indication
    (when one is named), the asked population (no particular population when none is), a
    figure of the asked role (its dose statements' roles)?"""
    if scope.indications and s.indication_fit not in ("match", "neutral"):
        return False  # (a line naming no indication in a general document is for any)
    typed = s.statement.typed()
    if typed and all(
        d.drugs and not any(same_drug(d.drugs[0], x) for x in scope.drugs) for d in typed
    ):
        return False  # another drug's dose (prednisone monotherapy under an azathioprine question)
    populations = _populations(s.statement, vocab)
    if populations.isdisjoint(scope.populations) if scope.populations else populations:
        return False
    if scope.phenotypes:
        named = phenotype_values(f"{s.statement.group} {s.statement.text}")
        typed_ph = {c.split(":", 1)[1] for d in typed for c in d.conditions
                    if c.startswith(("tpmt:", "nudt15:"))}  # fmt: skip
        if scope.phenotypes.isdisjoint(named | typed_ph):
            return False  # another phenotype's rule (or none): not what was asked
    if (
        scope.sources
        and typed
        and scope.sources.isdisjoint(statement_sources(typed[0], s.statement.text))
    ):
        return False  # another source's figure: the question asks what its source says
    if scope.role is None:
        return True
    roles = {r for d in typed for r in (d.role, *d.also)}
    if scope.role in roles or (scope.role in _USUAL_ANSWERS and Role.USUAL in roles):
        return True
    # Its words name the asked phase as the question does ("up to 5 mg/kg/day on the first
    # day" is a ceiling of the first day's dose): the guard's reading of phase words, for both.
    return bool(roles) and asked_scope(s.statement.text).role is scope.role


def _direct(
    ranked: list[_Scored],
    facets: QueryFacets,
    layout: Any,
    w: Weights,
    fits: Callable[[_Scored], bool] | None = None,
) -> _Scored | None:
    """The one statement that answers the question: from the layout's direct sections, for the
    asked indication when one is named (every asked indication at once when several are), the
    drug's own dose for a dose question, of the asked role and population for a narrow one;
    then the best score with a little for each figure."""
    pool = [s for s in ranked if s.statement.section in layout.direct]
    if fits is not None:
        # First what a narrow question asks (a kidney rule may give no mg figure: "half the
        # dose at 30-59 mL/min").
        pool = [s for s in pool if fits(s)] or pool
    if facets.intent in _DOSE_INTENTS:
        pool = [s for s in pool if s.statement.doses and not s.other_dose] or pool
    if facets.indications and not facets.broad_indication:
        pool = [s for s in pool if s.indication_fit == "match"] or pool
    if not pool:
        return ranked[0] if ranked else None

    def value(s: _Scored) -> float:
        return s.score + w.direct_per_dose * min(len(s.statement.doses), 3)

    top = max(value(s) for s in pool)
    # Near-equals: the one its document states first (authors put the main use first).
    return min((s for s in pool if value(s) >= top - w.direct_tie), key=_doc_order)


def _direct_line(
    builder: _Builder,
    best: _Scored,
    ranked: list[_Scored],
    facets: QueryFacets,
    vocab: Vocabulary,
    layout: Any,
) -> None:
    lead, rest = _fragment(builder, best.statement)
    topic = _topic(best, facets, vocab, lead)
    drug = facets.drug or ""
    if topic:
        text = f"{topic}: {rest}"
    elif drug and not any(a in rest.lower() for a in vocab.aliases_of(drug)):
        text = f"{capital(drug)}: {rest}"
    else:
        text = rest
    keys = [best.statement.key]
    builder.use(
        best,
        "direct answer",
        "the best-ranked statement of the asked section"
        + (" for the asked indication" if best.indication_fit == "match" else ""),
    )
    duration = _duration_for(best, ranked, facets, vocab) if layout.duration else None
    if duration is not None:
        d_lead, d_rest = _fragment(builder, duration.statement)
        if d_lead:
            text = f"{text.rstrip('.')}; duration: {d_rest[:1].lower()}{d_rest[1:]}"
        else:
            text = f"{text.rstrip('.')}; {d_rest[:1].lower()}{d_rest[1:]}"
        keys.append(duration.statement.key)
        builder.use(duration, "direct answer", "the duration for the same indication")
    builder.add(f"**{_sentence(text)}**", tuple(keys))


def _duration_for(
    best: _Scored, ranked: list[_Scored], facets: QueryFacets, vocab: Vocabulary
) -> _Scored | None:
    """How long, for the direct sentence's indication: a Duration statement with a figure, of
    the same sub-topic or for the asked indication; shortest wording first among equals."""
    pool = [
        s for s in ranked
        if s.statement.section == "Duration" and _DURATION_RE.search(s.statement.text)
        and s.indication_fit == "match"
    ]  # fmt: skip
    if not pool or not (facets.indications and not facets.broad_indication):
        return None
    # Of the direct statement's own indication when its sources give one ("LN maintenance").
    own = vocab.mentions(f"{best.statement.group} {best.statement.text}", "indication")
    same = [
        s
        for s in pool
        if own & vocab.mentions(f"{s.statement.group} {s.statement.text}", "indication")
    ]
    return max(same or pool, key=lambda s: (s.score, -len(s.statement.text)))


def _section_lines(
    builder: _Builder,
    name: str,
    limit: int,
    ranked: list[_Scored],
    facets: QueryFacets,
    asked: bool,
    w: Weights,
    fits: Callable[[_Scored], bool] | None = None,
) -> list[_Scored]:
    """Up to ``limit`` statements of one section not shown yet: the asked indication's first,
    one per sub-topic before a second of any, fewer figures first in a section not asked; for a
    narrow question (``fits``) only the lines of its role, population and indication."""
    dose_intent = facets.intent in _DOSE_INTENTS
    # Nothing is said twice: the direct sentence is not listed again, not even in the section
    # a non-dose question asks about.
    direct: set[str] = set()  # (kept for the said-once checks below: none is exempt now)
    used = builder.used_keys() - direct
    seen_text = {st.text for st in builder.used_statements if st.key not in direct}

    def key(s: _Scored) -> float:
        if asked:
            return s.score
        doses = len(s.statement.doses)
        concrete = w.concrete_schedule if not doses and _DIGIT_RE.search(s.statement.text) else 0
        return s.score + w.neighbour_dose * doses + concrete

    pool = sorted((s for s in ranked if s.statement.section == name and s.statement.key not in used
                   and s.statement.text not in seen_text), key=key, reverse=True)  # fmt: skip
    general: list[_Scored] = []  # about the drug in general, beyond the one the cap lets in
    if fits is not None:
        pool = [s for s in pool if fits(s)]
    if asked and dose_intent and facets.indications and not facets.broad_indication:
        # The question names an indication: its own doses first, one about the drug in general
        # (never one from a document about another indication only).
        own = [s for s in pool if s.indication_fit == "match"]
        neutral = [s for s in pool if s.indication_fit == "neutral"]
        pool = own + neutral[: 1 if own else limit]
        general = neutral[1:] if own else []
    if dose_intent and name == "Dosing":
        # A dose question's dosing lines give doses; a line without one only fills a gap, after
        # the doses a label gives for no indication in particular ("30 mg/week should not
        # ordinarily be exceeded").
        pool = (
            [s for s in pool if s.statement.doses]
            + [s for s in general if s.statement.doses]
            + [s for s in pool if not s.statement.doses]
        )
    companion = None
    if dose_intent and name == "Dosing":
        # One companion drug's dose (the steroid given with it) for a named indication only.
        # (or one the question's own words ask for: "how much folic acid with methotrexate").
        focused = bool(facets.indications) and not facets.broad_indication
        companion = next((s for s in pool if s.other_dose
                          and (s.strong or (focused and s.indication_fit == "match"))), None)  # fmt: skip
        pool = [s for s in pool if not s.other_dose]
    # Said once: a line of a sub-topic whose every dose that sub-topic already shows (the same
    # fact from another source) adds nothing new.
    labels = {s.statement.key: s.label for s in ranked}
    shown_doses = {(labels.get(st.key, ""), f) for st in builder.used_statements
                   if st.key not in direct for f in st.dose_facts}  # fmt: skip

    def says_new(s: _Scored) -> bool:
        return not s.statement.doses or bool(
            {(s.label, f) for f in s.statement.dose_facts} - shown_doses
        )

    pool = [s for s in pool if says_new(s)]
    chosen: list[_Scored] = []
    # (The sub-topics shown so far: a statement's label is a function of its text and heading,
    # so its key finds it without a pass over every ranked statement per section.)
    groups: set[str] = {labels[st.key] for st in builder.used_statements if st.key in labels}
    for first_pass in (True, False):
        for s in pool:
            if len(chosen) >= limit or s in chosen or s.statement.text in seen_text:
                continue
            # A dose question's dosing lines cover its sub-topics (indications, phases) before
            # a second line of any; other sections list by rank.
            if (
                first_pass
                and dose_intent
                and name in ("Dosing", "Duration")
                and (
                    (s.label in groups and len(pool) > limit)
                    or (name == "Dosing" and not s.statement.doses)
                )
            ):
                continue
            if not says_new(s):
                continue
            shown = (*(c.statement for c in chosen), *builder.used_statements)
            if any(_same_fact(s.statement, st) for st in shown):
                # Two sources saying the same thing, or a line repeating one shown above it
                # (the bold lead's sentence in another document): once is enough.
                continue
            chosen.append(s)
            groups.add(s.label)
            seen_text.add(s.statement.text)
            shown_doses.update((s.label, f) for f in s.statement.dose_facts)
    # Beyond the limit, only a statement that answers the question's own words ("steady
    # state", "day one", "liver transplant") still earns a line, two at most.
    extra = [s for s in pool if s.strong and s not in chosen and s.statement.text not in seen_text]
    for s in extra[: w.strong_extra_lines]:
        chosen.append(s)
        seen_text.add(s.statement.text)
    if companion is not None:
        chosen.append(companion)
    return sorted(chosen, key=_doc_order)


def _own_document(chunk: RetrievedChunk, drug: str) -> bool:
    """Is the passage from a document about this drug (not an overview of many drugs)?"""
    drugs = [str(d).lower() for d in chunk.metadata.get("drugs", ())]
    if drugs and same_drug(drugs[0], drug):
        return True  # its own document, however many drugs it names beside it
    return len(drugs) <= _FEW_DRUGS and any(same_drug(d, drug) for d in drugs)


_FEW_DRUGS = 3  # a document naming more drugs is an overview (children's doses of six drugs)


def _same_words(a: str, b: str) -> bool:
    """Nearly the same sentence (most words shared): the same fact from two sources."""
    wa, wb = set(normalise(a)), set(normalise(b))
    return bool(wa and wb) and len(wa & wb) / len(wa | wb) >= _SAME_WORDS


_SAME_WORDS = 0.6  # share of words two sentences have in common to count as one fact


def _same_fact(a: Statement, b: Statement) -> bool:
    """Is ``a`` the fact ``b`` already states: nearly the same words and no dose of its own?
    A label words each indication's line alike ("Osteoarthritis: the recommended dosage is
    100 to 150 mg/day ..." and "Rheumatoid arthritis: ... 150 to 200 mg/day ..."): the doses
    tell them apart."""
    return not (a.dose_facts - b.dose_facts) and _same_words(a.text, b.text)


def _safety_lines(
    builder: _Builder, ranked: list[_Scored], drug: str, w: Weights, narrow: bool = False
) -> list[_Scored]:
    """The drug's fixed safety topics (vocabulary.toml), each by its best-ranked sentence not
    shown yet; fewer figures first (the topic matters here, not another dose), far fewer under
    a narrow question."""

    def figures(s: _Scored) -> float:
        # Under a narrow question every number counts (durations, percentages too).
        if narrow:
            return w.safety_per_figure_narrow * s.statement.figures
        return w.safety_per_figure * len(s.statement.doses)

    vocab = clinical()
    patterns = vocab.safety.get(drug, ())
    shown = [st.text for st in builder.used_statements]
    chosen: list[_Scored] = []
    for rx in patterns:
        if any(_topic_in(rx, "", t) for t in shown):
            continue  # the answer already says it
        # A dosing line is no safety line, even when it names the topic ("adjusted to blood
        # counts"): the dose sections decide which doses are shown.
        # The topic may be named by the sub-topic heading ("Vaccination") rather than the line;
        # not by the document title ("Azathioprine interactions: allopurinol, ...").
        used = builder.used_keys()
        hits = [s for s in ranked if _topic_in(rx, _headings(s.statement), s.statement.text)
                and s not in chosen
                and s.statement.section not in ("Dosing", "Duration")
                and _own_document(s.statement.chunk, drug)
                and s.statement.key not in used and not s.other_dose]  # fmt: skip
        if not hits:
            continue
        best = max(hits, key=lambda s: s.score + figures(s))
        chosen.append(best)
        shown.append(best.statement.text)
        if len(chosen) >= vocab.safety_lines:
            break
    return chosen


@lru_cache(maxsize=16384)
def _topic_in(rx: re.Pattern[str], headings: str, text: str) -> bool:
    """Does the safety topic ``rx`` appear in the sentence (or the headings above it)? Asked for
    every topic and every ranked sentence of every answer: the same few hundred, remembered."""
    return rx.search(f"{headings} {text}" if headings else text) is not None


def _headings(st: Statement) -> str:
    """The headings above a statement, without its document's title."""
    path = st.chunk.metadata.get("section_path") or st.chunk.section.split(" > ")
    return " ".join(path[1:])


def _in_use_order(builder: _Builder, ranked: list[_Scored]) -> list[_Scored]:
    """The statements shown so far, direct sentence first, as ranked entries."""
    by_key = {s.statement.key: s for s in ranked}
    return [by_key[st.key] for st in builder.used_statements if st.key in by_key]


def compose_answer(
    question: str,
    facets: QueryFacets,
    chunks: Sequence[RetrievedChunk],
    vocabulary: Vocabulary,
    *,
    audience: str = "clinician",
    patient: Any = None,
    derive: Any = None,
    exclude: frozenset[str] = frozenset(),
    notes: bool = True,
    weights: Weights = WEIGHTS,
) -> Composition | None:
    """Compose a cited answer, or None when no statement is about the question's drug.

    ``derive(passages) -> tuple[Derivation, ...]`` computes patient-specific doses (the chain
    passes ``guardrails.calculate`` bound to the patient); ``exclude`` holds statement keys the
    guard rejected on a previous pass; ``notes=False`` leaves out the lines no statement backs
    (disagreement notes, the patient's derived doses)."""
    statements = [s for s in extract_statements(chunks) if s.key not in exclude]
    ranked = rank(statements, facets, vocabulary, question, weights)
    # A question naming a role or a population gets its layout's scoped row: only what it asks.
    layout = clinical().layout(facets.intent)
    scope = _scope(question, facets)
    fits = None
    if scope.narrow and layout.scoped is not None:
        layout = layout.scoped

        def fits(s: _Scored) -> bool:
            return _in_scope(s, scope, vocabulary)

        if scope.populations:
            # The asked population's own lines may answer it ("do not exceed 1 g twice daily
            # with a GFR below 25" sits under Special populations).
            layout = replace(layout, direct=(*layout.direct, "Special populations"))

    best = _direct(ranked, facets, layout, weights, fits)
    if best is None:
        return None
    place = {id(s): n for n, s in enumerate(ranked, start=1)}  # (by identity: no field compares)
    builder = _Builder(audience)
    _direct_line(builder, best, ranked, facets, vocabulary, layout)

    lines = dict(layout.lines)
    concepts = len(facets.indications) + facets.broad_indication
    if len(builder.used_statements) > 1 and facets.intent in _DOSE_INTENTS and concepts == 1:
        # The direct sentence gives the one asked indication's duration: a Duration line would
        # say it again.
        lines.pop("Duration", None)
    if concepts >= 2:
        # A question spanning several indications gets one more line where it asks for doses.
        for name in ("Dosing", "Duration"):
            if name in lines:
                lines[name] += clinical().broad_extra
    if facets.populations and "Special populations" not in lines:
        lines["Special populations"] = clinical().population_lines
    # The sources say nothing in the sections the layout answers from (a label excerpt of the
    # drug's pharmacology only): the section the direct sentence comes from is answered as the
    # asked one would be, instead of that sentence alone.
    fallback = ""
    if not any(s.statement.section in layout.direct for s in ranked):
        fallback = best.statement.section
        lines[fallback] = max(lines.get(fallback, 0), lines.get(layout.direct[0], 0))
    # The layout's sections first; the others show only lines that answer the question's words.
    order = (
        [fallback] * bool(fallback)
        + [s for s in layout.direct if s in lines and s != fallback]
        + [s for s in SECTION_ORDER if s in lines and s not in layout.direct and s != fallback]
        + [
            s
            for s in SECTION_ORDER
            if s not in lines and s not in layout.direct and s != "Background"
        ]
    )
    if (
        facets.populations
        and "Special populations" in order
        and "Special populations" not in layout.direct
    ):
        # The population asked about comes right after the asked section.
        order.remove("Special populations")
        order.insert(min(1, len(order)), "Special populations")
    derivations: tuple[Derivation, ...] = ()
    block = -1  # where the patient block starts in builder.lines
    for name in order:
        asked = name in layout.direct or name == fallback
        # A narrow question filters the sections its layout shows; the others still show a
        # line that answers the question's own words.
        scoped = fits if (asked or name in lines) else None
        items = _section_lines(builder, name, lines.get(name, 0), ranked, facets, asked, weights,
                               scoped)  # fmt: skip
        if items:
            builder.heading(name)
        for s in items:
            builder.add(f"- {_sentence(builder.statement(s.statement))}", (s.statement.key,))
            builder.use(s, name, f"ranked {place[id(s)]} of {len(ranked)} in {name}")
        if name == "Dosing":
            shown = _in_use_order(builder, ranked)
            disagreements = _disagreements(shown, builder)[:1] if notes else []
            if disagreements and not items:
                builder.heading(name)
            for note in disagreements:
                builder.add(f"- {note}")
            start = len(builder.lines)
            derivations = _patient_block(builder, patient, derive, shown, ranked, facets)
            block = start if len(builder.lines) > start else -1
    if "Dosing" not in order and patient is not None:
        shown = _in_use_order(builder, ranked)
        start = len(builder.lines)
        derivations = _patient_block(builder, patient, derive, shown, ranked, facets)
        block = start if len(builder.lines) > start else -1

    safety = _safety_lines(builder, ranked, facets.drug or "", weights, fits is not None)
    if safety:
        builder.heading("Safety")
        for s in safety:
            builder.add(f"- {_sentence(builder.statement(s.statement))}", (s.statement.key,))
            builder.use(s, "Safety", f"a safety topic of {facets.drug} (vocabulary.toml)")

    lead = _patient_lead(builder, patient, ranked, derivations, facets)
    if lead is not None and (lead[1] or notes):
        # A lead without a source sentence (a derivation, "no rule found") goes with the other
        # extras when the guard rejects one of them: the chain then answers without them.
        # The patient in front of the clinician comes first: what changes for them, cited.
        _said_in_lead(builder, block, lead)
        builder.lines[0:0] = [lead, ("", ())]

    if audience == "patient":
        builder.add("")
        builder.add("_Do not change a dose on your own: talk to your doctor or pharmacist first._")

    body, line_keys = builder.build()
    summary = re.sub(r"\*\*", "", body.split("\n", 1)[0]).strip()
    cited = tuple(builder.numbering.cited)
    return Composition(
        body=body,
        references=render_references(cited, audience),
        summary=summary,
        cited=cited,
        statements=tuple(builder.used_statements),
        line_keys=line_keys,
        derivations=derivations,
        explanations=tuple(builder.explanations),
    )


def _said_in_lead(builder: _Builder, block: int, lead: tuple[str, tuple[str, ...]]) -> None:
    """Leave out of the patient block (from ``block`` in the builder's lines) what its bold lead
    says already: the same source sentence, the same derived dose."""
    if block < 0:
        return
    text, keys = lead
    end = next((i for i in range(block + 2, len(builder.lines))
                if builder.lines[i][0] == "" or builder.lines[i][0].startswith("###")),
               len(builder.lines))  # fmt: skip

    def repeated(line: tuple[str, tuple[str, ...]]) -> bool:
        body, line_keys = line
        if line_keys:
            return set(line_keys) <= set(keys)
        derived = body.removeprefix("- ").removesuffix(" — within the dose limits")
        return bool(derived) and derived in text

    kept = [line for line in builder.lines[block + 2 : end] if not repeated(line)]
    # The heading (a blank line and "### For this patient") goes when nothing is left under it.
    builder.lines[block:end] = builder.lines[block : block + 2] + kept if kept else []


def _patient_block(
    builder: _Builder,
    patient: Any,
    derive: Any,
    direct: list[_Scored],
    scored: list[_Scored],
    facets: QueryFacets | None = None,
) -> tuple[Derivation, ...]:
    if patient is None:
        return ()
    context: list[Statement] = []  # what the sources say for this patient's phenotype/co-meds
    for gene in ("tpmt", "nudt15"):
        phenotype = getattr(patient, gene, None)
        if not phenotype or phenotype in ("unknown", "normal"):
            continue
        hits = [
            s
            for s in scored
            if s.statement.section == "Pharmacogenomics"
            and phenotype in normalise(s.statement.text)
        ]
        context += [s.statement for s in sorted(hits, key=lambda s: s.score, reverse=True)[:2]]
    for comed in getattr(patient, "comedications", ()) or ():
        hits = [
            s
            for s in scored
            if s.statement.section == "Interactions" and comed.lower() in s.statement.text.lower()
        ]
        context += [s.statement for s in sorted(hits, key=lambda s: s.score, reverse=True)[:2]]
    # One line per fact: two passages may word it the same (or nearly: their source names).
    unique: list[Statement] = []
    for st in context:
        if not any(_same_words(st.text, u.text) for u in unique):
            unique.append(st)
    context = unique

    lines: list[tuple[str, tuple[str, ...]]] = []
    derivations: tuple[Derivation, ...] = ()
    # The drug's own doses: a companion steroid's dose is no base for this drug's.
    dose_statements = [
        s.statement for s in direct
        if s.statement.doses and s.statement.section == "Dosing" and not s.other_dose
    ]  # fmt: skip
    shown_roles = [r for st in dose_statements for r in st.roles()]
    if not dose_statements or (shown_roles and not any(r.is_dose for r in shown_roles)):
        # An interaction or pharmacogenomics question ("... with allopurinol for this patient")
        # leads with other sections, a ceiling question with the ceiling (which the calculator
        # does not multiply); the patient's dose still starts from the best dosing one.
        dosing = [
            s
            for s in scored
            if s.statement.section == "Dosing" and s.statement.doses and not s.other_dose
        ]
        fitting = [s for s in dosing if s.indication_fit == "match"] or dosing
        best = [s.statement for s in sorted(fitting, key=lambda s: (-s.score, _doc_order(s)))[:2]]
        dose_statements += [st for st in best if st not in dose_statements]
    if derive is not None and dose_statements:
        # The calculator sees the headline doses and the statements that adjust them for this
        # patient (phenotype, co-medication), each numbered as the answer cites it; the guard
        # recomputes every line shown here from the same passages and re-verifies each step.
        passages: dict[int, list[str]] = {}
        drugs: dict[int, tuple[str, ...]] = {}
        base_ns: list[int] = []
        dose_keys = {st.key for st in dose_statements}
        for st in dose_statements + context:
            n = builder.numbering.number(st.chunk, st.source_ids[0])
            if st.key in dose_keys and n not in base_ns:
                base_ns.append(n)
            sentence = _sentence(st.text)
            if sentence not in passages.setdefault(n, []):
                passages[n].append(sentence)
            drugs[n] = tuple(st.chunk.metadata.get("drugs", ()))
        found = derive(
            [Passage(n=n, text=" ".join(t), drugs=drugs[n]) for n, t in passages.items()]
        )
        derivations = _pick_derivations(found, base_ns, getattr(patient, "weight_kg", None))
        for d in derivations:
            lines.append((f"- {d.explanation} — within the dose limits", ()))
    for st in context:
        lines.append((f"- {_sentence(builder.statement(st))}", (st.key,)))
        builder.use_statement(st, "For this patient", "what the sources say for this patient")
    if lines:
        builder.heading("For this patient")
        for text, keys in lines:
            builder.add(text, keys)
    return derivations


_POOR_RE = re.compile(
    r"\b(?:poor|deficien\w*|homozygous|absent|no (?:TPMT|NUDT15) activity)\b", re.I
)
_INTERMEDIATE_WORD_RE = re.compile(r"\b(?:intermediate|heterozygous)\b", re.I)
_KIDNEY_WORDS_RE = re.compile(
    r"\b(?:renal|kidney|CrCl|creatinine clearance|e?GFR|dialysis|CKD)\b", re.I
)
_ELDERLY_RE = re.compile(r"\b(?:elderly|older (?:adults|patients|people)|geriatric)\b", re.I)
_CKD3_EGFR = 60  # mL/min/1.73 m²: below it (CKD stage 3 or worse) kidney rules lead the answer


def _best(scored: list[_Scored], keep: Any) -> Statement | None:
    hits = [s for s in scored if keep(s.statement)]
    return max(hits, key=lambda s: s.score).statement if hits else None


def _patient_lead(
    builder: _Builder,
    patient: Any,
    scored: list[_Scored],
    derivations: Sequence[Derivation],
    facets: QueryFacets,
) -> tuple[str, tuple[str, ...]] | None:
    """The first bold line for this patient, when the patient changes the action: a poor or
    intermediate TPMT/NUDT15 phenotype (for a drug the sources give phenotype rules for), a
    co-medication the sources adjust for, kidney function below 60, old age; else the dose for
    this patient's weight. Each is a cited source sentence (or the calculator's own line); a
    patient change with no source sentence says so, with no number."""
    if patient is None:
        return None

    def line(st: Statement, why: str) -> tuple[str, tuple[str, ...]]:
        builder.use_statement(st, "For this patient", "what the sources say for this patient")
        return f"**For this patient ({why}): {_sentence(builder.statement(st))}**", (st.key,)

    for gene in ("tpmt", "nudt15"):
        phenotype = getattr(patient, gene, None)
        if phenotype not in ("poor", "intermediate"):
            continue
        gene_rx = re.compile(rf"\b{gene}\b", re.I)
        if not any(gene_rx.search(s.statement.text) for s in scored):
            continue  # the sources give this drug no phenotype rule: the gene does not matter
        word = _POOR_RE if phenotype == "poor" else _INTERMEDIATE_WORD_RE
        st = _best(
            scored, lambda t, rx=gene_rx, w=word: bool(rx.search(t.text) and w.search(t.text))
        )
        label = f"{gene.upper()} {phenotype} metaboliser"
        if st is not None:
            text, keys = line(st, label)
            adjusted = [d for d in derivations if _triggers(d)]
            if phenotype == "intermediate" and adjusted:
                text = text[:-2] + f" {adjusted[0].explanation}.**"
            return text, keys
        return (f"**For this patient ({label}): the sources retrieved give no dose for this "
                "phenotype; see Pharmacogenomics below.**", ())  # fmt: skip
    for comed in getattr(patient, "comedications", ()) or ():
        st = _best(scored, lambda t, c=comed: t.section == "Interactions" and c in t.text.lower())
        if st is not None:
            return line(st, f"with {comed}")
    kidney = getattr(patient, "kidney_function", None)
    if kidney is not None and kidney < _CKD3_EGFR:
        st = _best(scored, lambda t: bool(_KIDNEY_WORDS_RE.search(t.text)))
        measure = ("eGFR {} mL/min/1.73 m²" if getattr(patient, "egfr", None) is not None
                   else "CrCl {} mL/min").format(kidney)  # fmt: skip
        if st is not None:
            return line(st, measure)
        drug = facets.drug or "this drug"
        return (f"**For this patient ({measure}): the sources retrieved give no "
                f"kidney-function rule for {drug}; check the label before dosing.**", ())  # fmt: skip
    age = getattr(patient, "age_years", None)
    if age is not None and age >= 65:
        st = _best(scored, lambda t: bool(_ELDERLY_RE.search(t.text)))
        if st is not None:
            return line(st, f"{age} years old")
    plain = [d for d in derivations if not _triggers(d)]
    weight = getattr(patient, "weight_kg", None)
    if plain and weight is not None:
        # Only the weight in the label: a co-medication's name there would read as the drug
        # the derived dose belongs to.
        return f"**For this patient ({weight} kg): {plain[0].explanation}.**", ()
    return None


_TRIGGER_RE = re.compile(r"^for ([^:]+):")


def _triggers(d: Derivation) -> tuple[str, ...]:
    return tuple(m.group(1) for step in d.steps if (m := _TRIGGER_RE.match(step)))


def _pick_derivations(
    found: Sequence[Derivation], base_ns: Sequence[int], weight: Any
) -> tuple[Derivation, ...]:
    """The patient doses worth a line: the weight-based dose of the first headline dose, and
    for the first headline dose each adjustment alone (two alternatives at most, e.g. 25 % and
    one-third to one-quarter) and all together. Only results within the dose limits."""
    usable = [d for d in found if d.passage_n in base_ns and d.within_limits and d.inputs]
    if not usable:
        return ()

    def weighted(d: Derivation) -> bool:
        return " kg = " in d.steps[0]

    def base_rank(d: Derivation) -> tuple[int, int]:
        # Per-kg bases first when the weight is known: they give the patient's own dose.
        per_kg = d.inputs[0].per_kg
        return (base_ns.index(d.passage_n), 0 if (per_kg or weight is None) else 1)

    picked: list[Derivation] = []
    plain = [d for d in usable if not _triggers(d) and weighted(d)]
    seen_results: set[str] = set()
    for d in sorted(plain, key=base_rank):
        if d.result.text not in seen_results and len(picked) < 1:
            picked.append(d)
            seen_results.add(d.result.text)
    adjusted = [d for d in usable if _triggers(d)]
    if weight is not None:
        adjusted = [d for d in adjusted if weighted(d)] or adjusted
    if adjusted:
        first = min(adjusted, key=base_rank)
        primary = (first.passage_n, first.inputs[0].text)
        per_combo: dict[tuple[str, ...], int] = {}
        for d in adjusted:
            if (d.passage_n, d.inputs[0].text) != primary or d.result.text in seen_results:
                continue
            combo = _triggers(d)
            if per_combo.get(combo, 0) >= (2 if len(combo) == 1 else 1):
                continue
            per_combo[combo] = per_combo.get(combo, 0) + 1
            picked.append(d)
            seen_results.add(d.result.text)
    return tuple(picked)


def render_references(cited: Sequence[CitedSource], audience: str = "clinician") -> str:
    """One entry per passage: "n. [evidence] title — section — reference(s)"."""
    if not cited:
        return ""
    heading = "**Sources**" if audience != "patient" else "**Where this comes from**"
    lines = [heading]
    for c in cited:
        path = tuple(c.chunk.metadata.get("section_path") or c.chunk.section.split(" > "))
        section = " > ".join(p for p in path if p != c.chunk.title) or c.chunk.section
        tag = f"[{c.kind}] " if c.kind else ""
        lines.append(f"{c.n}. {tag}{c.chunk.title} — {section} — {c.reference}")
    return "\n".join(lines)


def suggest_followups(
    vocabulary: Vocabulary, drug: str | None, intent: str, limit: int = 3
) -> tuple[str, ...]:
    """Questions the corpus can answer for this drug, skipping the one just asked."""
    if not drug:
        return ()
    words = clinical()
    available = vocabulary.sections_by_drug.get(drug, frozenset())
    current = words.layout(intent).direct[0] if intent in words.layouts else "Dosing"
    templates = dict(words.followups)
    if not (drug in THIOPURINES or drug == "thioguanine"):
        templates["Pharmacogenomics"] = words.genetics_followup
    out = [
        templates[name].format(drug=drug)
        for name in words.followup_order
        if name in available and name != current and name in templates
    ]
    return tuple(out[:limit])
