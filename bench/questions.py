"""The benchmark questions: varied in drug, intent and phrasing, so the stage split reflects a
mix of dosing, monitoring, pharmacogenomic, interaction and follow-up style questions.

A clinician's question is new text, so every timed ask uses a variant never asked before
(``fresh``): the question with an inert tag. The query-embedding cache keys on the text, so a
variant is encoded like a new question; a repeat of the same text is timed separately and
labelled as the cached case.
"""

from __future__ import annotations

import itertools

__all__ = ["QUESTIONS", "fresh", "pick_questions", "tag"]

QUESTIONS: tuple[str, ...] = (
    "What is the azathioprine maintenance dose in lupus nephritis?",
    "Azathioprine dose for autoimmune hepatitis maintenance?",
    "How should azathioprine be dosed in a TPMT poor metabolizer?",
    "What dose of azathioprine for an intermediate TPMT phenotype?",
    "Which blood tests are needed when starting azathioprine and how often?",
    "Can azathioprine be used in pregnancy?",
    "What happens if azathioprine is combined with allopurinol?",
    "Imuran starting dose after kidney transplant?",
    "What is the usual mycophenolate mofetil dose for lupus nephritis induction?",
    "Low-dose IV cyclophosphamide regimen for lupus nephritis (Euro-Lupus)?",
    "Prednisone dose for autoimmune hepatitis induction?",
    "How long should maintenance therapy continue in lupus nephritis?",
    "What 6-TGN level is therapeutic for thiopurines?",
    "NUDT15 poor metabolizer mercaptopurine dose?",
    "azathioprine dosing in rheumatoid arthritis mg/kg",
    "Methotrexate weekly dose in rheumatoid arthritis?",
    "What is the maximum daily dose of azathioprine?",
    "When should azathioprine be stopped for leukopenia?",
    "Hydroxychloroquine dose in lupus?",
    "AZA dose in Crohn disease?",
)

# One counter per process: no two calls of ``fresh`` ever return the same text, so a variant
# timed in one section is never a cache hit in a later one.
_SERIAL = itertools.count()


def pick_questions(n: int) -> tuple[str, ...]:
    """The first ``n`` questions (all when n exceeds the list)."""
    return QUESTIONS[: max(1, n)]


def tag(i: int) -> str:
    """Letters only (base 26): no digit the guard or the dose parser could read as a number,
    too short to look like a drug name to the fuzzy matcher."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = letters[i % 26]
    while i := i // 26:
        out += letters[i % 26]
    return out


def fresh(question: str) -> str:
    """``question`` with a tag never used before in this process. The tag is one word that
    starts with "qz", so it never spells an abbreviation the vocabulary knows ("ibd", "ra")."""
    return f"{question} (query qz{tag(next(_SERIAL))})"
