"""Typed results of the retrieval chain, as the app, the CLI and the evals consume them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from guardrails.model import DoseStatement, Passage

__all__ = ["AnswerResult", "Citation", "ClaimView", "Explanation", "RetrievedChunk"]


@dataclass(frozen=True)
class RetrievedChunk:
    chunk_id: str
    doc_id: str
    title: str
    section: str
    text: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def passage(self, n: int) -> Passage:
        """This chunk as the guard's passage [n], with what its dose statements read: the
        document's drugs, indications and kind, and the kind of each source it cites."""
        m = self.metadata
        return Passage(
            n=n,
            text=self.text,
            doc_id=self.doc_id,
            section=self.section,
            drugs=tuple(m.get("drugs", ())),
            indications=tuple(m.get("indications", ())),
            evidence=tuple((s.id, s.kind) for s in m.get("sources", ()) if hasattr(s, "kind")),
            doc_kind=str(m.get("doc_kind", "")),
        )

    @cached_property
    def statements(self) -> tuple[DoseStatement, ...]:
        """The guard's dose statements of this chunk (``statements_of(passage(0))``), found
        once per chunk: the composer asks for them for every candidate sentence."""
        from guardrails.statements import statements_of

        return statements_of(self.passage(0))


@dataclass(frozen=True)
class Citation:
    n: int
    doc_id: str
    title: str
    section: str
    excerpt: str
    source_reference: str
    review_status: str = "draft"
    last_reviewed: str = ""
    doc_kind: str = "article"
    highlights: tuple[tuple[int, int], ...] = ()  # spans in excerpt of supporting numbers
    evidence: str = ""  # the cited sources' evidence tags: "guideline, trial", "label", ...
    # spans in excerpt of the sentences the answer cites (excerpt keeps its [@id] markers: it is
    # the guard's passage; displays strip them with assistant.compose.excerpt_view)
    sentences: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Explanation:
    """Why the composer chose one line of an answer (``dosewise ask --explain``)."""

    place: str  # "direct answer", a section name, "Safety", "For this patient"
    why: str  # the layout's reason: "the best-ranked statement of the asked section", ...
    text: str  # the source sentence, without markers
    source: str  # "document id > section"
    score: float | None = None  # its rank score (None: not ranked, e.g. a patient rule)
    reasons: tuple[str, ...] = ()  # what made up the score: "indication match (+2.0)", ...

    def describe(self) -> str:
        score = f" score {self.score:g}" if self.score is not None else ""
        head = f"[{self.place}] {self.why}{score} — {self.source}"
        lines = [head, f"    {self.text}"]
        if self.reasons:
            lines.append("    " + "; ".join(self.reasons))
        return "\n".join(lines)


@dataclass(frozen=True)
class ClaimView:
    text: str
    status: str  # guardrails Status value
    citation_n: int | None
    span: tuple[int, int]
    derivation: str = ""
    reason: str = ""
    # What the number doses, from the source statement that supports it.
    drug: str | None = None
    role: str = ""  # "maintenance", "initial", ... (the statement's; "" when none supports it)
    statement_id: str = ""
    statement: str = ""  # "maintenance dose, lupus nephritis, kdigo-2024-ln, Dosing [guideline]"


@dataclass(frozen=True)
class AnswerResult:
    """status: 'verified' | 'blocked' | 'abstained' | 'rejected' (bad input).

    ``answer`` is Markdown and is only ever the text that passed the guard (or an abstention /
    withheld notice). ``note`` explains a fallback, e.g. which LLM numbers failed."""

    status: str
    answer: str
    summary: str
    citations: tuple[Citation, ...] = ()
    claims: tuple[ClaimView, ...] = ()
    note: str = ""
    backend: str = "composer"
    question: str = ""
    resolved_question: str = ""
    drug: str | None = None
    indication: str | None = None
    # Drugs the question named that the index does not cover (the answer abstained on them):
    # a follow-up inherits them, never an earlier drug.
    uncovered_drugs: tuple[str, ...] = ()
    followups: tuple[str, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    retrieved: tuple[RetrievedChunk, ...] = ()
    explanations: tuple[Explanation, ...] = ()  # why each line was chosen (composer answers)

    @property
    def badge(self) -> str:
        verified = sum(1 for c in self.claims if c.status in ("supported", "derived"))
        return f"{verified} of {len(self.claims)} numbers verified"

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "answer": self.answer,
            "summary": self.summary,
            "note": self.note,
            "backend": self.backend,
            "citations": [
                {
                    "n": c.n,
                    "document_id": c.doc_id,
                    "title": c.title,
                    "section": c.section,
                    "excerpt": c.excerpt,
                    "source_reference": c.source_reference,
                    "review_status": c.review_status,
                    "doc_kind": c.doc_kind,
                    "evidence": c.evidence,
                }
                for c in self.citations
            ],
            "claims": [
                {
                    "text": c.text,
                    "status": c.status,
                    "citation_n": c.citation_n,
                    "span": list(c.span),
                    "derivation": c.derivation,
                    "drug": c.drug,
                    "role": c.role,
                    "statement_id": c.statement_id,
                    "statement": c.statement,
                }
                for c in self.claims
            ],
            "timings_ms": self.timings_ms,
        }
