"""The corpus front matter as pydantic models, and the JSON Schema exported from them.

``ingest/corpus.schema.json`` is generated from :class:`DocumentMeta` by :func:`write_json_schema`
(a test keeps the two in sync), so editors can validate corpus files without running Python.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import FrontMatterError

__all__ = [
    "SCHEMA_PATH",
    "DocumentMeta",
    "SourceMeta",
    "json_schema",
    "validate_front_matter",
    "write_json_schema",
]

SCHEMA_PATH = Path(__file__).with_name("corpus.schema.json")
_ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class SourceMeta(BaseModel):
    """One primary source a document cites with ``[@id]``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID_PATTERN, description="Unique within the file; cited as [@id].")
    kind: Literal["label", "guideline", "trial", "review", "cpic", "other"] = "guideline"
    reference: str = Field(min_length=10, description="Full primary reference.")
    url: str = ""
    section: str = ""


class DocumentMeta(BaseModel):
    """YAML front matter of a ``corpus/*.md`` document (see ARCHITECTURE.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID_PATTERN, description="Unique document id across the corpus.")
    title: str = Field(min_length=3)
    drugs: list[str] = Field(min_length=1, description="Lower-case generic names.")
    indications: list[str] = Field(default_factory=list)
    audience: Literal["clinician", "patient", "both"] = "clinician"
    last_reviewed: dt.date
    review_status: Literal["draft", "clinician-reviewed", "approved"] = "draft"
    sources: list[SourceMeta] = Field(min_length=1)
    brand_names: list[str] = Field(default_factory=list)

    @field_validator("drugs")
    @classmethod
    def _drugs_lower_case(cls, drugs: list[str]) -> list[str]:
        bad = [d for d in drugs if d != d.strip().lower() or not d.strip()]
        if bad:
            raise ValueError(f"drug names must be lower-case generic names, got {bad}")
        return drugs

    @model_validator(mode="after")
    def _unique_source_ids(self) -> DocumentMeta:
        ids = [s.id for s in self.sources]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate source id(s): {', '.join(dupes)}")
        return self


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "front matter"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def validate_front_matter(data: Any, path: str = "") -> DocumentMeta:
    """Validate parsed YAML; raises :class:`FrontMatterError` with every problem on one line."""
    if not isinstance(data, dict):
        raise FrontMatterError(
            f"invalid front matter: expected a mapping, got {type(data).__name__}", path
        )
    try:
        return DocumentMeta.model_validate(data)
    except ValidationError as exc:
        raise FrontMatterError(f"invalid front matter: {_format_errors(exc)}", path) from None


def json_schema() -> dict[str, Any]:
    schema = DocumentMeta.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Dosewise corpus document front matter"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_json_schema()
