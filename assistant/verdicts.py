"""Checking an answer written elsewhere: passages from plain JSON, the drug the question is
about, and the guard verdict as JSON. ``dosewise check --json`` and ``POST /v1/check`` both go
through these, so a verdict reads the same wherever it is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.vocabulary import DRUG_SYNONYMS, Vocabulary
from guardrails.model import AnswerVerdict, Passage

__all__ = ["drug_for_passages", "passages_from_items", "verdict_json"]


def passages_from_items(items: Any) -> tuple[Passage, ...]:
    """Passages from a JSON list of ``{n, text[, doc_id, section, drugs, indications,
    doc_kind]}``; ``n`` defaults to
    the position (from 1). ValueError names the first unusable item."""
    if not isinstance(items, list):
        raise ValueError("expected a list of passages")
    passages: list[Passage] = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise ValueError(f"passage {i}: expected an object with a 'text' string")
        drugs = item.get("drugs", ())
        if isinstance(drugs, str) or not all(isinstance(d, str) for d in drugs or ()):
            raise ValueError(f"passage {i}: 'drugs' must be a list of drug names")
        try:
            n = int(item.get("n", i))
        except (TypeError, ValueError):
            raise ValueError(f"passage {i}: 'n' must be a whole number") from None
        passages.append(
            Passage(
                n=n,
                text=item["text"],
                doc_id=str(item.get("doc_id", "")),
                section=str(item.get("section", "")),
                drugs=tuple(drugs or ()),
                indications=tuple(str(x) for x in item.get("indications", ()) or ()),
                doc_kind=str(item.get("doc_kind", "")),
            )
        )
    return tuple(passages)


def drug_for_passages(question: str, passages: Sequence[Passage]) -> str | None:
    """The drug the question asks about, among every known drug and those the passages name
    (no index needed: the passages came with the request)."""
    names = set(DRUG_SYNONYMS.values()) | {d for p in passages for d in p.drugs}
    return Vocabulary.from_names(names).facets(question).drug


def verdict_json(verdict: AnswerVerdict, drug: str | None) -> dict[str, Any]:
    return {
        "passed": verdict.passed,
        "error": verdict.error,
        "badge": verdict.badge,
        "drug": drug,
        "claims": [
            {
                "text": c.claim.text,
                "span": list(c.claim.span),
                "status": c.status.value,
                "citation_n": c.passage_n,
                "reason": c.reason,
                "derivation": c.derivation.explanation if c.derivation else "",
                # What the number doses, from the statement that supports it.
                "drug": c.statement.drug if c.statement else c.drug,
                "role": c.statement.role.value if c.statement else "",
                "statement_id": c.statement.id if c.statement else "",
                "statement": c.statement.describe() if c.statement else "",
            }
            for c in verdict.claims
        ],
    }
