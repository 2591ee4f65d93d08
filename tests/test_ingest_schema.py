from __future__ import annotations

import json

import pytest

from ingest.errors import FrontMatterError
from ingest.schema import SCHEMA_PATH, json_schema, validate_front_matter


def _meta(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "aza-ibd",
        "title": "Azathioprine in IBD",
        "drugs": ["azathioprine"],
        "indications": ["crohn disease"],
        "audience": "clinician",
        "last_reviewed": "2026-11-01",
        "review_status": "draft",
        "sources": [
            {
                "id": "ecco-2020",
                "kind": "guideline",
                "reference": "ECCO guideline 2020, J Crohns Colitis.",
            }
        ],
    }
    base.update(over)
    return base


def test_exported_json_schema_matches_the_pydantic_model() -> None:
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json_schema(), (
        "run `python -m ingest.schema` to regenerate ingest/corpus.schema.json"
    )


def test_valid_front_matter_parses_dates_and_sources() -> None:
    meta = validate_front_matter(_meta())
    assert meta.last_reviewed.isoformat() == "2026-11-01"
    assert meta.sources[0].id == "ecco-2020"


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"id": "Aza IBD"}, "id:"),
        ({"drugs": ["Azathioprine"]}, "lower-case"),
        ({"drugs": []}, "drugs:"),
        ({"audience": "nurses"}, "audience:"),
        ({"review_status": "done"}, "review_status:"),
        ({"last_reviewed": "yesterday"}, "last_reviewed:"),
        ({"sources": []}, "sources:"),
        ({"sources": [{"id": "a", "reference": "A reference text."}] * 2}, "duplicate source id"),
        (
            {"sources": [{"id": "a", "kind": "blog", "reference": "A reference text."}]},
            "sources.0.kind",
        ),
        ({"colour": "red"}, "colour:"),
    ],
)
def test_invalid_front_matter_names_the_field(override: dict[str, object], fragment: str) -> None:
    with pytest.raises(FrontMatterError) as info:
        validate_front_matter(_meta(**override), "corpus/x.md")
    assert fragment in info.value.reason
    assert info.value.path == "corpus/x.md"


def test_missing_required_field_is_reported() -> None:
    data = _meta()
    del data["title"]
    with pytest.raises(FrontMatterError, match="title: Field required"):
        validate_front_matter(data)


def test_front_matter_that_is_not_a_mapping_is_rejected() -> None:
    with pytest.raises(FrontMatterError, match="expected a mapping"):
        validate_front_matter(["a", "b"])
