"""Verdict for every number in an answer: supported by a cited passage, derived, or blocked.

Per claim, in order (first rule that fires wins):

1. OUT_OF_LIMITS - a per-kg dose and a total in the same clause, joined by a weight or "=",
   whose arithmetic does not follow (2 mg/kg/day × 72 kg = 150 mg/day).
2. OUT_OF_LIMITS - a dose for a drug outside its limit rows or at a wrong frequency
   (see :mod:`guardrails.limits`). The drug is the one named in the claim's clause
   (``attached_drug``), else the only drug its sentence names, else ``drug``. Clauses that
   state limits ("within the limit of …") give bounds, not doses, and skip this rule.
3. SUPPORTED - an equivalent quantity in a passage the claim may cite: the clause's ``[n]``
   markers, else the sentence's, else (no marker) any passage. For doses and percentages, when
   the answer names the drug, the source sentence (or passage) must name it too.
4. DERIVED - equal to a calculator result (``calculate``) for this patient, a patient weight, a
   consistent per-kg product, or a limit-table bound stated as one in a clause that says
   "limit" ("within the limit of up to 3 mg/kg/day").
5. UNIT_MISMATCH - the same number in scope with another unit, basis or frequency.
6. UNSUPPORTED - otherwise (reason says why: nothing in scope, wrong drug, swapped range…).

Before these rules, a *derivation line* is recognised: text that is, character for character, the
explanation (steps joined by "; ") of a derivation the guard itself recomputes with the
calculator from these passages and this patient, ending at a dose claim equal to its result.
Inside it, the derivation's inputs are SUPPORTED from the passage its step cites (or the
derivation's base passage) - they must still be found there - the patient's weight and every
intermediate or final dose are DERIVED (OUT_OF_LIMITS when the recomputed derivation is). A line
that reads like a derivation but is not one recomputed here (a changed number, another weight)
gets no such reading and goes through the rules below.

After these rules, every token holding a digit the parser could not read as a quantity ("the
19th day", "DOTN12", "20-TGN") is a claim of kind ``unread``, UNSUPPORTED, unless it is a name
written with digits (NUDT15, TPMT*3A, 6-TGN, a drug alias), a year, date, citation, label or
list number (the parser's masks), or is written the same way (an ordinal also as its word) in a
passage its sentence may cite: a fail-closed guard lets no digit through unread.

The answer passes only if every claim is SUPPORTED or DERIVED. Any internal error gives
``AnswerVerdict(passed=False, error=...)``: the guard never raises and never passes on error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from guardrails.calculator import ROUNDING, derivation_for, derivations_for
from guardrails.drugs import (
    Mentions,
    attached_drug_in,
    drugs_among,
    drugs_between,
    drugs_in,
    mentions_in,
    same_drug,
)
from guardrails.limits import LimitTable, dose_basis
from guardrails.model import (
    AnswerVerdict,
    ClaimVerdict,
    Derivation,
    DoseStatement,
    Passage,
    PatientContext,
    Quantity,
    Role,
    Status,
    fast_constructor,
)
from guardrails.quantities import (
    format_quantity,
    parse_quantities,
    qualifiers_compatible,
    quantities_equivalent,
    unread_tokens,
)
from guardrails.sentences import citations, clauses, sentences
from guardrails.statements import (
    AskedScope,
    ClaimContext,
    asked_scope,
    claim_context,
    conditions_hold,
    indications_compatible,
    phenotype_frequency,
    roles_compatible,
    sentence_roles,
    sentence_sources,
    sources_in,
    statement_sources,
    statements_of,
    text_facts,
)
from guardrails.textsearch import has_case_fold_trap, lowered

__all__ = ["check_answer"]

_DRUG_BOUND_KINDS = frozenset({"dose", "percent"})
_PLAIN_ROLES = frozenset({Role.USUAL, Role.UNKNOWN})
# Figures that are not doses but still belong to a sentence's indication, phenotype and phase:
# how long, how often, which level, how many in how many. With a question, their statements are
# read too (a duration from another indication's sentence is not this one's).
_SCOPED_KINDS = frozenset({"duration", "frequency", "lab", "number", "count", "ratio"})
# Of those, the ones that belong to one drug's regimen (a thiopurine level or a genotype's
# frequency is shared by the drugs of its class and is not held to one).
_DATED_KINDS = frozenset({"duration", "frequency", "number"})
# A bare count has no indication or phase of its own: the words next to it decide.
_WORDLESS_KINDS = frozenset({"number", "count"})
_EQUALS_RE = re.compile(r"=|→|->|gives|equals")
_LIMIT_WORD_RE = re.compile(r"\blimit", re.IGNORECASE)
_WEEKLY_RE = re.compile(
    r"\b(?:once\s+(?:a\s+|per\s+|each\s+)?week|weekly|per\s+week|a\s+week|/\s*week)\b",
    re.IGNORECASE,
)
_FROM_RE = re.compile(r"\(from \[(\d+)\]\)")
_claim_verdict = fast_constructor(ClaimVerdict)


@dataclass(frozen=True)
class _SourceClaim:
    q: Quantity
    drugs: frozenset[str]  # named in the source sentence


_Key = tuple[object, ...]


def _key(q: Quantity) -> _Key:
    """What ``quantities_equivalent`` compares, but the qualifier: equal keys are equivalent
    quantities when their qualifiers are compatible."""
    return (q.low, q.high, q.unit, q.kind, None if q.per == "dose" else q.per, q.per_count,
            q.per_kg, q.per_m2)  # fmt: skip


@dataclass(frozen=True)
class _Indexed:
    claims: tuple[_SourceClaim, ...]
    drugs: frozenset[str]  # named anywhere in the passage
    by_key: dict[_Key, tuple[_SourceClaim, ...]]  # claims by _key, in text order

    def equivalent(self, q: Quantity, key: _Key) -> Iterable[_SourceClaim]:
        """The passage's quantities equivalent to ``q`` (whose ``_key`` is ``key``), in order."""
        for src in self.by_key.get(key, ()):
            if qualifiers_compatible(q.qualifier, src.q.qualifier):
                yield src


@lru_cache(maxsize=2048)
def _index(text: str, extra: frozenset[str]) -> _Indexed:
    """Quantities of a passage with the drugs named in their sentence; drugs of the passage."""
    out = []
    qs = parse_quantities(text)
    spans = clauses(text)
    for q in qs:
        sent = next(((s, e) for _, _, s, e in spans if s <= q.span[0] < e), (0, len(text)))
        out.append(_SourceClaim(q, drugs_between(text, sent[0], sent[1], extra)))
    by_key: dict[_Key, list[_SourceClaim]] = {}
    for src in out:
        by_key.setdefault(_key(src.q), []).append(src)
    return _Indexed(
        claims=tuple(out),
        drugs=frozenset(n for _, n in drugs_in(text, extra)),
        by_key={k: tuple(v) for k, v in by_key.items()},
    )


def _drug_ok(
    claim_drug: str | None, src: _SourceClaim, p: Passage, p_drugs: frozenset[str]
) -> bool:
    if claim_drug is None:
        return True
    if src.drugs:
        return claim_drug in src.drugs
    if p.drugs:
        return claim_drug in p.drugs
    return not p_drugs or claim_drug in p_drugs


@lru_cache(maxsize=2048)
def _statement_at(p: Passage) -> dict[tuple[int, int], DoseStatement]:
    return {st.span: st for st in statements_of(p)}


# The product's own evidence tags ("[secondary summary · draft]", "[guideline, trial · final]")
# say what kind of source a cited passage is; they name no source for the sentence's figures.
_EVIDENCE_TAG_RE = re.compile(r"\[[^\[\]\n]*·[^\[\]\n]*\]")


def _named_sources(text: str) -> tuple[str, ...]:
    """The sources an answer's text names, without the evidence tags the composer writes."""
    if "·" in text:
        text = _EVIDENCE_TAG_RE.sub(" ", text)
    return sources_in(text)


@lru_cache(maxsize=2048)
def _sentence_spans(text: str) -> tuple[tuple[int, int], ...]:
    return sentences(text)


def _from_named(p: Passage, at: int, st: DoseStatement | None, named: frozenset[str]) -> str | None:
    """Why the passage sentence holding the figure at ``at`` is from none of the sources the
    answer's clause names (None when it is from one). A clinician reads "UK SmPC: every 12
    weeks" as the SmPC's advice: the figure must be that source's, not another guideline's
    in the same passage. A sentence naming no source and citing none is its passage's: from
    the sources the passage names (none: from no named source)."""
    if st is not None:
        a, b = st.sentence
    else:
        a, b = next(((s, e) for s, e in _sentence_spans(p.text) if s <= at < e), (0, len(p.text)))
    text = p.text[a:b]
    theirs = sentence_sources(text)
    if st is not None:
        theirs = theirs | frozenset(statement_sources(st, text))
    if not theirs:
        # A sentence naming no source is its passage's: a guideline excerpt names its source
        # once ("Azathioprine, CPIC, normal metabolizer: ... Intermediate metabolizer: ...").
        theirs = sentence_sources(p.text)
    if theirs & named:
        return None
    return f"is from {', '.join(sorted(theirs)) or 'no source the answer names'}, not {', '.join(sorted(named))}"


def _source_of(p: Passage, st: DoseStatement) -> frozenset[str]:
    text = p.text[st.sentence[0] : st.sentence[1]]
    return sentence_sources(text) | frozenset(statement_sources(st, text))


def _asked_source_differs(
    p: Passage, st: DoseStatement, asked: AskedScope, passages: Sequence[Passage]
) -> str | None:
    """Why a dose from statement ``st`` of passage ``p`` does not answer a question that names
    its source ("dose on day one per SmPC"), in a sentence that names none: ``st`` is another
    source's, and the asked source gives its own figure for the same drug, role, basis and
    population (the US label's 3-5 mg/kg/day where the SmPC says up to 5 mg/kg/day on the first
    day). None when ``st`` is the asked source's, or the asked source gives no such figure (a
    figure only another source gives is that source's, not a contradiction of the asked one)."""
    wanted = frozenset(asked.sources)
    theirs = _source_of(p, st)
    if theirs & wanted or st.drug is None:
        return None
    q = st.quantity
    for pp in passages:
        for other in _statement_at(pp).values():
            oq = other.quantity
            if (
                oq.kind != "dose"
                or other.drug is None
                or not same_drug(other.drug, st.drug)
                or (oq.per_kg, oq.per_m2) != (q.per_kg, q.per_m2)
                or other.population != st.population
                or not indications_compatible(st.indications, other.indications)
            ):
                continue
            text = pp.text[other.sentence[0] : other.sentence[1]]
            if other.role is not st.role and st.role not in sentence_roles(text):
                continue
            if not _source_of(pp, other) & wanted:
                continue
            return (f"is from {', '.join(sorted(theirs)) or 'no source the question names'}; "
                    f"{', '.join(sorted(wanted))} gives {oq.text!r} [{pp.n}]")  # fmt: skip
    return None


_FREQUENCY_KINDS = frozenset({"percent", "ratio"})


def _asked_source_frequency_differs(
    p: Passage, st: DoseStatement, asked: AskedScope, passages: Sequence[Passage]
) -> str | None:
    """The population-frequency counterpart of ``_asked_source_differs``: under a question
    naming a source ("CPIC: what fraction ..."), in a sentence naming none, a frequency of a
    phenotype from statement ``st`` is misattributed when ``st`` is another source's and the
    asked source gives its own frequency for the same phenotype (the US label's 0.3% with two
    loss-of-function alleles, where CPIC gives 1 in 178 to 1 in 3736 for homozygous deficiency).
    Per phenotype: a figure for a phenotype the asked source gives no frequency of is that
    source's, not a contradiction of the asked one; and only frequencies, since a figure every
    source gives alone ("one daily dose") has no competitor to be confused with."""
    phen = phenotype_frequency(st, p.text[st.sentence[0] : st.sentence[1]])
    if not phen:
        return None
    wanted = frozenset(asked.sources)
    theirs = _source_of(p, st)
    if theirs & wanted:
        return None
    for pp in passages:
        for other in _statement_at(pp).values():
            if other.quantity.kind not in _FREQUENCY_KINDS:
                continue
            same = phenotype_frequency(other, pp.text[other.sentence[0] : other.sentence[1]]) & phen
            if not same or not _source_of(pp, other) & wanted:
                continue
            return (f"is from {', '.join(sorted(theirs)) or 'no source the question names'}; "
                    f"{', '.join(sorted(wanted))} gives {other.quantity.text!r} for "
                    f"{', '.join(sorted(same))} [{pp.n}]")  # fmt: skip
    return None


def _scope_mismatch(
    q: Quantity,
    claim_drug: str | None,
    st: DoseStatement | None,
    ctx: ClaimContext,
    claim_drugs: frozenset[str] = frozenset(),
    asked: AskedScope | None = None,
    source_text: str = "",
    source_drugs: frozenset[str] = frozenset(),
) -> str | None:
    """Why the source statement does not support the claim as the answer states it: another
    drug, another role, indication or population (None when it does). With ``asked`` (the
    question's scope), what the answer's sentence leaves unsaid is what the question asked;
    ``source_text`` is the statement's own sentence."""
    if st is None:
        return None
    dosed = st.drug
    if claim_drug is not None and dosed is not None and q.kind == "dose":
        if not same_drug(dosed, claim_drug):
            return f"gives this for {dosed}, not {claim_drug}"
    if (
        q.kind in _DATED_KINDS
        and q.text[:1].isdigit()
        and claim_drugs
        and source_drugs
        and not any(same_drug(a, b) for a in claim_drugs for b in source_drugs)
    ):
        # "azathioprine ... for 24 weeks" from a sentence about mycophenolate's 24 weeks. Whole
        # sentences on both sides: which drug a duration belongs to is seldom written next to it.
        return f"gives this for {', '.join(sorted(source_drugs))}, not {', '.join(sorted(claim_drugs))}"
    # The source side first: a plain source figure fits any reading of the claim. Only doses
    # and percentages: the role of a duration, interval or lab value hangs on words ("monitor",
    # "target") that an answer's sentence and its source's place differently.
    if (
        q.kind in _DRUG_BOUND_KINDS
        and st.role not in _PLAIN_ROLES
        and not roles_compatible(ctx.role, st.role)
        and ctx.role not in st.also
    ):
        return f"gives this as the {st.role.value}, not the {ctx.role.value}"
    if st.indications and not indications_compatible(ctx.indications, st.indications):
        return f"gives this for {', '.join(st.indications)}, not {', '.join(ctx.indications)}"
    if st.population != "any" and ctx.population not in ("any", st.population):
        return f"gives this for {st.population} patients, not {ctx.population}"
    if asked is None or q.kind in _WORDLESS_KINDS:
        return None  # a bare count has no scope of its own: its words decide (_reading_mismatch)
    return _asked_mismatch(q, st, ctx, asked, source_text)


def _asked_mismatch(
    q: Quantity, st: DoseStatement, ctx: ClaimContext, asked: AskedScope, source_text: str
) -> str | None:
    """The question's scope, for a claim its own sentence leaves open (see ``check_answer``)."""
    sentence = ctx.sentence_text
    mine, theirs = text_facts(sentence), text_facts(source_text)
    # Indication: the sentence's own, narrowed to the asked ones when it names them too ("RA
    # starting dose: 1-3 mg/kg/day ... from the day of transplantation" asked about RA).
    claim_ind = ctx.indications
    if asked.indications:
        both = tuple(i for i in claim_ind if i in asked.indications)
        claim_ind = both or claim_ind or asked.indications
    if st.indications and claim_ind and not indications_compatible(claim_ind, st.indications):
        return f"gives this for {', '.join(st.indications)}, not {', '.join(claim_ind)}"
    if q.kind == "dose" and not claim_ind and st.indications and theirs.indications:
        # Neither the question nor the sentence names an indication, and the source sentence
        # gives this dose for one: the RA starting range is not "the" starting dose.
        return f"gives this for {', '.join(st.indications)} only; the answer gives it for any indication"
    # "Non-renal SLE" against lupus nephritis, either way round (SLE and LN are otherwise
    # compatible). A sentence that names both ("unlike non-renal lupus, LN needs ...") is
    # about the nephritis.
    ln = "lupus nephritis"
    claim_not_renal = (mine.not_renal and ln not in ctx.indications) or (
        asked.not_renal and not ctx.indications
    )
    if claim_not_renal and st.indications and set(st.indications) <= {ln}:
        return "gives this for lupus nephritis, not non-renal lupus"
    if (st.indications and ln in claim_ind and "systemic lupus erythematosus" not in claim_ind
            and ln not in st.indications and theirs.not_renal):  # fmt: skip
        return "gives this for non-renal lupus, not lupus nephritis"
    # Phase: a dose whose sentence names none is the one asked ("maintenance dose?": "2 mg/kg/day").
    if (
        asked.role is not None
        and q.kind == "dose"
        and ctx.role in _PLAIN_ROLES
        and st.role not in _PLAIN_ROLES
        and not roles_compatible(asked.role, st.role)
        and asked.role not in st.also
    ):
        return f"gives this as the {st.role.value}, not the {asked.role.value} asked"
    if (
        st.population != "any"
        and ctx.population == "any"
        and asked.population not in ("any", st.population)
    ):
        return f"gives this for {st.population} patients, not {asked.population}"
    claim_organs = mine.organs or asked.organs
    if claim_organs:
        src_organs = theirs.organs
        if src_organs and not set(src_organs) & set(claim_organs):
            return (
                f"gives this for {', '.join(src_organs)} transplant, not {', '.join(claim_organs)}"
            )
    # Source: an answer that gives a figure as the very source the question asks about ("per
    # SmPC": "the SmPC dose is ...") must have it from that source. (Every sentence that names
    # a source is held to it in ``_check_claim`` too: a clinician reads "BSG: 0.5-1 mg/kg/day"
    # as BSG's advice, so EASL's figure there is misattributed, though true.)
    if asked.sources:
        claim_sources = set(mine.sources) & set(asked.sources)
        src = statement_sources(st, source_text) if claim_sources else ()
        if src and not set(src) & claim_sources:
            return f"is from {', '.join(src)}, not {', '.join(sorted(claim_sources))}"
    unmet = conditions_hold(st, sentence, asked.text, asked.drugs)
    if unmet is not None:
        return f"gives this only with {unmet.replace(':', ' ')}, which neither the question nor the sentence states"
    return None


_TIME_WORD_RE = re.compile(r"\b(?:week|day|month|year|cycle|pulse|dose)\s*$", re.IGNORECASE)
_WORD_BEFORE_RE = re.compile(r"([A-Za-z]+)\W*$")
_WORD_AFTER_RE = re.compile(r"^\W*?([A-Za-z]+)")


def _words_around(text: str, span: tuple[int, int], lo: int, hi: int) -> frozenset[str]:
    """The word right before and right after a number within ``[lo, hi)``, lower case."""
    out = set()
    before = _WORD_BEFORE_RE.search(text, max(lo, span[0] - 30), span[0])
    if before:
        out.add(before.group(1).lower())
    after = _WORD_AFTER_RE.match(text[span[1] : min(hi, span[1] + 30)])
    if after:
        out.add(after.group(1).lower())
    return frozenset(out)


_POINT_RE = re.compile(r"\b(week|day|month|year)\s*$", re.IGNORECASE)


def _time_point_of(answer: str, q: Quantity, s: Quantity) -> bool:
    """Is claim ``q`` the time point ("by week 4") that the source states as a duration ("over
    4 weeks")? The parser reads the first as a bare number and the second as weeks."""
    if q.kind != "number" or q.is_range or s.kind != "duration" or s.is_range or q.low != s.low:
        return False
    m = _POINT_RE.search(answer, max(0, q.span[0] - 12), q.span[0])
    return m is not None and s.unit.startswith(m.group(1).lower())


def _reading_mismatch(
    answer: str,
    q: Quantity,
    clause: _Clause,
    all_claims: Sequence[Quantity],
    p: Passage,
    src: _SourceClaim,
    st: DoseStatement,
    claim_drugs: frozenset[str],
    done: Sequence[ClaimVerdict] = (),
    words: bool = True,
) -> str | None:
    """A figure that is not a dose means what the words around it say (``words=False``: the
    dating check alone, for a time point the source writes as a duration):

    - A unitless number ("1", "3") has no meaning of its own: it is supported only where the
      source has it next to the same word ("week 1" for "week 1", not "The answer is: 1.").
    - A duration or time point ("for 4 weeks", "by week 1") dates the dose stated before it in
      its sentence: the source must give that dose before the same figure in its sentence
      ("30 mg/day in week 1, tapered to 10 mg/day by week 4" does not support "10 mg/day by
      week 1"). A source sentence with no dose before the figure dates nothing: no check.
      A dose that no passage gives this drug dates nothing a source states either: its time
      ("40 mg/day for 4 weeks", "100 mg/day by week 1") is as invented as the dose, unless the
      dose was derived here (``done``: the verdicts of the claims before).
    """
    ss, se = clause.sentence
    time_point = q.kind == "number" and bool(
        _TIME_WORD_RE.search(answer, max(ss, q.span[0] - 12), q.span[0])
    )
    if words and q.kind == "number" and not q.unit and q.text[:1].isdigit():
        mine = _words_around(answer, q.span, ss, se)
        theirs = _words_around(p.text, src.q.span, st.sentence[0], st.sentence[1])
        if not mine & theirs:
            return f"gives {src.q.text!r} in another sense (next to {', '.join(sorted(theirs)) or 'no word'})"
    if (
        words
        and _denied(answer, q.span[0], max(clause.start, ss), all_claims)
        and not _denied(
            p.text, src.q.span[0], st.sentence[0], [c.q for c in _index(p.text, frozenset()).claims]
        )
    ):
        return f"[{p.n}] states {src.q.text!r}; the answer denies it"
    if q.kind != "duration" and not time_point:
        return None
    if words:
        mine_act = _action(answer, q.span[0], ss, all_claims)
        theirs_act = _action(p.text, src.q.span[0], st.sentence[0],
                             [c.q for c in _index(p.text, frozenset()).claims])  # fmt: skip
        if mine_act and theirs_act and mine_act != theirs_act:
            return f"gives {src.q.text!r} for when to {theirs_act} the drug, not to {mine_act} it"
    dated = next((c for c in reversed(all_claims)
                  if c.kind == "dose" and ss <= c.span[0] and c.span[1] <= q.span[0]), None)  # fmt: skip
    if dated is None:
        return None
    before = [c.q for c in _index(p.text, frozenset()).claims
              if c.q.kind == "dose" and st.sentence[0] <= c.q.span[0]
              and c.q.span[1] <= src.q.span[0]]  # fmt: skip
    if not before or any(_shares_number(dated, b) for b in before):
        return None
    # Only now (rare) the wider look: a dose no source gives this drug dates an invented
    # course - unless the guard derived it (a calculator dose is in no passage).
    if not any(_shares_number(dated, c.q) and (not c.drugs or c.drugs & claim_drugs)
               for pp in clause.scope for c in _index(pp.text, frozenset()).claims
               if c.q.kind == "dose"):  # fmt: skip
        verdict = next((v for v in reversed(done) if v.claim.span == dated.span), None)
        if verdict is not None and verdict.status is Status.DERIVED:
            return None
        return f"dates {dated.text}, which no passage gives this drug"
    return f"gives {src.q.text!r} after {', '.join(b.text for b in before)}, not after {dated.text}"


# Words that name a drug only to rule it out for the sentence's patients.
_EXCLUDING_RE = re.compile(
    r"(?:\b(?:should|must|can|could|do|does|did|will|may)\s*(?:not|n't)\s+"
    r"(?:take|receive|tolerate|be\s+given|be\s+treated\s+with|use|start|have)"
    r"|\bcannot\s+(?:take|receive|tolerate|use|have)|\bunable\s+to\s+(?:take|receive|tolerate)"
    r"|\bintoleran\w*\s+(?:of|to)|\bwithout|\binstead\s+of|\brather\s+than|\bavoid\w*"
    r"|\bother\s+than|\bexcept|\bnot\s+on|\bcontraindicat\w*(?:\s+(?:to|for|with))?)"
    r"\s+(?:the\s+)?$",
    re.IGNORECASE,
)


_EXCLUDING_LAST = frozenset(
    {"take", "receive", "tolerate", "given", "with", "use", "start", "have", "of", "to", "for",
     "without", "than", "except", "on", "avoid", "avoiding", "avoids", "avoided",
     "contraindicated", "contraindication", "contraindications"}
)  # fmt: skip


def _excluded_mentions(answer: str, mentions: Mentions) -> Mentions:
    """The drug mentions that rule their drug out ("who should not take azathioprine",
    "without azathioprine", "instead of azathioprine")."""
    out = []
    for m in mentions:
        # The word before the drug (or before "the") decides whether the cue can end there:
        # one split spares most mentions the regex.
        words = answer[max(0, m[0] - 40) : m[0]].rsplit(None, 2)
        last = words[-1].lower() if words else ""
        if last == "the" and len(words) > 1:
            last = words[-2].lower()
        if last in _EXCLUDING_LAST and _EXCLUDING_RE.search(answer, max(0, m[0] - 40), m[0]):
            out.append(m)
    return tuple(out)


def _doses_excluded(st: DoseStatement | None, src: _SourceClaim, excluded: frozenset[str]) -> bool:
    """Is the source figure a dose of a drug the claim's sentence rules out?"""
    dosed = st.drug if st is not None else None
    if dosed is None and len(src.drugs) == 1:
        dosed = next(iter(src.drugs))
    return dosed is not None and any(same_drug(dosed, x) for x in excluded)


# "50 mg/day tapered to 30 mg/day": the second dose is where the first one goes.
_STEP_TO_RE = re.compile(
    r"^\s*,?\s*(?:and\s+|then\s+)?(?:be\s+|is\s+|was\s+)?(?:tapered|reduced|decreased|lowered"
    r"|raised|increased|titrated|weaned|stepped\s+down|cut)\s+(?:down\s+|up\s+|gradually\s+)?"
    r"(?:to|towards)\s+(?:about\s+|approximately\s+)?$",
    re.IGNORECASE,
)


def _step_mismatch(
    answer: str, q: Quantity, clause: _Clause, p: Passage, src: _SourceClaim, st: DoseStatement
) -> str | None:
    """A dose the answer reaches from another ("50 mg/day tapered to 30 mg/day") is that
    course's end: the source must reach it from the same dose ("30 mg/day, reduced to 10
    mg/day" starts at 30 and does not support a taper that ends there)."""
    prev = next((c for c in reversed(clause.claims)
                 if c.kind == "dose" and c.span[1] <= q.span[0]), None)  # fmt: skip
    if prev is None or not _STEP_TO_RE.match(answer[prev.span[1] : q.span[0]]):
        return None
    before = [c.q for c in _index(p.text, frozenset()).claims
              if c.q.kind == "dose" and st.sentence[0] <= c.q.span[0]
              and c.q.span[1] <= src.q.span[0]]  # fmt: skip
    if any(_shares_number(prev, b) for b in before):
        return None
    return f"gives {src.q.text!r} but not as reached from {prev.text}"


# What a time is the time of: starting a drug, or keeping it and stopping it (the same
# course's length: "continue for 2 years" = "stop after 2 years").
_START_ACT_RE = re.compile(r"\b(?:add(?:s|ed|ing)?|start\w*|begin\w*|began|introduc\w*|initiat\w*"
                           r"|commenc\w*)\b", re.IGNORECASE)  # fmt: skip
_KEEP_ACT_RE = re.compile(r"\b(?:stop\w*|withdraw\w*|withdrew|discontinu\w*|ceas\w*|continu\w*"
                          r"|maintain\w*|kept|keep\w*|last(?:s|ed|ing)?)\b", re.IGNORECASE)  # fmt: skip


_DENIAL_RE = re.compile(
    r"\b(?:is|are|was|were|does|do|did|has|have|had)\s+not\b|\b(?:isn't|aren't|wasn't|doesn't"
    r"|don't|didn't|hasn't|haven't)|\bnever\b",
    re.IGNORECASE,
)
# Negations that bound or time a figure rather than deny it.
_BOUNDING_NOT_RE = re.compile(
    r"\bnot\s+(?:to\s+)?(?:exceed\w*|more|less|above|below|over|under|before|after|until|later"
    r"|earlier|beyond|be\s+(?:stopped|exceeded|withdrawn)|stop\w*|withdraw\w*|discontinu\w*|reduc\w*)",
    re.IGNORECASE,
)


def _denied(text: str, at: int, lo: int, claims: Sequence[Quantity]) -> bool:
    """Do the words since the previous number (from ``lo``) deny the figure ("azathioprine is
    not an agent that has a duration of 3–5 years")? Not "not more than" or "not before"."""
    prev = max((c.span[1] for c in claims if lo <= c.span[1] <= at), default=lo)
    window = text[prev:at]
    return bool(_DENIAL_RE.search(window)) and not _BOUNDING_NOT_RE.search(window)


def _action(text: str, at: int, lo: int, claims: Sequence[Quantity]) -> str | None:
    """ "start" or "keep" when the words since the previous number of the sentence (from
    ``lo``) name exactly one of the two, else None."""
    prev = max((c.span[1] for c in claims if lo <= c.span[1] <= at), default=lo)
    window = text[prev:at]
    start, keep = bool(_START_ACT_RE.search(window)), bool(_KEEP_ACT_RE.search(window))
    if start == keep:
        return None
    return "start" if start else "keep"


def _shares_number(a: Quantity, b: Quantity) -> bool:
    """Do two doses share a figure in the same unit ("30 to 10 mg a day" read as one range and
    "30 mg/day ... 10 mg/day" as two)? Two ranges must be the same range: 750–1000 mg is not
    1000–1500 mg."""
    if a.unit != b.unit or a.per_kg != b.per_kg:
        return False
    if a.is_range and b.is_range:
        return {a.low, a.high} == {b.low, b.high}
    return a.low == b.low or a.low == b.high or a.high == b.low or a.high == b.high


def _same_numbers(a: Quantity, b: Quantity) -> bool:
    return (a.raw_low, a.raw_high) == (b.raw_low, b.raw_high) or (a.low, a.high) == (b.low, b.high)


def _round(d: Decimal) -> Decimal:
    return d.quantize(ROUNDING, rounding=ROUND_HALF_UP)


def _verdict(
    q: Quantity,
    status: Status,
    reason: str,
    drug: str | None,
    **kw: object,
) -> ClaimVerdict:
    return _claim_verdict(claim=q, status=status, reason=reason, drug=drug, **kw)


def _arithmetic(
    answer: str,
    q: Quantity,
    clause_claims: list[Quantity],
    patient: PatientContext | None,
) -> tuple[bool, str, Derivation | None] | None:
    """(follows, explanation, derivation) when ``q`` is stated as a per-kg dose × a weight."""
    if q.kind != "dose" or q.unit != "mg" or q.per_kg or q.per_m2:
        return None
    # Most clauses hold no per-kg dose: test the cheap attribute first, positions after.
    per_kg = [c for c in clause_claims
              if c.per_kg and c.kind == "dose" and c.unit == "mg" and c.span[1] <= q.span[0]]  # fmt: skip
    if not per_kg:
        return None
    before = [c for c in clause_claims if c.span[1] <= q.span[0]]
    base = per_kg[-1]
    if base.per != q.per or base.per_count != q.per_count:
        return None
    if any(c.kind == "dose" and base.span[1] <= c.span[0] for c in before):
        return None  # only the first total after the per-kg dose is its product
    weights = [c for c in before if c.kind == "weight" and c.span[0] > base.span[0]]
    if weights:
        w = weights[-1].low
    elif (
        patient is not None
        and patient.weight_kg is not None
        and _EQUALS_RE.search(answer, base.span[1], q.span[0])
    ):
        w = patient.weight_kg
    else:
        return None
    lo, hi = _round(base.low * w), _round(base.high * w)
    step = f"{format_quantity(base)} × {w} kg = {_fmt(lo, hi)} mg"
    if (q.low, q.high) == (lo, hi):
        result = Quantity(text=q.text, span=q.span, low=lo, high=hi, unit="mg", per=q.per,
                          kind="dose", raw_low=lo, raw_high=hi, raw_unit="mg",
                          per_count=q.per_count)  # fmt: skip
        return True, step, Derivation(result=result, steps=(step,), inputs=(base,),
                                      passage_n=0, drug="")  # fmt: skip
    return False, f"{step}, not {q.text}", None


def _fmt(lo: Decimal, hi: Decimal) -> str:
    return f"{lo.normalize():f}" if lo == hi else f"{lo.normalize():f}–{hi.normalize():f}"


def _limit_bound(q: Quantity, drug: str | None, limits: LimitTable | None) -> str | None:
    """A claim that restates a limit-table bound for the drug ('maximum 3 mg/kg/day')."""
    if (
        limits is None
        or drug is None
        or q.is_range
        or q.qualifier not in ("up_to", "max", "at_least")
    ):
        return None
    for basis, lo, _ in dose_basis(q):
        for row in limits.rows_for(drug):
            bound = row.min if q.qualifier == "at_least" else row.max
            if row.basis == basis and lo == bound:
                return f"dose-limit table: {row.describe()}"
    return None


@dataclass(frozen=True)
class _Clause:
    """What every claim of one clause shares: worked out once per clause, not once per claim."""

    start: int
    end: int
    sentence: tuple[int, int]
    claims: list[Quantity]
    states_limit: bool
    scope: tuple[Passage, ...]  # passages the clause may cite, in citation order
    indexed: tuple[_Indexed, ...]  # the quantities of each passage in ``scope``
    missing: tuple[int, ...]  # cited numbers that are not among the passages
    sentence_drug: str | None  # the sentence's only drug, or ``drug`` when it names none
    has_per_kg_dose: bool  # whether a total in it may be a per-kg dose × a weight
    # Drugs the sentence names only to exclude them ("for patients who should not take
    # azathioprine"): its doses are some other drug's, never theirs.
    excluded: frozenset[str] = frozenset()
    # The sources the clause names, else its sentence ("UK SmPC: ...", "per KDIGO", a trial):
    # its figures are held to them (``_from_named``).
    sources: frozenset[str] = frozenset()


def _clause(
    answer: str,
    span: tuple[int, int, int, int],
    claims: list[Quantity],
    passages: Sequence[Passage],
    by_n: dict[int, Passage],
    extra: frozenset[str],
    mentions: Mentions,
    drug: str | None,
    may_state_limit: bool,
    excluded: Mentions = (),
) -> _Clause:
    cs, ce, ss, se = span
    clause_text = answer[cs:ce]
    cited = citations(clause_text) or citations(answer[ss:se])
    if cited:
        ordered = sorted(cited)
        missing = tuple(n for n in ordered if n not in by_n)
        scope = tuple(by_n[n] for n in ordered if n in by_n)
    else:
        missing, scope = (), tuple(passages)
    # For the limit check, a clause naming no drug takes its sentence's only drug, or ``drug``
    # when the sentence names none (never a guess between several).
    in_sentence = drugs_among(mentions, ss, se)
    sentence_drug = (
        next(iter(in_sentence)) if len(in_sentence) == 1 else None if in_sentence else drug
    )
    not_these = drugs_among(excluded, ss, se) if excluded else frozenset()
    if not_these and not in_sentence:
        sentence_drug = None  # not the asked drug either, when that is the one excluded
    return _new_clause(
        start=cs,
        end=ce,
        sentence=(ss, se),
        claims=claims,
        # A clause that states the limits ("within the limit of 3 mg/kg/day = 216 mg/day") gives
        # bounds, not doses: its numbers still need support, but are not dose-checked themselves.
        states_limit=may_state_limit and bool(_LIMIT_WORD_RE.search(clause_text)),
        scope=scope,
        indexed=tuple([_index(p.text, extra) for p in scope]),
        missing=missing,
        sentence_drug=sentence_drug,
        has_per_kg_dose=any(c.per_kg and c.kind == "dose" and c.unit == "mg" for c in claims),
        excluded=not_these,
        sources=frozenset(_named_sources(clause_text) or _named_sources(answer[ss:se])),
    )


_new_clause = fast_constructor(_Clause)


def _check_claim(
    answer: str,
    q: Quantity,
    clause: _Clause,
    passages: Sequence[Passage],
    extra: frozenset[str],
    mentions: Mentions,
    derivation_drugs: Sequence[str],
    patient: PatientContext | None,
    limits: LimitTable | None,
    indication: str | None,
    drug: str | None = None,
    prev_end: int = 0,
    asked: AskedScope | None = None,
    all_claims: Sequence[Quantity] = (),
    done: Sequence[ClaimVerdict] = (),
) -> ClaimVerdict:
    named = attached_drug_in(answer, mentions, q.span, lo=clause.start)
    limit_drug = named if named is not None else clause.sentence_drug

    arith = _arithmetic(answer, q, clause.claims, patient) if clause.has_per_kg_dose else None
    if arith is not None and not arith[0]:
        return _verdict(q, Status.OUT_OF_LIMITS, f"total does not follow: {arith[1]}", named)

    weight = patient.weight_kg if patient is not None else None
    states_limit = clause.states_limit
    if limits is not None and limit_drug is not None and q.kind == "dose" and not states_limit:
        # No weight here: a general range ("typically 100–200 mg/day") is not a patient dose;
        # patient doses are limit-checked with the weight by the calculator.
        # Within the clause only: "7.5 mg every morning; not weekly" states no weekly dose.
        weekly = q.per is None and bool(_WEEKLY_RE.search(answer, clause.start, clause.end))
        egfr, age = _patient_limits(patient)
        ok, why = limits.check(limit_drug, q, indication, weekly_stated=weekly, egfr=egfr,
                               age_years=age)  # fmt: skip
        if not ok:
            return _verdict(q, Status.OUT_OF_LIMITS, why, limit_drug)

    missing, scope = clause.missing, clause.scope
    drug_bound = q.kind in _DRUG_BOUND_KINDS
    # Other figures (durations, time points, counts, levels, ratios) are read against their
    # statement only when the question is given (an LLM draft's check): the composer's answers
    # restate source sentences whole, and pay nothing for it.
    scoped = asked is not None and q.kind in _SCOPED_KINDS
    claim_drugs: frozenset[str] | None = None
    # A number whose clause names no drug is about its sentence's only drug, else the drug
    # asked (when the caller says which).
    check_drug = (named if named is not None else clause.sentence_drug) if drug_bound else None
    wrong_drug: tuple[int, _SourceClaim] | None = None
    wrong_scope: tuple[int, _SourceClaim, str, DoseStatement | None] | None = None
    ctx: ClaimContext | None = None
    key = _key(q)
    for p, indexed in zip(scope, clause.indexed, strict=True):
        # _Indexed.equivalent written out, and the verdict built directly: this is the path
        # almost every claim takes, and a generator plus a keyword pass-through cost ~5 %.
        for src in indexed.by_key.get(key, ()):
            if not qualifiers_compatible(q.qualifier, src.q.qualifier):
                continue
            if not _drug_ok(check_drug, src, p, indexed.drugs):
                wrong_drug = wrong_drug or (p.n, src)
                continue
            st = _statement_at(p).get(src.q.span) if drug_bound or scoped else None
            if (
                drug_bound
                and clause.excluded
                and check_drug is None
                and _doses_excluded(st, src, clause.excluded)
            ):
                wrong_drug = wrong_drug or (p.n, src)
                continue
            if clause.sources:
                # First: the cheapest test, and a candidate of another source needs no other.
                other_source = _from_named(p, src.q.span[0], st, clause.sources)
                if other_source is not None:
                    wrong_scope = wrong_scope or (p.n, src, other_source, st)
                    continue
            if st is not None:
                if ctx is None:
                    ctx = claim_context(answer, q, clause.sentence, prev_end)
                if scoped and claim_drugs is None:
                    claim_drugs = drugs_among(mentions, *clause.sentence) or (
                        frozenset({drug}) if drug else frozenset()
                    )
                mismatch = _scope_mismatch(q, check_drug, st, ctx, claim_drugs or frozenset(),
                                           asked, p.text[st.sentence[0]:st.sentence[1]],
                                           src.drugs)  # fmt: skip
                if mismatch is None and asked is not None and q.kind == "dose":
                    mismatch = _step_mismatch(answer, q, clause, p, src, st)
                if mismatch is None and scoped:
                    mismatch = _reading_mismatch(answer, q, clause, all_claims, p, src, st,
                                                 claim_drugs or frozenset(), done)  # fmt: skip
                if mismatch is not None:
                    wrong_scope = wrong_scope or (p.n, src, mismatch, st)
                    continue
            if (asked is not None and asked.sources and asked.asks_dose and st is not None
                    and q.kind == "dose" and not clause.sources):  # fmt: skip
                mismatch = _asked_source_differs(p, st, asked, passages)
                if mismatch is not None:
                    wrong_scope = wrong_scope or (p.n, src, mismatch, st)
                    continue
            if (asked is not None and asked.sources and st is not None
                    and q.kind in _FREQUENCY_KINDS and not clause.sources):  # fmt: skip
                mismatch = _asked_source_frequency_differs(p, st, asked, passages)
                if mismatch is not None:
                    wrong_scope = wrong_scope or (p.n, src, mismatch, st)
                    continue
            return _claim_verdict(claim=q, status=Status.SUPPORTED, reason=f"stated in [{p.n}]",
                                  drug=named, passage_n=p.n, source_span=src.q.span,
                                  statement=st, role=ctx.role if ctx and st and st.role not in _PLAIN_ROLES else None)  # fmt: skip

    for d in _derived(q, named, passages, patient, limits, derivation_drugs):
        if d is not None:
            if not d.within_limits:
                return _verdict(q, Status.OUT_OF_LIMITS, f"derived dose {d.limit_note}", d.drug,
                                derivation=d, passage_n=d.passage_n or None)  # fmt: skip
            return _verdict(q, Status.DERIVED, d.explanation, d.drug, derivation=d,
                            passage_n=d.passage_n or None)  # fmt: skip
    if arith is not None and arith[0]:
        return _verdict(q, Status.DERIVED, arith[1], named, derivation=arith[2])
    if q.kind == "weight" and weight is not None and q.low == q.high == weight:
        return _verdict(q, Status.DERIVED, "the patient's weight", named)
    fact = _patient_fact(q, patient)
    if fact is not None:
        return _verdict(q, Status.DERIVED, fact, named)
    bound = _limit_bound(q, limit_drug, limits) if states_limit else None
    if bound is not None:
        return _verdict(q, Status.DERIVED, bound, limit_drug)

    for p in scope:
        for src in _index(p.text, extra).claims:
            s = src.q
            if not _same_numbers(q, s):
                continue
            same_per = s.per == q.per or (s.per in (None, "dose") and q.per in (None, "dose"))
            if _time_point_of(answer, q, s):
                st = _statement_at(p).get(s.span) if asked is not None else None
                late = (
                    _reading_mismatch(answer, q, clause, all_claims, p, src, st,
                                      drugs_among(mentions, *clause.sentence), done, words=False)
                    if st is not None
                    else None
                )  # fmt: skip
                if late is None and clause.sources:
                    late = _from_named(p, s.span[0], st, clause.sources)
                if late is not None:
                    wrong_scope = wrong_scope or (p.n, src, late, st)
                    continue
                return _verdict(q, Status.SUPPORTED, f"stated in [{p.n}] ({s.text})", named,
                                passage_n=p.n, source_span=s.span)  # fmt: skip
            if (s.low, s.high, s.unit, s.kind, s.per_kg, s.per_m2, s.per_count) == (
                q.low, q.high, q.unit, q.kind, q.per_kg, q.per_m2, q.per_count
            ) and same_per:  # fmt: skip
                if not qualifiers_compatible(q.qualifier, s.qualifier):
                    return _verdict(q, Status.UNSUPPORTED,
                                    f"[{p.n}] gives {s.text!r} with the opposite bound", named,
                                    passage_n=p.n, source_span=s.span)  # fmt: skip
                continue
            return _verdict(q, Status.UNIT_MISMATCH, f"[{p.n}] gives {s.text!r}", named,
                            passage_n=p.n, source_span=s.span)  # fmt: skip

    if wrong_scope is not None:
        n, src, mismatch, st = wrong_scope
        return _verdict(q, Status.UNSUPPORTED, f"[{n}] {mismatch}", named, passage_n=n,
                        source_span=src.q.span, statement=st)  # fmt: skip
    if wrong_drug is not None:
        n, src = wrong_drug
        where = ", ".join(sorted(src.drugs)) or "another drug"
        whose = check_drug or "a drug the sentence does not rule out"
        return _verdict(q, Status.UNSUPPORTED, f"[{n}] gives this for {where}, not {whose}",
                        named, passage_n=n, source_span=src.q.span)  # fmt: skip
    if missing and not scope:
        cited_txt = ", ".join(f"[{n}]" for n in missing)
        return _verdict(q, Status.UNSUPPORTED, f"cites {cited_txt}, not among the passages", named)
    for p in scope:
        for src in _index(p.text, extra).claims:
            s = src.q
            if (s.low, s.high) == (q.high, q.low) and q.is_range and s.unit == q.unit:
                return _verdict(q, Status.UNSUPPORTED, f"range ends swapped; [{p.n}] gives "
                                f"{s.text!r}", named, passage_n=p.n, source_span=s.span)  # fmt: skip
    where = ", ".join(f"[{p.n}]" for p in scope) or "the passages"
    return _verdict(q, Status.UNSUPPORTED, f"not found in {where}", named)


def _derived(
    q: Quantity,
    named: str | None,
    passages: Sequence[Passage],
    patient: PatientContext | None,
    limits: LimitTable | None,
    drugs: Sequence[str],
) -> Iterable[Derivation | None]:
    if patient is None or q.kind != "dose":
        return
    for d in drugs:
        if named is None or named == d:
            yield derivation_for(passages, patient, limits, d, q)


def _supported_in(
    q: Quantity, ns: Sequence[int], by_n: dict[int, Passage], extra: frozenset[str], drug: str
) -> tuple[int, tuple[int, int]] | None:
    """(passage n, source span) of the first cited passage stating ``q`` for ``drug``."""
    for n in ns:
        p = by_n.get(n)
        if p is None:
            continue
        indexed = _index(p.text, extra)
        for src in indexed.equivalent(q, _key(q)):
            if _drug_ok(drug if q.kind in _DRUG_BOUND_KINDS else None, src, p, indexed.drugs):
                return n, src.q.span
    return None


def _derivation_lines(
    answer: str,
    claims: Sequence[Quantity],
    passages: Sequence[Passage],
    by_n: dict[int, Passage],
    extra: frozenset[str],
    patient: PatientContext,
    limits: LimitTable | None,
    drugs: Sequence[str],
) -> dict[int, ClaimVerdict]:
    """Verdicts (by claim index) for the numbers of derivation lines; see the module docstring."""
    out: dict[int, ClaimVerdict] = {}
    for i, q in enumerate(claims):
        if i in out or q.kind != "dose":
            continue
        for d in drugs:
            found = next(
                (
                    dv
                    for dv in derivations_for(passages, patient, limits, d, q)
                    if dv.passage_n > 0 and answer.endswith(dv.explanation, 0, q.span[1])
                ),
                None,
            )
            if found is not None and not _line_names_another_drug(answer, q, found, extra):
                out.update(_line_verdicts(answer, claims, i, found, by_n, extra, passages,
                                          patient, limits))  # fmt: skip
                break
    return out


def _line_names_another_drug(
    answer: str, q: Quantity, dv: Derivation, extra: frozenset[str]
) -> bool:
    """Does the answer's line put another drug's name or a phase before the derivation it
    repeats ("methotrexate 2 mg/kg/day × 75 kg = ...", "a starting dose of 2 mg/kg/day × ...",
    where the calculation is azathioprine's from a maintenance dose)? The line then says more
    than the calculation does: its numbers are checked as claims, not as a derivation."""
    start = q.span[1] - len(dv.explanation)
    line = answer[answer.rfind("\n", 0, start) + 1 : start]
    if not line.strip(" -*:"):
        return False
    if any(not same_drug(name, dv.drug) for _, name in drugs_in(line, extra)):
        return True
    return asked_scope(line).role is not None


def _line_verdicts(
    answer: str,
    claims: Sequence[Quantity],
    last: int,
    dv: Derivation,
    by_n: dict[int, Passage],
    extra: frozenset[str],
    passages: Sequence[Passage],
    patient: PatientContext,
    limits: LimitTable | None,
) -> dict[int, ClaimVerdict]:
    out: dict[int, ClaimVerdict] = {}
    line_start = claims[last].span[1] - len(dv.explanation)
    step_start = line_start
    bounds: list[tuple[int, int, tuple[int, ...]]] = []
    for step in dv.steps:
        ns = tuple(int(n) for n in _FROM_RE.findall(step))
        bounds.append((step_start, step_start + len(step), ns))
        step_start += len(step) + 2  # "; "
    for i, c in enumerate(claims):
        if not line_start <= c.span[0] < claims[last].span[1]:
            continue
        if i == last:
            status = Status.DERIVED if dv.within_limits else Status.OUT_OF_LIMITS
            reason = dv.explanation if dv.within_limits else f"derived dose {dv.limit_note}"
            out[i] = _verdict(c, status, reason, dv.drug, derivation=dv, passage_n=dv.passage_n)
            continue
        if c.kind == "weight" and c.low == c.high == patient.weight_kg:
            out[i] = _verdict(c, Status.DERIVED, "the patient's weight", dv.drug)
            continue
        ns = next((b[2] for b in bounds if b[0] <= c.span[0] < b[1]), ())
        if any(quantities_equivalent(c, inp) for inp in dv.inputs):
            hit = _supported_in(c, (*ns, dv.passage_n), by_n, extra, dv.drug)
            if hit is not None:
                out[i] = _verdict(c, Status.SUPPORTED, f"stated in [{hit[0]}] (derivation input)",
                                  dv.drug, passage_n=hit[0], source_span=hit[1])  # fmt: skip
                continue
        mid = derivation_for(passages, patient, limits, dv.drug, c)
        if mid is not None and mid.passage_n > 0:
            status = Status.DERIVED if mid.within_limits else Status.OUT_OF_LIMITS
            reason = mid.explanation if mid.within_limits else f"derived dose {mid.limit_note}"
            out[i] = _verdict(c, status, reason, dv.drug, derivation=mid,
                              passage_n=mid.passage_n)  # fmt: skip
    return out


def _patient_limits(patient: PatientContext | None) -> tuple[Decimal | None, Decimal | None]:
    """The patient context the limit rows can use: (kidney function, age)."""
    if patient is None:
        return None, None
    return patient.kidney_function, patient.age_years


def _patient_fact(q: Quantity, patient: PatientContext | None) -> str | None:
    """A restated patient value ("82 years", "eGFR 25 mL/min/1.73 m²") is the patient's own,
    not a source figure."""
    if patient is None or q.is_range:
        return None
    if q.kind == "duration" and q.unit == "year" and q.per is None and q.low == patient.age_years:
        return "the patient's age"
    if q.kind == "lab" and q.unit == "mL/min/1.73m2" and q.low == patient.egfr:
        return "the patient's eGFR"
    if q.kind == "lab" and q.unit == "mL/min" and q.low == patient.crcl:
        return "the patient's creatinine clearance"
    return None


def _same_value(a: Quantity, b: Quantity) -> bool:
    return (a.low, a.high, a.per, a.per_kg, a.per_count) == (
        b.low, b.high, b.per, b.per_kg, b.per_count
    )  # fmt: skip


def _derivation_drugs(mentions: Mentions, drug: str | None) -> list[str]:
    """``drug`` first, then every other drug the answer names (derivations are lazy)."""
    named = sorted({n for _, n in mentions})
    if drug:
        first = drug.lower().strip()
        return [first] + [n for n in named if n != first]
    return named


def _about_the_asked_drug(verdicts: list[ClaimVerdict], asked: Sequence[str]) -> list[ClaimVerdict]:
    """An answer none of whose doses is about a drug asked is not an answer to the question,
    however true its figures: each of its doses is unsupported. (A companion drug's dose beside
    the asked drug's - prednisolone with azathioprine in autoimmune hepatitis - stays; so do
    percentages and other figures that dose nothing, such as a genotype's frequency.)"""
    bound = [v for v in verdicts if v.claim.kind in _DRUG_BOUND_KINDS]
    if not any(v.claim.kind == "dose" for v in bound) or any(
        v.drug is None or any(same_drug(v.drug, a) for a in asked) for v in bound
    ):
        return verdicts
    names = " or ".join(asked)
    return [
        _verdict(
            v.claim,
            Status.UNSUPPORTED,
            f"about {v.drug}, not {names}, the drug asked about",
            v.drug,
            passage_n=v.passage_n,
            source_span=v.source_span,
        )  # fmt: skip
        if v.claim.kind == "dose" and v.status.verified
        else v
        for v in verdicts
    ]


def _check(
    answer: str,
    passages: Sequence[Passage],
    patient: PatientContext | None,
    limits: LimitTable | None,
    drug: str | None,
    indication: str | None,
    also_asked: Sequence[str] = (),
    question: str | None = None,
) -> AnswerVerdict:
    if not isinstance(answer, str):
        raise TypeError(f"answer must be text, got {type(answer).__name__}")
    passages = list(passages)
    for p in passages:
        if not isinstance(p, Passage) or not isinstance(p.text, str):
            raise TypeError(f"passages must be Passage objects, got {type(p).__name__}")
    claims = parse_quantities(answer)
    by_n = {p.n: p for p in passages}
    unread = _unread_verdicts(answer, passages, by_n)
    if not claims:
        return AnswerVerdict(claims=unread, passed=not unread, failed=unread)
    extra = frozenset(
        [d for p in passages for d in p.drugs]
        + (sorted(limits.drugs) if limits is not None else [])
        + ([drug.lower()] if drug else [])
    )
    mentions = mentions_in(answer, extra)
    excluded = _excluded_mentions(answer, mentions)
    if excluded:
        mentions = tuple(m for m in mentions if m not in excluded)
    derivation_drugs = _derivation_drugs(mentions, drug)
    spans = clauses(answer)
    whole = (0, len(answer), 0, len(answer))
    clause_of: list[tuple[int, int, int, int]] = []
    i = 0
    for q in claims:  # claims and clauses are both in text order: one merge pass
        while i < len(spans) and spans[i][1] <= q.span[0]:
            i += 1
        clause_of.append(spans[i] if i < len(spans) and spans[i][0] <= q.span[0] else whole)
    by_clause: dict[tuple[int, int, int, int], list[Quantity]] = {}
    for q, span in zip(claims, clause_of, strict=True):
        by_clause.setdefault(span, []).append(q)
    lines = (
        _derivation_lines(
            answer, claims, passages, by_n, extra, patient, limits, derivation_drugs
        )  # fmt: skip
        if patient is not None
        else {}
    )
    # Few answers say "limit": one look at the whole answer spares a search of every clause
    # (IGNORECASE pairs 'ı' and 'İ' with 'i', which lower() does not: those answers search).
    may_state_limit = "limit" in lowered(answer) or has_case_fold_trap(answer)
    scopes: dict[tuple[int, int, int, int], _Clause] = {}
    verdicts = []
    asked = drug.lower().strip() if drug else None
    scope = None
    if question:
        named_drugs = tuple(d for d in (asked, *(a.lower().strip() for a in also_asked)) if d)
        scope = asked_scope(question, named_drugs)
        scope = None if scope.empty and not scope.drugs else scope
    prev_end = 0
    for i, (q, span) in enumerate(zip(claims, clause_of, strict=True)):
        # The previous number of the same sentence: a role cue before it is not this one's.
        this_prev = prev_end if i and clause_of[i - 1][2] == span[2] else span[2]
        prev_end = q.span[1]
        if i in lines:
            verdicts.append(lines[i])
            continue
        clause = scopes.get(span)
        if clause is None:
            clause = scopes[span] = _clause(answer, span, by_clause[span], passages, by_n, extra,
                                            mentions, drug, may_state_limit, excluded)  # fmt: skip
        verdicts.append(
            _check_claim(
                answer,
                q,
                clause,
                passages,
                extra,
                mentions,
                derivation_drugs,
                patient,
                limits,
                indication,
                asked,
                this_prev,
                scope,
                claims,
                verdicts,
            )  # fmt: skip
        )
    if asked is not None:
        asked_all = tuple(dict.fromkeys((asked, *(a.lower().strip() for a in also_asked))))
        verdicts = _about_the_asked_drug(verdicts, asked_all)
    if unread:
        verdicts = sorted([*verdicts, *unread], key=lambda v: v.claim.span)
    failed = tuple(v for v in verdicts if not v.status.verified)
    return AnswerVerdict(claims=tuple(verdicts), passed=not failed, failed=failed)


_ORDINALS = {"1st": "first", "2nd": "second", "3rd": "third", "4th": "fourth", "5th": "fifth",
             "6th": "sixth", "7th": "seventh", "8th": "eighth", "9th": "ninth", "10th": "tenth",
             "12th": "twelfth", "20th": "twentieth"}  # fmt: skip


def _written_in(token: str, text: str) -> bool:
    """Is ``token`` written in ``text`` as a whole token (any case), or an ordinal as its word?"""
    low = lowered(text)
    forms = [token.lower()]
    lead = token.lower().split("-", 1)
    if lead[0] in _ORDINALS:  # "2nd-line" = "second-line"
        forms.append("-".join([_ORDINALS[lead[0]], *lead[1:]]))
    for form in forms:
        at = low.find(form)
        while at >= 0:
            end = at + len(form)
            if (at == 0 or not low[at - 1].isalnum()) and (
                end == len(low) or not low[end].isalnum()
            ):
                return True
            at = low.find(form, at + 1)
    return False


def _unread_verdicts(
    answer: str, passages: Sequence[Passage], by_n: dict[int, Passage]
) -> tuple[ClaimVerdict, ...]:
    """A failed verdict for each token with a digit the parser could not read ("the 19th day",
    "DOTN12", "20-TGN") that no passage it may come from writes the same way: fail closed
    rather than let an unchecked digit through. Names with digits (NUDT15, 6-TGN, TPMT*3A) are
    not among them (``unread_tokens``); a token a passage writes the same way is a copy of it,
    not a figure to check, and is not reported."""
    spans = unread_tokens(answer)
    if not spans:
        return ()
    sentences = clauses(answer)
    out = []
    for a, b in spans:
        token = answer[a:b]
        sent = next(((ss, se) for _, _, ss, se in sentences if ss <= a < se), (0, len(answer)))
        cited = citations(answer[sent[0] : sent[1]])
        scope = [by_n[n] for n in sorted(cited) if n in by_n] if cited else passages
        if any(_written_in(token, p.text) for p in scope):
            continue
        digits = next(iter(re.findall(r"\d+", token)), "0")
        q = Quantity(text=token, span=(a, b), low=Decimal(digits), high=Decimal(digits), unit="",
                     kind="unread")  # fmt: skip
        where = ", ".join(f"[{p.n}]" for p in scope) or "the passages"
        out.append(_verdict(q, Status.UNSUPPORTED,
                            f"a number the guard cannot read, not written so in {where}", None))  # fmt: skip
    return tuple(out)


def check_answer(
    answer: str,
    passages: Sequence[Passage],
    patient: PatientContext | None = None,
    limits: LimitTable | None = None,
    drug: str | None = None,
    indication: str | None = None,
    *,
    also_asked: Sequence[str] = (),
    question: str | None = None,
) -> AnswerVerdict:
    """Verdict over every number in ``answer``; never raises, never passes on error.

    ``limits=None`` skips limit checks (pass ``load_limits()`` in production); ``indication``
    narrows which limit rows apply (None: all but oncologic rows). ``drug`` is the drug asked;
    ``also_asked`` the others a question names ("prednisone ... azathioprine"). ``question``,
    when given, is what was asked: a number whose sentence leaves its indication, phase,
    population, phenotype, source or transplanted organ unsaid is read as about what the
    question names, and a statement whose conditions (phenotype, co-medication, kidney or liver
    function) neither the sentence nor the question states does not support it.
    """
    try:
        return _check(answer, passages, patient, limits, drug, indication, also_asked, question)
    except Exception as exc:  # fail closed: an error must withhold the answer, not crash the app
        return AnswerVerdict(claims=(), passed=False, error=f"{type(exc).__name__}: {exc}")
