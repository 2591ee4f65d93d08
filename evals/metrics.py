"""Deterministic scoring of one answer and aggregation over a run.

Every function here is pure: it scores plain values (answer text, claim views, passage texts), so
the same code scores Dosewise and the baseline, and unit tests feed it hand-made results.
Numbers are compared with the guard's own parser and equivalence (``100–200 mg daily`` equals
``100-200 mg/day``), never by string equality.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from guardrails import parse_quantities, quantities_equivalent
from guardrails.model import Quantity

__all__ = [
    "CitationScore",
    "GuardOutcome",
    "ItemOutcome",
    "NumberMatch",
    "StatementView",
    "aggregate_guard",
    "aggregate_items",
    "citation_scores",
    "answers_another_drug",
    "match_numbers",
    "percentile",
    "retrieval_scores",
    "split_statements",
]

_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_WS = re.compile(r"\s+")
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})
# A statement ends at a line break or at sentence punctuation followed by a space; "0.5" has no
# space after the dot, so decimals never split a statement.
_STATEMENT_END = re.compile(r"\n+|(?<=[.!?;])\s+")


@dataclass(frozen=True)
class NumberMatch:
    found: tuple[str, ...]
    missing: tuple[str, ...]
    shown: int  # quantities in the answer
    on_target: int  # answer quantities equivalent to some expected number


@dataclass(frozen=True)
class CitationScore:
    """ALCE-style citation quality with deterministic number matching.

    A statement is a sentence or line holding at least one non-derived number. Recall: statements
    whose every such number appears (equivalently) in the union of the passages they cite.
    Precision: citation markers on those statements whose passage contains at least one of the
    statement's numbers."""

    statements: int = 0
    statements_supported: int = 0
    citations: int = 0
    citations_correct: int = 0


@dataclass(frozen=True)
class StatementView:
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ItemOutcome:
    """One question through one system (``dosewise`` or ``baseline``)."""

    id: str
    system: str
    tags: tuple[str, ...]
    question: str
    status: str  # verified | blocked | abstained | rejected | error | shown (baseline)
    answer: str
    latency_ms: float
    retrieved_doc_ids: tuple[str, ...] = ()
    expected_sources: tuple[str, ...] = ()
    recall_at_4: float | None = None
    recall_at_k: float | None = None
    reciprocal_rank: float | None = None
    expected_numbers: tuple[str, ...] = ()
    numbers_found: tuple[str, ...] = ()
    numbers_missing: tuple[str, ...] = ()
    numbers_shown: int = 0
    numbers_on_target: int = 0
    sources_shown: int = 0  # entries of the answer's source list (one per passage)
    words_shown: int = 0  # words of the answer body (without the source list)
    claims_total: int = 0
    claims_verified: int = 0
    unverified_shown: int = 0
    citation: CitationScore | None = None
    out_of_corpus: bool = False
    expects_error: bool = False
    abstention_ok: bool | None = None
    rejection_ok: bool | None = None
    must_not_contain_hits: tuple[str, ...] = ()
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shown(self) -> bool:
        """Whether the answer text reached the user as an answer (not withheld/refused)."""
        return self.status in ("verified", "shown")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GuardOutcome:
    """One answer text through the guard alone."""

    id: str
    origin: str  # answers_file | mutation
    kind: str  # "original" or the mutation kind
    expect: str  # pass | block
    verdict: str  # pass | block
    claims: int = 0
    failed: tuple[str, ...] = ()
    error: str = ""
    answer: str = ""
    detail: str = ""  # mutants: "original -> mutated"

    @property
    def correct(self) -> bool:
        return self.expect == self.verdict

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _norm_text(text: str) -> str:
    return _WS.sub(" ", text.translate(_DASHES)).strip().lower()


def _has_equivalent(q: Quantity, pool: Sequence[Quantity]) -> bool:
    return any(quantities_equivalent(q, other) for other in pool)


def match_numbers(expected: Sequence[str], answer: str) -> NumberMatch:
    """Which expected quantity strings the answer states. An expected string counts as found when
    every quantity parsed from it has an equivalent in the answer; a string the parser cannot read
    falls back to whitespace/dash-normalised substring matching, so nothing is silently dropped."""
    shown = parse_quantities(answer) if answer else ()
    found: list[str] = []
    missing: list[str] = []
    targets: list[Quantity] = []
    for exp in expected:
        wanted = parse_quantities(exp)
        targets.extend(wanted)
        if wanted:
            ok = all(_has_equivalent(w, shown) for w in wanted)
        else:
            ok = bool(_norm_text(exp)) and _norm_text(exp) in _norm_text(answer)
        (found if ok else missing).append(exp)
    on_target = sum(1 for q in shown if _has_equivalent(q, targets))
    return NumberMatch(tuple(found), tuple(missing), len(shown), on_target)


def retrieval_scores(
    expected_sources: Sequence[str], ranked_doc_ids: Sequence[str], k: int
) -> tuple[float | None, float | None, float | None]:
    """(recall@4, recall@k, reciprocal rank) over the ranked *chunks* (one doc id per chunk), so a
    system that returns more chunks gains nothing at a fixed cut-off; None when the item names no
    expected source."""
    if not expected_sources:
        return None, None, None
    ranking = list(ranked_doc_ids)
    wanted = set(expected_sources)

    def recall(cut: int) -> float:
        return len(wanted & set(ranking[:cut])) / len(wanted)

    rr = 0.0
    for rank, doc in enumerate(ranking, start=1):
        if doc in wanted:
            rr = 1.0 / rank
            break
    return recall(4), recall(k), rr


def split_statements(answer: str) -> list[StatementView]:
    out: list[StatementView] = []
    pos = 0
    for m in _STATEMENT_END.finditer(answer):
        if m.start() > pos:
            out.append(StatementView(pos, m.start(), answer[pos : m.start()]))
        pos = m.end()
    if pos < len(answer):
        out.append(StatementView(pos, len(answer), answer[pos:]))
    return [s for s in out if s.text.strip()]


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def citation_scores(
    answer: str,
    passages: Mapping[int, str],
    derived_spans: Iterable[tuple[int, int]] = (),
) -> CitationScore:
    """Score the ``[n]`` markers of an answer against the passages they point to.

    ``derived_spans`` are answer spans of numbers the calculator produced (e.g. a patient's
    150 mg/day): their support is the derivation, not a passage, so they are left out here."""
    derived = list(derived_spans)
    quantities = [
        q for q in parse_quantities(answer) if not any(_overlaps(q.span, d) for d in derived)
    ]
    parsed_passages: dict[int, tuple[Quantity, ...]] = {}

    def passage_quantities(n: int) -> tuple[Quantity, ...]:
        if n not in parsed_passages:
            parsed_passages[n] = parse_quantities(passages.get(n, ""))
        return parsed_passages[n]

    statements = supported = citations = correct = 0
    for st in split_statements(answer):
        nums = [q for q in quantities if st.start <= q.span[0] < st.end]
        if not nums:
            continue
        statements += 1
        cited = [int(n) for m in _CITE.finditer(st.text) for n in re.split(r"[,;]", m.group(1))]
        pool: list[Quantity] = []
        for n in cited:
            pq = passage_quantities(n)
            pool.extend(pq)
            citations += 1
            if any(_has_equivalent(q, pq) for q in nums):
                correct += 1
        if cited and all(_has_equivalent(q, pool) for q in nums):
            supported += 1
    return CitationScore(statements, supported, citations, correct)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def answers_another_drug(item: ItemOutcome) -> bool:
    """An answered item that cites a document about a drug other than the one it expects
    (``expected.drugs``; the main drug of each cited document). Items naming no expected drug
    are not counted: there is nothing to compare with."""
    expected = set(item.extra.get("expected_drugs") or ())
    cited = item.extra.get("cited_drugs") or {}
    if not item.shown or not expected or not cited:
        return False
    return any(drug and drug not in expected for drug in cited.values())


def _summarise(items: Sequence[ItemOutcome]) -> dict[str, Any]:
    in_corpus = [i for i in items if not i.out_of_corpus and not i.expects_error]
    ooc = [i for i in items if i.out_of_corpus and not i.expects_error]
    with_numbers = [i for i in in_corpus if i.expected_numbers]
    shown = [i for i in items if i.shown]
    cites = [i.citation for i in shown if i.citation is not None]
    expected_total = sum(len(i.expected_numbers) for i in with_numbers)
    found_total = sum(len(i.numbers_found) for i in with_numbers)
    lat = [i.latency_ms for i in items if not i.error]
    mnc = [i for i in items if i.must_not_contain_hits]
    return {
        "n": len(items),
        "errors": sum(1 for i in items if i.error),
        "recall_at_4": _mean(i.recall_at_4 for i in items),
        "recall_at_k": _mean(i.recall_at_k for i in items),
        "mrr": _mean(i.reciprocal_rank for i in items),
        "key_number_recall": _ratio(found_total, expected_total),
        "key_number_recall_items": _mean(
            len(i.numbers_found) / len(i.expected_numbers) for i in with_numbers
        ),
        "numbers_shown_per_answer": _ratio(sum(i.numbers_shown for i in shown), len(shown)),
        "sources_per_answer": _ratio(sum(i.sources_shown for i in shown), len(shown)),
        "words_per_answer": _ratio(sum(i.words_shown for i in shown), len(shown)),
        "key_number_focus": _ratio(
            sum(i.numbers_on_target for i in with_numbers if i.shown),
            sum(i.numbers_shown for i in with_numbers if i.shown),
        ),
        "claims_in_shown_answers": sum(i.claims_total for i in shown),
        "number_precision": _ratio(
            sum(i.claims_verified for i in shown), sum(i.claims_total for i in shown)
        ),
        "unverified_numbers_shown": sum(i.unverified_shown for i in shown),
        "citation_precision": _ratio(
            sum(c.citations_correct for c in cites), sum(c.citations for c in cites)
        ),
        "citation_recall": _ratio(
            sum(c.statements_supported for c in cites), sum(c.statements for c in cites)
        ),
        "answered_rate": _ratio(sum(1 for i in in_corpus if i.shown), len(in_corpus)),
        "abstention_correct": _ratio(
            sum(1 for i in in_corpus + ooc if i.abstention_ok), len(in_corpus + ooc)
        ),
        "out_of_corpus_abstained": _ratio(sum(1 for i in ooc if i.abstention_ok), len(ooc)),
        "false_abstention_rate": _ratio(
            sum(1 for i in in_corpus if i.status == "abstained"), len(in_corpus)
        ),
        "numbers_shown_out_of_corpus": sum(i.numbers_shown for i in ooc if i.shown),
        "bad_input_rejected": _ratio(
            sum(1 for i in items if i.expects_error and i.rejection_ok),
            sum(1 for i in items if i.expects_error),
        ),
        "must_not_contain_violations": len(mnc),
        "answers_about_another_drug": sum(1 for i in shown if answers_another_drug(i)),
        "latency_p50_ms": percentile(lat, 50),
        "latency_p95_ms": percentile(lat, 95),
    }


def aggregate_items(items: Sequence[ItemOutcome]) -> dict[str, Any]:
    """Overall and per-tag summaries. A metric is None where no item could measure it."""
    tags = sorted({t for i in items for t in i.tags})
    return {
        "overall": _summarise(items),
        "by_tag": {t: _summarise([i for i in items if t in i.tags]) for t in tags},
    }


def aggregate_guard(outcomes: Sequence[GuardOutcome]) -> dict[str, Any]:
    """Catch rate (blocked among expect=block) and false-block rate (blocked among expect=pass),
    overall, per origin and per mutation kind, with the 2×2 confusion matrix."""

    def summary(group: Sequence[GuardOutcome]) -> dict[str, Any]:
        bad = [o for o in group if o.expect == "block"]
        good = [o for o in group if o.expect == "pass"]
        return {
            "n": len(group),
            "catch_rate": _ratio(sum(1 for o in bad if o.verdict == "block"), len(bad)),
            "false_block_rate": _ratio(sum(1 for o in good if o.verdict == "block"), len(good)),
            "confusion": {
                f"expect_{e}": {
                    f"verdict_{v}": sum(1 for o in group if o.expect == e and o.verdict == v)
                    for v in ("pass", "block")
                }
                for e in ("pass", "block")
            },
            "guard_errors": sum(1 for o in group if o.error),
        }

    origins = sorted({o.origin for o in outcomes})
    kinds = sorted({o.kind for o in outcomes if o.origin == "mutation"})
    return {
        "overall": summary(outcomes),
        "by_origin": {g: summary([o for o in outcomes if o.origin == g]) for g in origins},
        "by_mutation_kind": {
            k: summary([o for o in outcomes if o.origin == "mutation" and o.kind == k])
            for k in kinds
        },
    }
