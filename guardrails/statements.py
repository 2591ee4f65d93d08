"""Dose statements: what each number in a passage doses, read from its sentence.

``extract_statements(passage)`` turns every number of a passage into a :class:`DoseStatement`:
the drug it belongs to, its role (initial, maintenance, maximum, titration step, reduction by or
to, target, threshold, outcome...), indication, population, route, frequency, conditions
(phenotype, co-medication, kidney or liver function) and the evidence kind of the source the
sentence cites. The same reading of the answer's own sentence (``claim_context``) lets the guard
verify a number only against statements of the same drug and a compatible role, indication and
population.

How a role is read, first rule that fires:

1. The cue words between the previous number of the sentence and this one ("start at", "then",
   "increase by", "to at most", "reduce by", "reduce to"); the one nearest the number wins.
2. Cue words right after it ("3-5 mg/kg/day at first", "30 % of the usual dose", "maximum").
3. Cue words earlier in the sentence, nearest first ("Start at 1 mg/kg/day (50-100 mg)": both
   numbers are starting doses).
4. For doses only, the section heading when it names exactly one phase ("Maintenance").
5. The number's kind: a dose is ``usual``; a percentage an ``outcome figure`` in a sentence about
   results or frequencies (flares, remission, risk, patients...) or in a results section of a
   label (clinical studies, adverse reactions, pharmacology: its table cells too), else
   ``unknown``; a duration or
   frequency is a ``monitoring interval`` in a monitoring sentence, else ``duration`` or
   ``interval``; a lab value a ``target level`` when the sentence says target/therapeutic/aim,
   else a ``threshold``; anything else ``unknown``.

Edge cases: "after induction" is maintenance, not induction; "reduce by 30-50 %" and "reduce to
30-80 %" are different roles, and a percentage "of the usual dose" is a reduction *to*; a dose
"reduced by 5 mg" is a titration step. Extraction never raises on text: a sentence it cannot read
gives statements with role ``unknown``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache

from guardrails.drugs import attached_drug_in, drugs_among, mentions_in
from guardrails.lexicon import INDICATION_ALIASES
from guardrails.model import DoseStatement, Passage, Quantity, Role
from guardrails.quantities import parse_quantities
from guardrails.sentences import sentences

__all__ = [
    "AskedScope",
    "ClaimContext",
    "asked_scope",
    "conditions_hold",
    "not_renal",
    "organs_in",
    "phenotype_frequency",
    "phenotype_values",
    "phenotypes_in",
    "sentence_roles",
    "sentence_sources",
    "sources_in",
    "statement_sources",
    "text_facts",
    "TextFacts",
    "indication_mentions",
    "indications_in",
    "claim_context",
    "default_evidence",
    "extract_statements",
    "indications_compatible",
    "roles_compatible",
    "statements_of",
]

_F = re.IGNORECASE

# Cue -> role, tried on the text before a number; the match ending nearest the number wins.
_PREFIX_CUES: tuple[tuple[Role, re.Pattern[str]], ...] = (
    (
        Role.MAINTENANCE,
        re.compile(
            r"\b(?:maintenance|maintain\w*|thereafter|later|long[- ]term"
            r"|subsequently|(?:after|following|post)[- ]induction|then"
            r"|followed by)\b",
            _F,
        ),
    ),
    (
        Role.INITIAL,
        re.compile(
            r"\b(?:start\w*|initial\w*|initiat\w*|begin\w*|loading|commenc\w*"
            r"|first dose(?! reduc)|at first)\b|(?<!after )(?<!following )(?<!post-)"
            r"(?<!post )\binduction\b",
            _F,
        ),
    ),
    (
        Role.MAXIMUM,
        re.compile(
            r"\b(?:max(?:imum|imal)?|at most|up to|not (?:to )?exceed\w*"
            r"|no more than|ceiling|cap(?:ped)? at|must not exceed"
            r"|should not exceed|do not exceed|highest)\b|≤|<=",
            _F,
        ),
    ),
    (
        Role.STEP,
        re.compile(
            r"\b(?:increase[sd]?|increments?|incremental|steps?|titrat\w*|raise[sd]?"
            r"|escalat\w*|taper\w*|decrease[sd]?|reduce[sd]?|reduction|lower\w*"
            r"|cut)\b[^.;:]{0,30}?\b(?:by|of)\s*$",
            _F,
        ),
    ),
    (
        Role.REDUCTION_TO,
        re.compile(
            r"\b(?:reduc\w*|decreas\w*|lower\w*|cut\w*|adjust\w*)\b"
            r"[^.;:]{0,40}?\bto\s*$",
            _F,
        ),
    ),
)
# A percentage before these words is the share of the dose to give.
_OF_DOSE_RE = re.compile(
    r"\s*(?:of\s+(?:the\s+)?(?:patient's\s+)?(?:usual|normal|standard|full|target"
    r"|starting|recommended|original|planned|calculated)?\s*(?:dose|dosage|"
    r"normal|usual|starting)|of\s+(?:the\s+)?(?:usual|normal|standard) )",
    _F,
)
_TO_RE = re.compile(r"\bto(?:\s+(?:about|approximately|around|roughly|~))?\s*$", _F)
_REDUCTION_AFTER_RE = re.compile(r"\s*(?:dose\s+)?(?:reduction|decrease|lower dose|less)\b", _F)
_BY_BEFORE_RE = re.compile(
    r"\b(?:reduc\w*|decreas\w*|lower\w*|cut\w*)\b[^.;:]{0,40}?\bby\s*$"
    r"|\breduction of\s*$",
    _F,
)
_SUFFIX_CUES: tuple[tuple[Role, re.Pattern[str]], ...] = (
    (
        Role.INITIAL,
        re.compile(
            r"\s*(?:\([^)]*\)\s*)?(?:at first|initially|to start|to begin"
            r"|as (?:a |the )?(?:starting|initial|loading) dose|for induction"
            # "50 mg/day, the usual US starting dose"
            r"|,?\s*(?:the|a) (?:[\w-]+ ){0,2}(?:starting|initial|loading) dose)\b",
            _F,
        ),
    ),
    (
        Role.MAINTENANCE,
        re.compile(
            r"\s*(?:\([^)]*\)\s*)?(?:for maintenance|as maintenance"
            r"|thereafter|long[- ]term)\b",
            _F,
        ),
    ),
    (
        Role.MAXIMUM,
        re.compile(r"\s*(?:\([^)]*\)\s*)?(?:maximum|max\b|at most|or less\b|at the most)", _F),
    ),
)
_HEADING_CUES: tuple[tuple[Role, re.Pattern[str]], ...] = (
    (Role.MAINTENANCE, re.compile(r"\bmaintenance\b", _F)),
    (Role.INITIAL, re.compile(r"\b(?:induction|initial|starting)\b", _F)),
)
_MONITORING_RE = re.compile(
    r"\b(?:monitor\w*|check\w*|blood counts?|cbc|fbc|full blood|complete "
    r"blood|tests?|testing|measure\w*|lfts?|liver (?:function|enzymes|tests)"
    r"|laborator\w*|labs|screen\w*|surveillance|follow-up|review)\b",
    _F,
)
_OUTCOME_RE = re.compile(
    r"\b(?:flares?|remission|respon\w*|survival|relapse\w*|rates?|risk|incidence"
    r"|frequency|prevalen\w*|occur\w*|patients|population|carriers?|trial"
    r"|versus|vs|compared|achiev\w*|mortality|died|deaths?|events?|people|ancestry|admissions?)\b",
    _F,
)
# Sections whose figures are results, frequencies or kinetics, never doses (label layouts).
_RESULTS_SECTION_RE = re.compile(
    r"\b(?:clinical studies|adverse (?:reactions|events|effects)|clinical "
    r"pharmacology|pharmacokinetics|pharmacodynamics|nonclinical|"
    r"toxicology|overdosage|clinical trials? experience|results)\b",
    _F,
)
_ULN_RE = re.compile(
    r"\s*(?:[×x*]\s*(?:the\s+)?(?:ULN|upper limit)|times (?:the )?(?:ULN|upper limit))", _F
)
_COMPARISON_RE = re.compile(
    r"(?:\b(?:above|below|exceeds?|over|under|less than|greater than|more than"
    r"|at or (?:above|below)|falls? (?:below|to)|rises? (?:above|to))|[<>≤≥])\s*$",
    _F,
)
_DOSING_SECTION_RE = re.compile(r"\bdos(?:e|es|ing|age)\b", _F)


def _results_section(heading: str) -> bool:
    """A results section ("Adverse Reactions > Clinical Trials Experience"), not a dosing one
    that names them ("Dosage Modifications for Adverse Reactions")."""
    return bool(_RESULTS_SECTION_RE.search(heading)) and not _DOSING_SECTION_RE.search(heading)


_TARGET_RE = re.compile(
    r"\b(?:target\w*|therapeutic|aim\w*|goal|trough|keep\w*|titrat\w* to)\b", _F
)

_PHENOTYPE_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "intermediate",
        re.compile(
            r"\b(?:intermediate|heterozygous|reduced (?:activity|function)"
            r"|one (?:loss-of-function|non-?functional|no-function|defective) allele)\b",
            _F,
        ),
    ),
    (
        "poor",
        re.compile(
            r"\b(?:poor|homozygous|deficien\w*|absent|low activity|no activity"
            r"|complete(?:ly)? (?:deficien\w*|lack\w*)"
            r"|two (?:loss-of-function|non-?functional|no-function|defective) alleles)\b",
            _F,
        ),
    ),
    (
        "normal",
        re.compile(
            r"\b(?:normal (?:metaboli[sz]er|activity|tpmt|nudt15)|wild[- ]type"
            r"|extensive metaboli[sz]er)\b",
            _F,
        ),
    ),
)
_GENE_RE = re.compile(r"\b(TPMT|NUDT15)\b", _F)
_COMED_CUE_RE = re.compile(
    r"\b(?:with|taking|receiv\w*|co-?administ\w*|concomitant\w*|combin\w*"
    r"|together|plus|alongside|on)\b",
    _F,
)
_KIDNEY_RE = re.compile(
    r"\b(?:crcl|creatinine clearance|e?gfr|renal (?:impairment|insufficiency|"
    r"function|failure|disease)|kidney (?:function|impairment|disease|failure)"
    r"|dialysis|ckd|haemodialysis|hemodialysis)\b",
    _F,
)
_LIVER_RE = re.compile(
    r"\b(?:hepatic (?:impairment|insufficiency|disease)|liver (?:impairment|"
    r"disease|failure)|cirrhosis)\b",
    _F,
)
# A regimen for when the first one failed (the AASLD failure regimen's 150 mg/day): not the
# dose of a first course, a relapse or a maintenance. Organ failure is no treatment failure.
_FAILURE_RE = re.compile(
    r"\b(?:treatment|therapy|therapeutic|induction)\s+failure\b|\bfailure\s+regimen\b"
    r"|\bfail(?:s|ed|ing)?\s+(?:to\s+respond|(?:first[- ]line\s+)?(?:treatment|therapy))\b",
    _F,
)
# What states it for a claim: the sentence or the question says the treatment failed.
_FAILED_RE = re.compile(
    r"\bfail(?:s|ed|ing|ure)?\b(?<!renal failure)(?<!kidney failure)(?<!liver failure)"
    r"|\bnon-?respon\w*|\bnot respond\w*|\brefractory\b",
    _F,
)
_POPULATIONS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "pediatric",
        re.compile(
            r"\b(?:p(?:a)?ediatric\w*|child\w*|infant\w*|adolescent\w*|neonat\w*"
            r"|juvenile|kids?)\b",
            _F,
        ),
    ),
    (
        "elderly",
        re.compile(
            r"\b(?:elderly|older (?:adults?|patients?|people)|geriatric|aged? (?:65|70"
            r"|75)\b)",
            _F,
        ),
    ),
    ("adult", re.compile(r"\badults?\b", _F)),
)
_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("iv", re.compile(r"\b(?:intravenous\w*|infusion|i\.v\.|pulses?)\b|(?<!class )(?<!/)\bIV\b")),
    ("subcutaneous", re.compile(r"\b(?:subcutaneous\w*|s\.c\.|subcut)\b|\bSC\b", _F)),
    ("intramuscular", re.compile(r"\b(?:intramuscular\w*|i\.m\.)\b", _F)),
    ("oral", re.compile(r"\b(?:oral\w*|by mouth|tablets?|capsules?|p\.o\.)\b|\bPO\b", _F)),
)
_MARKER_RE = re.compile(r"\[@([a-z0-9-]+)")
_PER_WORDS = {"day": "daily", "week": "weekly", "month": "monthly"}
_COUNT_WORDS = {2: "twice", 3: "three times", 4: "four times"}


def _indication_re() -> tuple[re.Pattern[str], dict[str, str]]:
    table = {alias: canonical for canonical, names in INDICATION_ALIASES.items() for alias in names}
    alternation = "|".join(re.escape(a) for a in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", _F), table


_INDICATION_RE, _INDICATION_TABLE = _indication_re()
# "SLE" covers its nephritis: a lupus figure may support a lupus nephritis claim and back.
_RELATED = {frozenset({"lupus nephritis", "systemic lupus erythematosus"})}


def indication_mentions(text: str) -> Iterable[tuple[int, int]]:
    """(start, end) of each indication named in ``text`` (as :func:`indications_in` reads)."""
    for m in _INDICATION_RE.finditer(text):
        if len(m.group(0)) > 3 or m.group(0).isupper():
            yield m.span()


def indications_in(text: str) -> tuple[str, ...]:
    """Canonical indications named in ``text`` (short upper-case abbreviations only when written
    in capitals: "RA", not the "ra" of a word)."""
    out: list[str] = []
    for m in _INDICATION_RE.finditer(text):
        written = m.group(0)
        if len(written) <= 3 and not written.isupper():
            continue
        name = _INDICATION_TABLE[written.lower()]
        if name not in out:
            out.append(name)
    return tuple(out)


def indications_compatible(claim: Iterable[str], source: Iterable[str]) -> bool:
    """Is a source about an indication the claim names? Either side naming none is compatible."""
    a, b = set(claim), set(source)
    if not a or not b or a & b:
        return True
    return any(frozenset({x, y}) in _RELATED for x in a for y in b)


_LOOSE = frozenset({Role.USUAL, Role.UNKNOWN})


def roles_compatible(claim: Role, source: Role) -> bool:
    """A claim whose sentence names a role needs a source with the same role, unless either
    side names none (``usual``/``unknown``): a plain figure does not say which phase it is."""
    return claim is source or claim in _LOOSE or source in _LOOSE


def _combined(
    cues: tuple[tuple[Role, re.Pattern[str]], ...],
) -> tuple[re.Pattern[str], dict[str, Role]]:
    """One alternation of the cue patterns, a named group each: one scan of a window finds
    every cue, and the last match is the one nearest the number."""
    names = {f"c{i}": role for i, (role, _) in enumerate(cues)}
    alternation = "|".join(f"(?P<c{i}>{rx.pattern})" for i, (_, rx) in enumerate(cues))
    return re.compile(alternation, _F), names


_ALL_PREFIX = _combined(_PREFIX_CUES)
_PHASE_PREFIX = _combined(_PREFIX_CUES[:3])  # start/maintenance/maximum carry across a sentence


def _nearest(combined: tuple[re.Pattern[str], dict[str, Role]], window: str) -> Role | None:
    rx, names = combined
    last = None
    for last in rx.finditer(window):  # noqa: B007 - the last match is the nearest cue
        pass
    return names[last.lastgroup] if last is not None and last.lastgroup else None


def _role(text: str, q: Quantity, sentence: tuple[int, int], prev_end: int, heading: str) -> Role:
    start, end = q.span
    s0 = sentence[0]
    # The role depends only on these pieces of text: answers repeat source sentences, so the
    # same pieces recur and the reading is remembered.
    return _role_of(q.kind, q.qualifier, text[max(prev_end, s0):start],
                    text[end:min(sentence[1], end + 40)], start - s0,
                    text[s0:sentence[1]], heading)  # fmt: skip


@lru_cache(maxsize=16384)
def _role_of(
    kind: str, qualifier: str | None, near: str, after: str, offset: int, sentence_text: str,
    heading: str,
) -> Role:  # fmt: skip
    """The role of a number of ``kind`` with ``near`` (text since the previous number) before it,
    ``after`` after it, at ``offset`` in ``sentence_text`` under ``heading``."""
    if kind == "percent":
        if _BY_BEFORE_RE.search(near) or _REDUCTION_AFTER_RE.match(after):
            return Role.REDUCTION_BY
        if (
            _OF_DOSE_RE.match(after)
            or _TO_RE.search(near)
            and re.search(r"\b(?:reduc|decreas|lower|cut|adjust|start)", near, _F)
        ):
            return Role.REDUCTION_TO
        if _OUTCOME_RE.search(sentence_text) or _results_section(heading):
            return Role.OUTCOME
        return Role.UNKNOWN
    if kind == "dose":
        if qualifier in ("up_to", "max"):
            return Role.MAXIMUM
        role = _nearest(_ALL_PREFIX, near) if near.strip() else None
        if role is Role.REDUCTION_TO:
            role = Role.STEP if re.search(r"\bby\s*$", near) else Role.USUAL
        if role is None:
            role = next((r for r, rx in _SUFFIX_CUES if rx.match(after)), None)
        if role is None:
            role = _nearest(_PHASE_PREFIX, sentence_text[:offset])
        if role is None and heading:
            found = {r for r, rx in _HEADING_CUES if rx.search(heading)}
            role = found.pop() if len(found) == 1 else None
        return role or Role.USUAL
    if kind in ("duration", "frequency"):
        if _MONITORING_RE.search(sentence_text):
            return Role.MONITORING
        return Role.DURATION if kind == "duration" else Role.INTERVAL
    if kind == "lab":
        return Role.TARGET if _TARGET_RE.search(sentence_text) else Role.THRESHOLD
    if _ULN_RE.match(after) or (kind == "number" and _COMPARISON_RE.search(near)):
        return Role.THRESHOLD  # "ALT above 5 × ULN", "if platelets fall below 100"
    if _results_section(heading) or _OUTCOME_RE.search(sentence_text):
        return Role.OUTCOME  # a trial or adverse-reaction table cell, a frequency, a rate
    return Role.UNKNOWN


_PHASE_CUES = tuple((r, rx) for r, rx in _PREFIX_CUES if r in (Role.INITIAL, Role.MAINTENANCE))


def _own_words(text: str, q: Quantity, prev_end: int, s_end: int, before_only: bool = False) -> str:
    """The words that belong to one number: from the previous number of its sentence to the
    next comma, semicolon or number after it ("3-5 mg/kg/day at first" of "..., later 1-3").
    ``before_only``: up to the number ("start 50 mg/day and increase to maintenance" names
    maintenance as where the dose goes, not as a phase the 50 mg/day belongs to)."""
    if before_only:
        return text[prev_end : q.span[0]]
    stop = s_end
    for mark in ",;":
        at = text.find(mark, q.span[1], s_end)
        if at >= 0:
            stop = min(stop, at)
    return text[prev_end:stop]


def _phases(sentence: str, role: Role) -> tuple[Role, ...]:
    """The treatment phases (start, maintenance) a sentence names besides the number's role."""
    return tuple(r for r, rx in _PHASE_CUES if r is not role and rx.search(sentence))


def _frequency(q: Quantity) -> str | None:
    per = q.per
    if per is None or per == "dose":
        return None
    if per[:1].isdigit():
        return f"every {per}s"
    word = _PER_WORDS.get(per, f"per {per}")
    if q.per_count > 1:
        if per == "day":
            return f"{_COUNT_WORDS.get(q.per_count, f'{q.per_count} times')} daily"
        return f"{_COUNT_WORDS.get(q.per_count, f'{q.per_count} times')} {word}"
    return word


def _first(table: tuple[tuple[str, re.Pattern[str]], ...], text: str) -> str | None:
    return next((name for name, rx in table if rx.search(text)), None)


_NEXT_WORDS_RE = re.compile(r"\s*(?:\([^)]*\)\s*)?((?:[A-Za-z-]+\s+){0,2}[A-Za-z-]+)")


def _conditions(
    sentence: str, heading: str, dosed: str | None, others: Iterable[str], after: str = ""
) -> tuple[str, ...]:
    out: list[str] = []
    genes = [g.lower() for g in _GENE_RE.findall(sentence)] or [
        g.lower() for g in _GENE_RE.findall(heading)
    ]
    if genes:
        # A phenotype right after the number is its own ("0.3% homozygous deficient and 10%
        # intermediate": two phenotypes, one each); otherwise the sentence's first.
        m = _NEXT_WORDS_RE.match(after)
        near = m.group(1) if m else ""
        found = next((ph for ph, rx in _PHENOTYPE_WORDS if near and rx.search(near)), None)
        if found is None:
            found = next((ph for ph, rx in _PHENOTYPE_WORDS if rx.search(sentence)), None)
        if found is not None:
            out.extend(f"{gene}:{found}" for gene in dict.fromkeys(genes))
    if _COMED_CUE_RE.search(sentence):
        out.extend(f"comedication:{d}" for d in sorted(set(others)) if d != dosed)
    if _KIDNEY_RE.search(sentence):
        out.append("kidney:impaired")
    if _LIVER_RE.search(sentence):
        out.append("liver:impaired")
    if _FAILURE_RE.search(sentence) or _FAILURE_RE.search(heading):
        out.append("course:treatment failure")
    return tuple(dict.fromkeys(out))


def _statement_id(doc_id: str, section: str, sentence: str, q: Quantity, i: int) -> str:
    digest = hashlib.sha1(f"{doc_id}\x1f{section}\x1f{sentence}\x1f{q.text}\x1f{i}".encode())
    return f"{doc_id or 'text'}#{digest.hexdigest()[:10]}"


def extract_statements(
    text: str,
    *,
    doc_id: str = "",
    section: str = "",
    drugs: tuple[str, ...] = (),
    indications: tuple[str, ...] = (),
    evidence: Mapping[str, str] | None = None,
    default_evidence: str = "other",
) -> tuple[DoseStatement, ...]:
    """Every number of ``text`` as a typed statement (see the module docstring).

    ``drugs`` and ``indications`` are the document's (front matter, or found at import): used
    when a sentence names none. ``evidence`` maps the source ids of ``[@id]`` markers to their
    kind; a sentence without a marker gets ``default_evidence``.
    """
    extra = frozenset(d.lower() for d in drugs)
    mentions = mentions_in(text, extra)
    doc_indications = tuple(
        dict.fromkeys(
            indications_in(", ".join(indications)) or tuple(i.lower() for i in indications)
        )
    )
    heading_indications = indications_in(section)
    heading_population = _first(_POPULATIONS, section)
    quantities = parse_quantities(text)
    out: list[DoseStatement] = []
    qi = 0
    for s_start, s_end in sentences(text):
        prev_end = s_start
        sentence = text[s_start:s_end]
        named = drugs_among(mentions, s_start, s_end)
        sentence_indications = indications_in(sentence)
        population = _first(_POPULATIONS, sentence) or heading_population or "any"
        route = _first(_ROUTES, sentence) or "any"
        markers = _MARKER_RE.findall(sentence)
        citation = markers[0] if markers else ""
        kind = (evidence or {}).get(citation, default_evidence) if citation else default_evidence
        while qi < len(quantities) and quantities[qi].span[0] < s_end:
            q = quantities[qi]
            qi += 1
            if q.span[0] < s_start:
                continue
            dosed = attached_drug_in(text, mentions, q.span, lo=s_start)
            if dosed is None:
                dosed = (
                    next(iter(named)) if len(named) == 1 else (drugs[0].lower() if drugs else None)
                )
            role = _role(text, q, (s_start, s_end), prev_end, section)
            also = (
                _phases(_own_words(text, q, prev_end, s_end, before_only=True), role)
                if q.kind == "dose"
                else ()
            )
            prev_end = q.span[1]
            others = sorted(named - {dosed}) if dosed else sorted(named)
            out.append(
                DoseStatement(
                    id=_statement_id(doc_id, section, sentence, q, len(out)),
                    drugs=((dosed,) if dosed else ()) + tuple(others),
                    role=role,
                    quantity=q,
                    indications=sentence_indications or heading_indications or doc_indications,
                    population=population,
                    route=route,
                    frequency=_frequency(q),
                    conditions=_conditions(
                        sentence, section, dosed, named, text[q.span[1] : s_end]
                    ),  # fmt: skip
                    source_id=doc_id,
                    section=section,
                    span=q.span,
                    sentence=(s_start, s_end),
                    evidence=kind,
                    citation=citation,
                    also=also,
                )
            )
    return _carry_conditions(out, section, mentions_in(section, extra))


_REDUCTIONS = frozenset({Role.REDUCTION_BY, Role.REDUCTION_TO})


def _carry_conditions(
    statements: list[DoseStatement], heading: str, heading_drugs: Iterable[tuple[int, str]]
) -> tuple[DoseStatement, ...]:
    """A reduction whose sentence names no condition keeps the one its passage is about: the
    previous reduction's of the same drug ("With allopurinol, reduce to one-quarter. Others say
    25 %."), else the heading's ("Allopurinol" over a list of reductions)."""
    out: list[DoseStatement] = []
    last: dict[str | None, tuple[str, ...]] = {}
    for st in statements:
        if st.role in _REDUCTIONS:
            if st.conditions:
                last[st.drug] = st.conditions
            else:
                inherited = (
                    last.get(st.drug)
                    or _conditions(heading, heading, st.drug, [n for _, n in heading_drugs])
                    or tuple(f"comedication:{n}" for _, n in heading_drugs if n != st.drug)
                )
                if inherited:
                    st = replace(st, conditions=inherited)
        out.append(st)
    return tuple(out)


def default_evidence(doc_kind: str) -> str:
    """The evidence kind of a sentence that cites no source: a label's own, "other" for a curated
    article (its sentences cite sources), "local document" for an imported text, HTML or PDF."""
    if not doc_kind:
        return "other"
    return {"label": "label", "article": "other"}.get(doc_kind, "local document")


@lru_cache(maxsize=2048)
def statements_of(passage: Passage) -> tuple[DoseStatement, ...]:
    """The statements of a passage (cached: the guard asks for the same passages often)."""
    return extract_statements(
        passage.text,
        doc_id=passage.doc_id,
        section=passage.section,
        drugs=passage.drugs,
        indications=passage.indications,
        evidence=dict(passage.evidence),
        default_evidence=default_evidence(passage.doc_kind),
    )


_CONTRAST_RE = re.compile(
    r"[,;]\s*(?:but|whereas|while|although|though|however)\b|\b(?:but|whereas)\b", _F
)


class ClaimContext:
    """What an answer's own sentence says a number is: its role, and the indications and
    population the sentence names (empty / "any" when it names none). Each is read only when
    a check needs it: most source statements are plain doses that any reading fits."""

    __slots__ = ("_indications", "_population", "_prev_end", "_q", "_role", "_sentence", "_text")

    def __init__(self, text: str, q: Quantity, sentence: tuple[int, int], prev_end: int) -> None:
        self._text, self._q, self._sentence, self._prev_end = text, q, sentence, prev_end
        self._role: Role | None = None
        self._indications: tuple[str, ...] | None = None
        self._population: str | None = None

    @property
    def role(self) -> Role:
        if self._role is None:
            self._role = _role(self._text, self._q, self._sentence, self._prev_end, "")
        return self._role

    @property
    def indications(self) -> tuple[str, ...]:
        if self._indications is None:
            found = _sentence_indications(self._text[self._sentence[0] : self._sentence[1]])
            if len(found) > 1:
                # "In RA ..., but ... azathioprine (50–100 mg) to patients with a renal
                # transplant": a sentence that sets two indications against each other gives
                # the number the one of its own part, when that part names one.
                found = _sentence_indications(self._own_part()) or found
            self._indications = found
        return self._indications

    def _own_part(self) -> str:
        """The part of the sentence between the contrasts ("but", "whereas") around the number."""
        s0, s1 = self._sentence
        start, end = self._q.span
        lo = s0
        for m in _CONTRAST_RE.finditer(self._text, s0, start):
            lo = m.end()
        nxt = _CONTRAST_RE.search(self._text, end, s1)
        return self._text[lo : nxt.start() if nxt else s1]

    @property
    def sentence_text(self) -> str:
        return self._text[self._sentence[0] : self._sentence[1]]

    @property
    def population(self) -> str:
        if self._population is None:
            s = self._text[self._sentence[0] : self._sentence[1]]
            self._population = _first(_POPULATIONS, s) or "any"
        return self._population


@lru_cache(maxsize=4096)
def _sentence_indications(sentence: str) -> tuple[str, ...]:
    return indications_in(sentence)


def claim_context(text: str, q: Quantity, sentence: tuple[int, int], prev_end: int) -> ClaimContext:
    """The role, indications and population an answer gives the number ``q`` (read lazily)."""
    return ClaimContext(text, q, sentence, prev_end)


# --- the asked question's scope -----------------------------------------------------------------
# A figure can be true in its passage and still not answer the question: the RA starting range
# for a renal-impairment question, the lupus-nephritis induction dose for a liver transplant, a
# US-label figure for "per SmPC". The question names what it asks (indication, phase,
# population, phenotype, source); a sentence of the answer that does not name its own is about
# what was asked, and may be supported only by a statement compatible with it.

# Sources a question or sentence may name, and the citation-id tokens of each.
_SOURCE_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("smpc", re.compile(r"\bsmpc\b|summary of product characteristics|\buk label\b", _F)),
    # A label's citation id ("imuran-label", "cellcept-label") names the US label too.
    (
        "us label",
        re.compile(
            r"\bus (?:[a-z]+ )?(?:label|prescribing information)\b|\bfda\b|\b[a-z]+-label\b", _F
        ),
    ),
    ("cpic", re.compile(r"\bcpic\b", _F)),
    ("kdigo", re.compile(r"\bkdigo\b", _F)),
    ("eular", re.compile(r"\beular\b", _F)),
    ("aasld", re.compile(r"\baasld\b", _F)),
    ("easl", re.compile(r"\beasl\b", _F)),
    ("bsg", re.compile(r"\bbsg\b", _F)),
    ("bsr", re.compile(r"\bbsr\b|\bbhpr\b", _F)),
    ("idsa", re.compile(r"\bidsa\b", _F)),
    ("ismp", re.compile(r"\bismp\b", _F)),
    # Short capitals that are also words or syllables: only as written in capitals.
    ("acr", re.compile(r"\bACR\b")),
    ("aga", re.compile(r"\bAGA\b")),
    ("acg", re.compile(r"\bACG\b")),
    ("bad", re.compile(r"\bBAD\b")),
    ("nih", re.compile(r"\bNIH\b")),
    # Trials and studies, by name (a trial's name in capitals is also a word: "maintain").
    ("maintain", re.compile(r"\bMAINTAIN\b")),
    ("alms", re.compile(r"\bALMS\b")),
    ("euro-lupus", re.compile(r"\beuro-?lupus\b", _F)),
    ("contreras", re.compile(r"\bcontreras\b", _F)),
    ("ginzler", re.compile(r"\bginzler\b", _F)),
    ("gourley", re.compile(r"\bgourley\b", _F)),
    ("johnson", re.compile(r"(?<!-)\bjohnson\b", _F)),  # not Stevens-Johnson
    ("dubinsky", re.compile(r"\bdubinsky\b", _F)),
    ("osterman", re.compile(r"\bosterman\b", _F)),
    ("sparrow", re.compile(r"\bsparrow\b", _F)),
    ("visser", re.compile(r"\bvisser\b", _F)),
    ("meta-analysis", re.compile(r"\bmeta-?analys[ei]s\b", _F)),
    ("secondary summary", re.compile(r"\bsecondary summar|\bdrorac\b", _F)),
)
_SOURCE_ID_TOKENS = {"smpc": "smpc", "cpic": "cpic", "kdigo": "kdigo", "eular": "eular",
                     "aasld": "aasld", "easl": "easl", "bsg": "bsg", "bsr": "bsr", "acr": "acr",
                     "aga": "aga", "acg": "acg", "bad": "bad", "drorac": "secondary summary",
                     "idsa": "idsa", "ismp": "ismp", "nih": "nih", "maintain": "maintain",
                     "alms": "alms", "euro": "euro-lupus", "contreras": "contreras",
                     "ginzler": "ginzler", "gourley": "gourley", "johnson": "johnson",
                     "dubinsky": "dubinsky", "osterman": "osterman", "sparrow": "sparrow",
                     "visser": "visser"}  # fmt: skip
# Every id of a "[@a; @b]" marker.
_CITED_ID_RE = re.compile(r"@([a-z0-9][a-z0-9-]*)")
_ORGAN_RE = re.compile(
    r"\b(kidney|renal|liver|hepatic|heart|cardiac|lung)[- ](?:transplant\w*|tx\b"
    r"|allograft\w*|homotransplant\w*|recipients?)",
    _F,
)
_ORGANS = {"kidney": "kidney", "renal": "kidney", "liver": "liver", "hepatic": "liver",
           "heart": "heart", "cardiac": "heart", "lung": "lung"}  # fmt: skip
# "non-renal SLE", "SLE without nephritis": lupus that is not lupus nephritis.
_NOT_RENAL_RE = re.compile(r"\bnon[- ]?renal\b|\bwithout (?:lupus )?nephritis\b", _F)
_ASKED_ROLES: tuple[tuple[Role, re.Pattern[str]], ...] = (
    (Role.MAINTENANCE, re.compile(r"\bmaint\w*\b", _F)),
    (
        Role.INITIAL,
        re.compile(r"\b(?:start\w*|initial\w*|induction|loading|day (?:one|1)|first day)\b", _F),
    ),
    (Role.MAXIMUM, re.compile(r"\b(?:max\w*|ceiling|highest|upper limit)\b", _F)),
)


_DOSE_ASKED_RE = re.compile(r"\bdos(?:e|es|ed|ing|age)\b|\bmg\b|\bregimen\b|\bhow much\b", _F)


@lru_cache(maxsize=4096)
def sentence_roles(text: str) -> frozenset[Role]:
    """The phases a sentence names anywhere (start, maintenance, maximum): "up to 5 mg/kg/day
    on the first day" is a cap that is also the first day's dose."""
    return frozenset(r for r, rx in _ASKED_ROLES if rx.search(text))


# All source names in one alternation (a group each, case folded where the name's pattern is):
# every sentence of an answer is read for them, and one scan is a fraction of thirty.
_SOURCES_RE = re.compile(
    "|".join(
        f"(?P<s{i}>" + (f"(?i:{rx.pattern})" if rx.flags & re.IGNORECASE else rx.pattern) + ")"
        for i, (_, rx) in enumerate(_SOURCE_NAMES)
    )
)


@lru_cache(maxsize=8192)
def sources_in(text: str) -> tuple[str, ...]:
    """The sources ``text`` names ("UK SmPC", "CPIC", "secondary summary"), canonical, in the
    order of ``_SOURCE_NAMES``."""
    found = {m.lastgroup for m in _SOURCES_RE.finditer(text)}
    if not found:
        return ()
    return tuple(name for i, (name, _) in enumerate(_SOURCE_NAMES) if f"s{i}" in found)


def organs_in(text: str) -> tuple[str, ...]:
    """The transplanted organs ``text`` names ("kidney transplant", "liver tx")."""
    return tuple(dict.fromkeys(_ORGANS[m.group(1).lower()] for m in _ORGAN_RE.finditer(text)))


def phenotypes_in(text: str) -> tuple[str, ...]:
    """``gene:phenotype`` conditions ``text`` names ("TPMT poor metabolizer" -> tpmt:poor)."""
    genes = [g.lower() for g in _GENE_RE.findall(text)]
    if not genes:
        return ()
    for phenotype, rx in _PHENOTYPE_WORDS:
        if rx.search(text):
            return tuple(f"{gene}:{phenotype}" for gene in dict.fromkeys(genes))
    return ()


def not_renal(text: str) -> bool:
    """Does ``text`` say its lupus is not lupus nephritis ("non-renal SLE")?"""
    return bool(_NOT_RENAL_RE.search(text))


class AskedScope:
    """What a question asks: indications (and whether it excludes lupus nephritis), the phase
    (initial, maintenance, maximum), population, phenotype, named sources and transplanted
    organ. Read once per answer; each facet is empty when the question names none."""

    __slots__ = ("asks_dose", "drugs", "indications", "not_renal", "organs", "phenotypes",
                 "population", "role", "sources", "text")  # fmt: skip

    def __init__(self, question: str, drugs: Iterable[str] = ()) -> None:
        self.text = question
        self.drugs = frozenset(d.lower() for d in drugs)
        self.indications = indications_in(question)
        self.not_renal = not_renal(question)
        found = [r for r, rx in _ASKED_ROLES if rx.search(question)]
        # "induction and maintenance", "start and maximum": the question asks the regimen.
        self.role: Role | None = found[0] if len(found) == 1 else None
        self.population = _first(_POPULATIONS, question) or "any"
        self.phenotypes = phenotypes_in(question)
        self.sources = sources_in(question)
        self.organs = organs_in(question)
        # Whether the question asks for a dose ("dose on day one per SmPC"), not a duration or
        # a frequency: the doses an answer to it gives are that answer's, as its source's.
        self.asks_dose = self.role is not None or bool(_DOSE_ASKED_RE.search(question))

    @property
    def empty(self) -> bool:
        return not (self.indications or self.role or self.population != "any" or self.phenotypes
                    or self.sources or self.organs or self.not_renal)  # fmt: skip


@lru_cache(maxsize=512)
def asked_scope(question: str, drugs: tuple[str, ...] = ()) -> AskedScope:
    """The scope of ``question`` (cached: the guard reads it for every claim of an answer)."""
    return AskedScope(question, drugs)


def _citation_sources(citation: str) -> list[str]:
    """The sources of one citation id ("imuran-smpc" -> smpc, "imuran-label" -> us label)."""
    tokens = citation.split("-")
    out = [_SOURCE_ID_TOKENS[t] for t in tokens if t in _SOURCE_ID_TOKENS]
    if not out and "label" in tokens:
        out.append("us label")
    return out


def statement_sources(st: DoseStatement, sentence_text: str) -> tuple[str, ...]:
    """Which source a statement is from: the sources its sentence names, else its citation's
    id tokens ("imuran-smpc" -> smpc, "imuran-label" -> us label), else a label's own text."""
    named = sources_in(sentence_text)
    if named:
        return named
    out = _citation_sources(st.citation) if st.citation else []
    if not out and not st.citation and st.evidence == "label":
        out.append("us label")
    return tuple(dict.fromkeys(out))


@lru_cache(maxsize=8192)
def sentence_sources(sentence_text: str) -> frozenset[str]:
    """Every source a passage's sentence can be held to: those it names and those its ``[@id]``
    markers cite (a meta-analysis cited as osterman-2006 is both "meta-analysis" and osterman;
    a secondary summary quoting the SmPC is both)."""
    out = set(sources_in(sentence_text))
    for cid in _CITED_ID_RE.findall(sentence_text):
        out.update(_citation_sources(cid))
    return frozenset(out)


_PHENOTYPE_CONTEXT_RE = re.compile(
    r"\b(?:TPMT|NUDT15|metaboli[sz]ers?|activity|heterozygo\w*|homozygo\w*"
    r"|deficien\w*|genotype|phenotype|alleles?)\b",
    _F,
)
_REDUCTION_ROLES = frozenset({Role.REDUCTION_BY, Role.REDUCTION_TO})


def phenotype_values(text: str) -> frozenset[str]:
    """The metabolizer phenotypes ``text`` states (intermediate, poor, normal), whichever gene:
    a sentence says "intermediate metabolizer" under a question that named TPMT."""
    if not _PHENOTYPE_CONTEXT_RE.search(text):
        return frozenset()
    return frozenset(name for name, rx in _PHENOTYPE_WORDS if rx.search(text))


# A figure of how many people have a phenotype ("about 0.3% of patients carry two
# loss-of-function alleles", "1 in 178 to 1 in 3736 people"): a percent or "1 in N" in a
# sentence about carriers. A sentence about a dose, a harm or a response gives a figure *in*
# the phenotype (a reduction, a risk), which is no frequency of it.
_CARRIER_CUE_RE = re.compile(
    r"\b(?:carr(?:y|ies|iers?)|alleles?|homozygo\w*|heterozygo\w*|genotypes?|people"
    r"|population|ancestry|frequen\w*|prevalen\w*)\b",
    _F,
)
_NOT_FREQUENCY_RE = re.compile(
    r"\b(?:dos(?:e|es|ing)|risk\w*|toxicit\w*|myelosuppress\w*|neutropeni\w*|leu[ck]openi\w*"
    r"|respon\w*|remission|deaths?|died|mortality)\b",
    _F,
)
_FREQUENCY_ROLES = frozenset({Role.OUTCOME, Role.UNKNOWN})


def phenotype_frequency(st: DoseStatement, sentence_text: str) -> frozenset[str]:
    """The ``gene:phenotype`` conditions whose population frequency statement ``st`` gives
    (``sentence_text`` is its sentence): "0.3% homozygous deficient" -> {tpmt:poor}. Empty
    when the figure is no such frequency."""
    if st.quantity.kind not in ("percent", "ratio") or st.role not in _FREQUENCY_ROLES:
        return frozenset()
    phen = frozenset(c for c in st.conditions if c.startswith(("tpmt:", "nudt15:")))
    if not phen or not _CARRIER_CUE_RE.search(sentence_text):
        return frozenset()
    return frozenset() if _NOT_FREQUENCY_RE.search(sentence_text) else phen


@dataclass(frozen=True)
class TextFacts:
    """What one sentence names, read once (an answer's sentence holds several numbers, and a
    source sentence supports many answers)."""

    indications: tuple[str, ...]
    organs: tuple[str, ...]
    not_renal: bool
    sources: tuple[str, ...]
    phenotypes: frozenset[str]


@lru_cache(maxsize=8192)
def text_facts(text: str) -> TextFacts:
    return TextFacts(indications=indications_in(text), organs=organs_in(text),
                     not_renal=not_renal(text), sources=sources_in(text),
                     phenotypes=phenotype_values(text))  # fmt: skip


def conditions_hold(
    st: DoseStatement, sentence: str, question: str, asked_drugs: Iterable[str]
) -> str | None:
    """The first condition of statement ``st`` that the answer's ``sentence`` and the
    ``question`` do not state, or None when all hold.

    - Phenotype: the sentence's, else the question's. The statement's genes are alternatives
      ("TPMT or NUDT15 intermediate"); its phenotype holds when that phenotype is stated, and
      a normal phenotype also when none is.
    - Co-medication: only a reduction's ("with allopurinol, reduce to one-quarter"); a sentence
      naming two drugs gives every other number that "condition" too (the allopurinol dose
      itself), and that is no condition of the figure.
    - Kidney or liver impairment: when the context names kidney or liver function.
    - Treatment failure (a failure regimen): when the context says a treatment failed.
    """
    if not st.conditions:
        return None
    context = f"{sentence}\n{question}"
    stated = text_facts(sentence).phenotypes or text_facts(question).phenotypes
    phen = {c.partition(":")[2] for c in st.conditions if c.startswith(("tpmt:", "nudt15:"))}
    if phen and not phen & stated and not (phen == {"normal"} and not stated):
        c = next(c for c in st.conditions if c.startswith(("tpmt:", "nudt15:")))
        return c
    asked = set(asked_drugs)
    low = context.lower()
    for c in st.conditions:
        key, _, value = c.partition(":")
        if key == "comedication" and st.role in _REDUCTION_ROLES:
            if value not in asked and value not in low:
                return c
        elif key == "kidney" and not _KIDNEY_RE.search(context):
            return c
        elif key == "liver" and not _LIVER_RE.search(context):
            return c
        elif key == "course" and not _FAILED_RE.search(context):
            return c
    return None
