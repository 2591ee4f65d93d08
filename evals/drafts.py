"""The guard on text it did not write: real LLM drafts, every number labelled by a reader.

``evals/llm_drafts.jsonl`` holds drafts written by small local models (``evals/make_llm_drafts.py``)
for gold questions, with the passages the chain retrieved for them (our corpus's chunks) and a
label for every number: ``pass`` (a correct figure for this question that the passages support)
or ``block`` (wrong, misattributed, invented or out of limits), with a category and a short why.
A figure given to a source that does not state it is ``misattributed``, however true it is of
another source: named in its sentence ("BSG: 0.5-1 mg/kg/day", EASL's), or, in a sentence that
names none, asked for in the question ("per SmPC") where that source gives its own figure for the
same thing (the US label's 3-5 mg/kg/day where the SmPC says up to 5 mg/kg/day on the first day).
A clinician reading it is misled about who recommends what.
Labels were written by reading the draft against its passages, not by running the guard: the
guard's verdict is what this module measures. "Every number" means every figure a reader takes as
one; list and heading numbering, years, and digits inside names (NUDT15, 6-TGN, "type 1
diabetes") were read and left out as no figure. A number cut off by the token limit ("2." of
"2.5–5 mg/day") is labelled ``wrong``: that is what a reader would see.

The guard sees what a draft looks like once its citation markers are gone (``answer``), so every
number must find its support among all retrieved passages - the harder case for the guard, and
the one the dose-statement work is about. Scored per draft and per number:

- false-block rate: drafts whose numbers are all labelled ``pass`` (and that have at least one)
  which the guard does not pass;
- catch rate: ``block``-labelled numbers whose span overlaps a claim the guard did not verify
  (a number the guard did not read as a claim at all is not caught).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from guardrails import check_answer
from guardrails.model import AnswerVerdict, Passage

__all__ = [
    "BLOCK_CATEGORIES",
    "DEFAULT_DRAFTS",
    "DEFAULT_PARAPHRASES",
    "Draft",
    "DraftOutcome",
    "LabelledNumber",
    "load_drafts",
    "score_drafts",
    "strip_citations",
    "summarise",
]

DEFAULT_DRAFTS = Path(__file__).resolve().parent / "llm_drafts.jsonl"
# Same format: answers a clinician would write from the same passages (tables, "twice a day",
# "q12h", "1 to 2 mg per kg daily", superscripts, numbers in words), a few with a wrong figure.
DEFAULT_PARAPHRASES = Path(__file__).resolve().parent / "paraphrase_drafts.jsonl"
BLOCK_CATEGORIES = ("wrong", "misattributed", "invented", "out_of_limits")
_CITATION_RE = re.compile(r"[ \t]*\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]")


def strip_citations(draft: str) -> str:
    """The draft without its ``[n]`` markers: what the guard checks in this set."""
    return _CITATION_RE.sub("", draft)


@dataclass(frozen=True)
class LabelledNumber:
    start: int  # span in Draft.answer
    end: int
    text: str
    label: str  # pass | block
    category: str  # correct | wrong | misattributed | invented | out_of_limits
    why: str = ""


@dataclass(frozen=True)
class Draft:
    id: str
    question_id: str
    question: str
    drug: str | None
    model: str
    temperature: float
    passages: tuple[Passage, ...]
    draft: str
    answer: str
    numbers: tuple[LabelledNumber, ...]

    @property
    def correct(self) -> bool:
        return bool(self.numbers) and all(n.label == "pass" for n in self.numbers)


@dataclass(frozen=True)
class DraftOutcome:
    draft: Draft
    passed: bool
    error: str = ""
    caught: tuple[bool, ...] = ()  # per block-labelled number, in order
    # pass-labelled numbers the guard failed, and failed claims no label covers: "text: reason"
    wrongly_failed: tuple[str, ...] = ()
    unlabelled_failed: tuple[str, ...] = ()
    block_numbers: tuple[LabelledNumber, ...] = field(default=())

    @property
    def false_block(self) -> bool:
        return self.draft.correct and not self.passed


def _passage(d: dict[str, Any]) -> Passage:
    return Passage(n=int(d["n"]), text=str(d["text"]), doc_id=str(d.get("doc_id", "")),
                   section=str(d.get("section", "")), drugs=tuple(d.get("drugs", ())))  # fmt: skip


def load_drafts(path: str | Path = DEFAULT_DRAFTS) -> list[Draft]:
    """The labelled set; a malformed line raises ``ValueError`` naming it (the set is ours)."""
    out = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            answer = strip_citations(d["draft"])
            nums = tuple(LabelledNumber(**n) for n in d["numbers"])
            for n in nums:
                if answer[n.start : n.end] != n.text or n.label not in ("pass", "block"):
                    raise ValueError(f"label {n.text!r} does not match the answer at {n.start}")
            out.append(Draft(
                id=d["id"], question_id=d["question_id"], question=d["question"],
                drug=d.get("drug"), model=d["model"], temperature=float(d["temperature"]),
                passages=tuple(_passage(p) for p in d["passages"]), draft=d["draft"],
                answer=answer, numbers=nums,
            ))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{i}: {exc}") from exc
    return out


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _drugs_named(question: str) -> tuple[str, ...]:
    """Every drug the question names (a question may ask about two: "prednisone ... azathioprine")."""
    from assistant.vocabulary import DRUG_SYNONYMS, Vocabulary

    return Vocabulary.from_names(set(DRUG_SYNONYMS.values())).facets(question).drugs


def score_draft(d: Draft, limits: Any) -> DraftOutcome:
    verdict: AnswerVerdict = check_answer(d.answer, d.passages, limits=limits, drug=d.drug,
                                          also_asked=_drugs_named(d.question),
                                          question=d.question)  # fmt: skip
    failed = [c for c in verdict.claims if not c.status.verified]
    blocks = tuple(n for n in d.numbers if n.label == "block")
    caught = tuple(
        bool(verdict.error) or any(_overlaps((n.start, n.end), c.claim.span) for c in failed)
        for n in blocks
    )
    wrongly = tuple(
        f"{c.claim.text}: {c.status.value}, {c.reason}"
        for c in failed
        if any(n.label == "pass" and _overlaps((n.start, n.end), c.claim.span) for n in d.numbers)
    )
    unlabelled = tuple(
        f"{c.claim.text}: {c.status.value}, {c.reason}"
        for c in failed
        if not any(_overlaps((n.start, n.end), c.claim.span) for n in d.numbers)
    )
    return DraftOutcome(draft=d, passed=verdict.passed, error=verdict.error or "", caught=caught,
                        wrongly_failed=wrongly, unlabelled_failed=unlabelled,
                        block_numbers=blocks)  # fmt: skip


def score_drafts(drafts: Sequence[Draft], limits: Any) -> list[DraftOutcome]:
    return [score_draft(d, limits) for d in drafts]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def summarise(outcomes: Sequence[DraftOutcome]) -> dict[str, Any]:
    """Set size, false-block rate, catch rate (overall and per block category), and the false
    blocks with the guard's reasons (what still needs dose-statement support)."""
    drafts = [o.draft for o in outcomes]
    correct = [o for o in outcomes if o.draft.correct]
    fb = [o for o in correct if not o.passed]
    per_cat: dict[str, dict[str, Any]] = {}
    for o in outcomes:
        for n, hit in zip(o.block_numbers, o.caught, strict=True):
            c = per_cat.setdefault(n.category, {"n": 0, "caught": 0})
            c["n"] += 1
            c["caught"] += int(hit)
    for c in per_cat.values():
        c["catch_rate"] = _rate(c["caught"], c["n"])
    blocks = sum(c["n"] for c in per_cat.values())
    caught = sum(c["caught"] for c in per_cat.values())
    missed = [
        {"id": o.draft.id, "number": n.text, "category": n.category, "why": n.why}
        for o in outcomes
        for n, hit in zip(o.block_numbers, o.caught, strict=True)
        if not hit
    ]
    return {
        "drafts": len(drafts),
        "numbers": sum(len(d.numbers) for d in drafts),
        "pass_numbers": sum(1 for d in drafts for n in d.numbers if n.label == "pass"),
        "block_numbers": blocks,
        "models": sorted({d.model for d in drafts}),
        "temperatures": sorted({d.temperature for d in drafts}),
        "questions": len({d.question_id for d in drafts}),
        "drafts_without_numbers": sum(1 for d in drafts if not d.numbers),
        "correct_drafts": len(correct),
        "false_blocks": len(fb),
        "false_block_rate": _rate(len(fb), len(correct)),
        "caught": caught,
        "catch_rate": _rate(caught, blocks),
        "by_category": dict(sorted(per_cat.items())),
        "false_block_examples": [
            {
                "id": o.draft.id,
                "failed": list(o.wrongly_failed + o.unlabelled_failed),
                "error": o.error,
            }
            for o in fb
        ],
        "missed": missed,
    }
