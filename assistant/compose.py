"""The default, deterministic answer composer (no LLM).

It picks cited sentences and bullets out of the retrieved chunks, never writes a number of its
own: every figure in the answer is copied verbatim from a passage, next to the ``[n]`` marker of
the passage it came from, so the dose guard can verify it. Light templating ("For lupus nephritis
maintenance: ...") only adds words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from assistant.model import RetrievedChunk
from assistant.vocabulary import (
    INDICATION_ALIASES,
    POPULATION_ALIASES,
    SECTION_ORDER,
    THIOPURINES,
    QueryFacets,
    Vocabulary,
    answer_section,
    normalise,
)
from guardrails.drugs import attached_drug
from guardrails.model import Derivation, Passage

__all__ = [
    "CitedSource",
    "Composition",
    "Statement",
    "compose_answer",
    "extract_statements",
    "is_label",
    "render_references",
    "replace_markers",
    "strip_markers",
    "suggest_followups",
]

MARKER_RE = re.compile(r"\s*\[@([^\]]+)\]")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
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
_TOPIC_WORDS = ("maintenance", "initial", "starting", "start", "ceiling", "maximum", "induction")

# Which answer sections an intent reads first.
_PRIMARY: dict[str, tuple[str, ...]] = {
    "dose": ("Dosing", "Duration"),
    "general": ("Dosing", "Duration"),
    "monitoring": ("Monitoring",),
    "duration": ("Duration",),
    "interaction": ("Interactions",),
    "pharmacogenomics": ("Pharmacogenomics",),
    "adverse": ("Adverse effects", "Contraindications"),
    "contraindication": ("Contraindications",),
    "pregnancy": ("Special populations",),
}
_DOSE_NEIGHBOURS = frozenset({"Pharmacogenomics", "Monitoring", "Interactions"})
_CLINICIAN_HEADINGS = {name: name for name in SECTION_ORDER}
_PATIENT_HEADINGS = {
    "Dosing": "How much is usually taken",
    "Duration": "How long it is taken",
    "Pharmacogenomics": "Genetic blood test (TPMT / NUDT15)",
    "Monitoring": "Check-ups and blood tests",
    "Interactions": "Other medicines",
    "Special populations": "Pregnancy, children and other situations",
    "Contraindications": "When it should not be used",
    "Adverse effects": "Side effects",
    "Background": "Background",
    "For this patient": "For you",
}
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

    @property
    def key(self) -> str:
        return f"{self.chunk.chunk_id}:{self.order}"

    @property
    def doses(self) -> list[str]:
        return [m.group(0) for m in _DOSE_RE.finditer(self.text)]


@dataclass(frozen=True)
class CitedSource:
    """One ``[n]``: a source id as cited by one chunk."""

    n: int
    chunk: RetrievedChunk
    source_id: str
    reference: str
    kind: str = ""


@dataclass(frozen=True)
class Composition:
    body: str  # the Markdown the guard checks: direct answer + sections
    references: str  # the numbered reference list (bibliographic, not a claim)
    summary: str
    cited: tuple[CitedSource, ...]
    statements: tuple[Statement, ...] = ()
    line_keys: tuple[tuple[int, int, tuple[str, ...]], ...] = ()  # (start, end, statement keys)
    derivations: tuple[Derivation, ...] = ()

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
def _split_units(text: str) -> tuple[str, ...]:
    units: list[str] = []
    for line in text.splitlines():
        if not line.strip() or _HEADING_RE.match(line):
            continue
        if _BULLET_RE.match(line):
            units.append(_BULLET_RE.sub("", line, count=1).strip())
            continue
        for sentence in _SENTENCE_SPLIT.split(line.strip()):
            if sentence.startswith("[@") and units:
                # A marker that trails the full stop belongs to the sentence before it.
                end = sentence.find("]") + 1
                units[-1] = f"{units[-1]} {sentence[:end]}"
                sentence = sentence[end:].strip()
            if sentence:
                units.append(sentence)
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
    for rank, chunk in enumerate(chunks):
        path = tuple(chunk.metadata.get("section_path") or chunk.section.split(" > "))
        section = answer_section(path, chunk.text)
        group = _group_heading(path)
        own = _own_source_ids(chunk) if is_label(chunk) or is_imported(chunk) else ()
        for order, unit in enumerate(_split_units(chunk.text)):
            ids: list[str] = []
            for m in MARKER_RE.finditer(unit):
                ids.extend(i for i in _marker_ids(m.group(1)) if i not in ids)
            if not ids and own and " | " not in unit:
                # (A table row without a figure is a header: alone it says nothing.)
                unit = f"{unit} [@{'; '.join(own)}]"
                ids = list(own)
            if not ids:
                continue
            out.append(
                Statement(
                    raw=unit,
                    text=strip_markers(unit),
                    source_ids=tuple(ids),
                    chunk=chunk,
                    section=section,
                    group=group,
                    rank=rank,
                    order=order,
                )
            )
    return out


def _group_heading(path: Sequence[str]) -> str:
    # The deepest heading names the sub-topic ("Lupus nephritis maintenance") unless it is
    # the section heading itself ("Dosing") or the document title.
    if len(path) >= 3:
        return path[-1]
    return ""


# -- scoring ----------------------------------------------------------------------------------
@dataclass
class _Scored:
    statement: Statement
    score: float
    indication_fit: str  # match | neutral | mismatch
    label: str = ""
    other_dose: bool = False  # its figures are another drug's dose (a companion steroid)
    strong: bool = False  # contains most of the question's distinctive words ("steady state")


def _about_drug(
    st: Statement, drug: str, vocab: Vocabulary, aliases: Sequence[str]
) -> tuple[bool, bool]:
    """(relevant, mentions): is the statement about the question's drug?"""
    chunk_drugs = [d.lower() for d in st.chunk.metadata.get("drugs", ())]
    if drug and is_imported(st.chunk) and drug not in chunk_drugs:
        # An imported document is a source only on the drugs it is about: another drug's
        # label naming this one in passing ("coadministration with metoprolol") is not.
        return False, False
    low = f" {' '.join(normalise(st.text))} "
    mentions = any(f" {' '.join(normalise(a))} " in low for a in aliases)
    if mentions:
        return True, True
    primary = bool(chunk_drugs) and chunk_drugs[0] == drug
    others = vocab.mentions(st.text, "drug") - {drug}
    if is_label(st.chunk):
        # A label lists its generic (a salt, "atorvastatin calcium") before the active moiety
        # the question names; reduced to moieties, a single-drug label is about that one drug. A
        # combination label's unnamed sentence stays its first drug's (it may be the other's).
        asked = {drug, *_label_drugs((drug,))}
        bases = _label_drugs(tuple(chunk_drugs))
        primary = primary or (bool(bases) and bases[0] in asked)
    return primary and not others, False


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
    return ("neutral" if ok else "weak"), label


def _frequency_heading(st: Statement) -> bool:
    """Is the statement under a frequency heading below the document title ("TPMT, secondary
    summary: roughly 0.3% homozygous deficient" sits under "Population frequencies")?"""
    path = tuple(st.chunk.metadata.get("section_path") or st.chunk.section.split(" > "))
    return any(_FREQUENCY_HEADING_RE.search(h) for h in path[1:])


def _score(
    statements: Iterable[Statement],
    facets: QueryFacets,
    vocab: Vocabulary,
    question_tokens: set[str],
    question: str = "",
) -> list[_Scored]:
    drug = facets.drug or ""
    aliases = vocab.aliases_of(drug) if drug else ()
    primary = _PRIMARY.get(facets.intent, ())
    distinctive = _distinctive(question_tokens, facets, vocab)
    scored: list[_Scored] = []
    asks_frequency = bool(question and _FREQUENCY_Q_RE.search(question))
    for st in statements:
        relevant, mentions = _about_drug(st, drug, vocab, aliases)
        if drug and not relevant:
            continue
        fit, label = _indication_fit(st, facets, vocab)
        if fit == "mismatch":
            continue
        score = 1.0 / (1 + st.rank)
        score += 1.0 if mentions else 0.0
        score += {"match": 2.0, "neutral": 0.5, "weak": -2.0}.get(fit, 0.0)
        if st.section in primary:
            score += 2.0
        doses = st.doses
        other_dose = bool(drug and doses and _other_drug_dose(st.text, facets, vocab))
        if mentions and doses and _leads(st.text, aliases, vocab, drug):
            score += 1.5
        if facets.intent in ("dose", "general") and doses and st.section in primary:
            if other_dose:
                # "with azathioprine, give prednisone 2.5–5 mg/day": a companion's dose, not
                # an answer to "what dose of azathioprine".
                score -= 3.0
            else:
                score += 1.5 + min(len(doses), 3) * 0.3
                if any(_PER_KG_RE.search(d) for d in doses):
                    score += 0.5
        words = set(normalise(st.text))
        score += 0.2 * len(words & question_tokens)
        if asks_frequency and (
            _FREQUENCY_ST_RE.search(f"{st.group} {st.text}") or _frequency_heading(st)
        ):
            score += 5.0
        hits = len(words & distinctive)
        strong = hits >= max(2, (len(distinctive) + 1) // 2)
        # A statement that spans every indication the question names answers it best
        # ("1–2 mg/kg/day for both autoimmune disease and transplantation").
        concepts = len(facets.indications) + (1 if facets.broad_indication else 0)
        if concepts >= 2:
            hit = len(vocab.mentions(st.text, "indication") & set(facets.indications))
            hit += 1 if facets.broad_indication and "autoimmune" in words else 0
            if hit >= concepts:
                score += 2.0
        for population in facets.populations:
            if (
                vocab.mentions(st.text, "population") & {population}
                or population.split()[0] in words
            ):
                score += 2.0
        for gene, phenotype in facets.phenotypes:
            if gene in words:
                score += 0.5
            if phenotype in words or (phenotype == "poor" and "absent" in words):
                score += 4.0
        for other in facets.drugs[1:]:
            if other in words:
                score += 2.0
        scored.append(_Scored(st, score, fit, label, other_dose, strong))
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
    first = _DOSE_RE.search(text)
    if first is None:
        return False
    named = attached_drug(text, first.span(), tuple(vocab.drugs))
    if named is None:
        return False
    return not any(named == d or named in vocab.aliases_of(d) for d in facets.drugs)


def _leads(text: str, aliases: Sequence[str], vocab: Vocabulary, drug: str) -> bool:
    """Is the question's drug the subject of the figures (named before the first dose, with
    no other drug before it)?"""
    first = _DOSE_RE.search(text)
    head = text[: first.start()] if first else text
    low = head.lower()
    at = min((low.find(a) for a in aliases if low.find(a) >= 0), default=-1)
    if at < 0:
        return False
    return not (vocab.mentions(head[:at], "drug") - {drug})


# -- rendering --------------------------------------------------------------------------------
class _Numbering:
    """Assigns ``[n]`` to (chunk, source id) pairs in order of first citation."""

    def __init__(self) -> None:
        self.cited: list[CitedSource] = []
        self._index: dict[tuple[str, str], int] = {}

    def number(self, chunk: RetrievedChunk, source_id: str) -> int:
        key = (chunk.chunk_id, source_id)
        if key not in self._index:
            ref, kind = _source_reference(chunk, source_id)
            n = len(self.cited) + 1
            self._index[key] = n
            self.cited.append(CitedSource(n, chunk, source_id, ref, kind))
        return self._index[key]


def _source_reference(chunk: RetrievedChunk, source_id: str) -> tuple[str, str]:
    for source in chunk.metadata.get("sources", ()):
        sid = getattr(source, "id", None) if not isinstance(source, dict) else source.get("id")
        if sid == source_id:
            if isinstance(source, dict):
                return str(source.get("reference", source_id)), str(source.get("kind", ""))
            return str(source.reference), str(source.kind)
    return source_id, ""


def replace_markers(raw: str, chunk: RetrievedChunk, numbering: _Numbering) -> str:
    def sub(m: re.Match[str]) -> str:
        ns = [numbering.number(chunk, sid) for sid in _marker_ids(m.group(1))]
        return " " + "".join(f"[{n}]" for n in ns)

    return MARKER_RE.sub(sub, raw).strip()


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

    def used_keys(self) -> set[str]:
        return {st.key for st in self.used_statements}

    def add(self, text: str, keys: tuple[str, ...] = ()) -> None:
        self.lines.append((text, keys))

    def statement(self, st: Statement) -> str:
        return _patientise(replace_markers(st.raw, st.chunk, self.numbering), self.audience)

    def heading(self, name: str) -> None:
        headings = _PATIENT_HEADINGS if self.audience == "patient" else _CLINICIAN_HEADINGS
        self.add("")
        self.add(f"### {headings.get(name, name)}")

    def build(self) -> tuple[str, tuple[tuple[int, int, tuple[str, ...]], ...]]:
        parts: list[str] = []
        spans: list[tuple[int, int, tuple[str, ...]]] = []
        pos = 0
        for text, keys in self.lines:
            parts.append(text)
            spans.append((pos, pos + len(text) + 1, keys))
            pos += len(text) + 1
        return "\n".join(parts).strip("\n"), tuple(spans)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def _label_prefix(label: str, text: str) -> str:
    if not label or ":" in text[:90]:
        return ""
    words = set(normalise(text))
    if set(normalise(label)) <= words:
        return ""
    return f"For {label[0].lower()}{label[1:]}: "


def _doc_order(s: _Scored) -> tuple[int, int, int]:
    meta = s.statement.chunk.metadata
    return (
        int(meta.get("doc_rank", s.statement.rank)),
        int(meta.get("start", 0)),
        s.statement.order,
    )


def _direct_statements(scored: list[_Scored], facets: QueryFacets) -> list[_Scored]:
    """The best statement of each sub-topic of the intent's sections (three dosing sub-topics
    and one duration statement at most for a dose question)."""
    primary = _PRIMARY.get(facets.intent, ("Dosing",))
    dose_intent = facets.intent in ("dose", "general")
    chosen: list[_Scored] = []
    for section in primary:
        pool = [s for s in scored if s.statement.section == section]
        if dose_intent and section == "Dosing":
            pool = [s for s in pool if s.statement.doses and not s.other_dose] or pool
        if facets.indications and not facets.broad_indication:
            # The question names an indication: statements made for it lead; doses from a
            # document about another indication must not stand in the direct answer beside them.
            pool = [s for s in pool if s.indication_fit == "match"] or pool
        by_group: dict[str, list[_Scored]] = {}
        for s in pool:
            by_group.setdefault(s.label, []).append(s)
        best = [
            max(group, key=lambda s: s.score + 0.4 * len(s.statement.doses))
            for group in by_group.values()
        ]
        best.sort(key=lambda s: s.score, reverse=True)
        if dose_intent:
            chosen += best[: 3 if section == "Dosing" else 1]
        else:
            chosen += best[: 2 - len(chosen)] if len(chosen) < 2 else []
    chosen.sort(key=lambda s: (SECTION_ORDER.index(s.statement.section), *_doc_order(s)))
    return chosen


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
            notes.append(f"Sources differ on {what}: {qa} [{na}] vs {qb} [{nb}].")
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


def _norm(dose: str) -> str:
    return re.sub(r"\s+|to", "", dose.replace("—", "-").replace("–", "-"))


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
    max_per_section: int = 2,
    max_primary: int = 4,
) -> Composition | None:
    """Compose a cited answer, or None when no statement is about the question's drug.

    ``derive(passages) -> tuple[Derivation, ...]`` computes patient-specific doses (the chain
    passes ``guardrails.calculate`` bound to the patient); ``exclude`` holds statement keys the
    guard rejected on a previous pass."""
    statements = [s for s in extract_statements(chunks) if s.key not in exclude]
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
    scored = _score(statements, facets, vocabulary, question_tokens, question)
    if not scored:
        return None
    builder = _Builder(audience)
    # 1. Direct answer, in bold, from the best statement of each sub-topic.
    direct = _direct_statements(scored, facets)
    if not direct:
        direct = sorted(scored, key=lambda s: s.score, reverse=True)[:2]
    pieces = []
    for s in direct:
        rendered = builder.statement(s.statement)
        # Only a sub-topic heading earns a "For ...:" lead-in; inferred indications read oddly.
        pieces.append(_label_prefix(s.statement.group, rendered) + _sentence(rendered))
    builder.add(f"**{' '.join(pieces)}**", tuple(s.statement.key for s in direct))
    builder.used_statements.extend(s.statement for s in direct)

    if facets.intent in ("dose", "general"):
        testing = [
            s
            for s in scored
            if s.statement.section == "Pharmacogenomics"
            and re.search(r"\btest|genotyp|phenotyp", s.statement.text, re.I)
        ]
        if testing:
            t = max(testing, key=lambda s: s.score)
            builder.add("")
            builder.add(_sentence(builder.statement(t.statement)), (t.statement.key,))
            builder.used_statements.append(t.statement)

    # 2. Sections: the intent's own sections first, then the others that apply.
    primary = _PRIMARY.get(facets.intent, ())
    by_section: dict[str, list[_Scored]] = {}
    for s in scored:
        by_section.setdefault(s.statement.section, []).append(s)
    order = [s for s in primary if s in by_section] + [
        s for s in SECTION_ORDER if s in by_section and s not in primary
    ]
    if (
        facets.populations
        and "Special populations" in order
        and "Special populations" not in primary
    ):
        order.remove("Special populations")
        order.insert(min(1, len(order)), "Special populations")
    shown: list[_Scored] = []
    derivations: tuple[Derivation, ...] = ()
    dose_intent = facets.intent in ("dose", "general")
    focused = bool(facets.indications) and not facets.broad_indication
    for name in order:
        if name == "Background" and len(order) > 1:
            continue
        secondary = False
        if name in primary:
            # The direct answer already gave a dose question its duration.
            # (one more line for a question spanning several indications).
            if dose_intent:
                limit = (1 if focused else 3) if name == "Duration" else max_primary
            else:
                limit = max_primary + 2  # a narrower question: its own section in full
        elif name == "Special populations" and facets.populations:
            limit = max_per_section
        elif dose_intent:
            # A dose question gets one line of the topics that change a dose (genotype,
            # monitoring, interactions), not a tour of every section; other sections appear
            # only for a statement that answers the question's own words.
            limit = 1 if name in _DOSE_NEIGHBOURS else 0
            secondary = True
        else:
            limit = max_per_section

        def rank_key(s: _Scored, secondary: bool = secondary) -> float:
            # A neighbouring topic's figures are not what was asked: fewer of them is better.
            if not secondary:
                return s.score
            # A neighbouring topic's doses are not what was asked; a concrete schedule
            # ("weekly for the first 8 weeks") beats a vague line.
            doses = len(s.statement.doses)
            concrete = 0.25 if not doses and _DIGIT_RE.search(s.statement.text) else 0.0
            return s.score - 1.5 * doses + concrete

        # Said once: the direct answer and the patient block are not repeated below, except
        # in the section a non-dose question asks about, which lists its statements in full.
        repeat = not dose_intent and bool(primary) and name == primary[0]
        used = set() if repeat else builder.used_keys()
        seen_text = set() if repeat else {st.text for st in builder.used_statements}
        ranked = [
            s
            for s in sorted(by_section[name], key=rank_key, reverse=True)
            if s.statement.key not in used
        ]
        if focused and name in primary:
            # The question names an indication: its own statements first, at most two about
            # the drug in general (no indication of their own).
            own = [s for s in ranked if s.indication_fit == "match"]
            general = [s for s in ranked if s.indication_fit != "match"][: 2 if own else limit]
            ranked = sorted(own + general, key=lambda s: s.score, reverse=True)
        companion: _Scored | None = None
        if dose_intent and name == "Dosing":
            # One companion drug's dose (the steroid given alongside), after the drug's own.
            companion = next((s for s in ranked if s.other_dose), None)
            ranked = [s for s in ranked if not s.other_dose]
        items: list[_Scored] = []
        extra = 0
        direct_keys = {d.statement.key for d in direct} if repeat else set()
        for s in ranked:
            if s.statement.text in seen_text:
                continue
            # A statement repeated from the direct answer does not use up the section's lines.
            if sum(1 for i in items if i.statement.key not in direct_keys) >= limit:
                # Beyond the limit, only a statement that answers the question's own words
                # ("steady state", "before conception") still earns a line.
                if extra >= 2 or not s.strong:
                    continue
                extra += 1
            seen_text.add(s.statement.text)
            items.append(s)
        if companion is not None and companion.statement.text not in seen_text:
            items.append(companion)
        items.sort(key=_doc_order)
        if items:
            builder.heading(name)
        for s in items:
            builder.add(f"- {_sentence(builder.statement(s.statement))}", (s.statement.key,))
            builder.used_statements.append(s.statement)
            shown.append(s)
        if name == "Dosing":
            compared = [s for s in direct if s.statement.section == "Dosing"] + items
            disagreements = _disagreements(compared, builder) if notes else []
            if disagreements and not items:
                builder.heading(name)
            for note in disagreements:
                builder.add(f"- {note}")
            derivations = _patient_block(builder, patient, derive, direct + items, scored, facets)

    if not any(name == "Dosing" for name in order) and patient is not None:
        derivations = _patient_block(builder, patient, derive, direct, scored, facets)

    lead = _patient_lead(builder, patient, scored, derivations, facets)
    if lead is not None and (lead[1] or notes):
        # A lead without a source sentence (a derivation, "no rule found") goes with the other
        # extras when the guard rejects one of them: the chain then answers without them.
        # The patient in front of the clinician comes first: what changes for them, cited.
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
        statements=tuple(s.statement for s in shown),
        line_keys=line_keys,
        derivations=derivations,
    )


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
    context = list({st.key: st for st in context}.values())

    lines: list[tuple[str, tuple[str, ...]]] = []
    derivations: tuple[Derivation, ...] = ()
    dose_statements = [
        s.statement for s in direct if s.statement.doses and s.statement.section == "Dosing"
    ]
    if not dose_statements:
        # An interaction or pharmacogenomics question ("... with allopurinol for this patient")
        # leads with other sections; the patient's dose still starts from the best dosing one.
        dosing = [s for s in scored if s.statement.section == "Dosing" and s.statement.doses]
        fitting = [s for s in dosing if s.indication_fit == "match"] or dosing
        dose_statements = [
            s.statement for s in sorted(fitting, key=lambda s: (-s.score, _doc_order(s)))[:2]
        ]
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
        builder.used_statements.append(st)
    if lines:
        builder.heading("For this patient")
        for text, keys in lines:
            builder.add(text, keys)
    return derivations


_POOR_RE = re.compile(r"\b(?:poor|deficien\w*|homozygous|absent|no (?:TPMT|NUDT15) activity)\b", re.I)
_INTERMEDIATE_WORD_RE = re.compile(r"\b(?:intermediate|heterozygous)\b", re.I)
_KIDNEY_WORDS_RE = re.compile(r"\b(?:renal|kidney|CrCl|creatinine clearance|e?GFR|dialysis|CKD)\b", re.I)
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
        builder.used_statements.append(st)
        return f"**For this patient ({why}): {_sentence(builder.statement(st))}**", (st.key,)

    for gene in ("tpmt", "nudt15"):
        phenotype = getattr(patient, gene, None)
        if phenotype not in ("poor", "intermediate"):
            continue
        gene_rx = re.compile(rf"\b{gene}\b", re.I)
        if not any(gene_rx.search(s.statement.text) for s in scored):
            continue  # the sources give this drug no phenotype rule: the gene does not matter
        word = _POOR_RE if phenotype == "poor" else _INTERMEDIATE_WORD_RE
        st = _best(scored, lambda t, rx=gene_rx, w=word: bool(rx.search(t.text) and w.search(t.text)))
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
    if not cited:
        return ""
    heading = "**Sources**" if audience != "patient" else "**Where this comes from**"
    lines = [heading]
    for c in cited:
        path = tuple(c.chunk.metadata.get("section_path") or c.chunk.section.split(" > "))
        section = " > ".join(p for p in path if p != c.chunk.title) or c.chunk.section
        lines.append(f"{c.n}. {c.chunk.title} — {section} — {c.reference}")
    return "\n".join(lines)


_FOLLOWUPS = {
    "Pharmacogenomics": "What if TPMT is intermediate?",
    "Monitoring": "What monitoring does {drug} need?",
    "Special populations": "Can {drug} be used in pregnancy?",
    "Interactions": "Which drug interactions matter for {drug}?",
    "Duration": "How long should {drug} be continued?",
    "Dosing": "What is the usual dose of {drug}?",
    "Contraindications": "When should {drug} not be used?",
    "Adverse effects": "What are the main side effects of {drug}?",
}
_GENETICS_FOLLOWUP = "Which genetic tests matter before starting {drug}?"
_INTENT_SECTION = {
    "dose": "Dosing",
    "general": "Dosing",
    "monitoring": "Monitoring",
    "duration": "Duration",
    "interaction": "Interactions",
    "pharmacogenomics": "Pharmacogenomics",
    "adverse": "Adverse effects",
    "contraindication": "Contraindications",
    "pregnancy": "Special populations",
}


def suggest_followups(
    vocabulary: Vocabulary, drug: str | None, intent: str, limit: int = 3
) -> tuple[str, ...]:
    """Questions the corpus can answer for this drug, skipping the one just asked."""
    if not drug:
        return ()
    available = vocabulary.sections_by_drug.get(drug, frozenset())
    current = _INTENT_SECTION.get(intent)
    # TPMT decides a thiopurine's dose only: another drug's genetics question is its own.
    thiopurine = drug in THIOPURINES or drug == "thioguanine"
    templates = _FOLLOWUPS if thiopurine else {**_FOLLOWUPS, "Pharmacogenomics": _GENETICS_FOLLOWUP}
    out = [
        templates[name].format(drug=drug)
        for name in (
            "Pharmacogenomics",
            "Monitoring",
            "Special populations",
            "Interactions",
            "Duration",
            "Dosing",
        )
        if name in available and name != current
    ]
    return tuple(out[:limit])
