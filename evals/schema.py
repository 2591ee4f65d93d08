"""The two fixed JSONL input formats of `dosewise eval`, and their tolerant loaders.

External question sets are run through these formats without code changes, so unknown fields and
tags are kept, optional fields may be missing, and a bad line becomes a reported
:class:`LoadIssue` (file, line number, reason) rather than a crash or a silent skip.
Patient values are deliberately *not* range-checked here: rejecting impossible patient input is
behaviour under test (``expected.error``), so it must reach the system unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.errors import EvalInputError

__all__ = [
    "AnswerItem",
    "Expected",
    "LoadIssue",
    "PatientSpec",
    "QuestionItem",
    "load_answers",
    "load_questions",
]


class PatientSpec(BaseModel):
    model_config = ConfigDict(extra="allow")

    # Numbers or strings: "seventy" must reach validate_patient and be rejected there.
    weight_kg: float | int | str | None = None
    tpmt: str | None = None
    nudt15: str | None = None
    comedications: list[str] = Field(default_factory=list)
    egfr: float | int | str | None = None  # mL/min/1.73 m²
    crcl: float | int | str | None = None  # mL/min
    age_years: float | int | str | None = None


class Expected(BaseModel):
    model_config = ConfigDict(extra="allow")

    numbers: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    out_of_corpus: bool = False
    must_not_contain: list[str] = Field(default_factory=list)
    error: str | None = None


class QuestionItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    question: str
    patient: PatientSpec | None = None
    expected: Expected = Field(default_factory=Expected)
    tags: list[str] = Field(default_factory=list)
    # Optional extension of the fixed format: earlier user turns of a follow-up conversation.
    history: list[str] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # External sets often number their items; an int id is still an id.
        return str(value) if isinstance(value, int) else value


class AnswerItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    question: str
    answer: str
    expect: Literal["pass", "block"]
    tags: list[str] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("expect", mode="before")
    @classmethod
    def _expect_lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value


_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class LoadIssue:
    path: str
    line: int
    reason: str


def _reason(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(line)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def _load(path: Path, model: type[_M]) -> tuple[list[_M], list[LoadIssue]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise EvalInputError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalInputError(f"{path}: cannot be read ({exc})") from exc
    items: list[_M] = []
    issues: list[LoadIssue] = []
    seen: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            issues.append(LoadIssue(str(path), lineno, f"invalid JSON: {exc.msg}"))
            continue
        if not isinstance(raw, dict):
            issues.append(LoadIssue(str(path), lineno, "not a JSON object"))
            continue
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            issues.append(LoadIssue(str(path), lineno, _reason(exc)))
            continue
        item_id = str(getattr(item, "id"))  # noqa: B009 - both models have an id
        if item_id in seen:
            issues.append(LoadIssue(str(path), lineno, f"duplicate id {item_id!r}"))
            continue
        seen.add(item_id)
        items.append(item)
    return items, issues


def load_questions(path: str | Path) -> tuple[list[QuestionItem], list[LoadIssue]]:
    return _load(Path(path), QuestionItem)


def load_answers(path: str | Path) -> tuple[list[AnswerItem], list[LoadIssue]]:
    return _load(Path(path), AnswerItem)
