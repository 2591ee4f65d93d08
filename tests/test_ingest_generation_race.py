"""A reader whose generation is deleted while it queries (an ingest flipped the pointer).

Chroma reports a delete that lands mid-query as ``InternalError("Missing metadata segment")``
rather than NotFound; the index follows the pointer and answers from the new generation. The
same error with the pointer unchanged is a real failure and is raised, never hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chromadb.errors import InternalError

from ingest import open_index
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest


class _DeletedMidQuery:
    """Stands in for a collection whose segment vanished during the query."""

    def __init__(self, real: Any) -> None:
        self.name = real.name
        self._size = int(real.count())  # read while it existed: the race is in the query

    def count(self) -> int:
        return self._size

    def query(self, **_kw: Any) -> Any:
        raise InternalError("Missing field: [Missing metadata segment]")


@pytest.fixture
def built(tiny_corpus: Path, tmp_path: Path, embedder: Any) -> tuple[StoreConfig, Path]:
    data = tmp_path / "data"
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="race")
    run_ingest([tiny_corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    return cfg, data


def test_query_racing_a_generation_delete_answers_from_the_new_generation(
    built: tuple[StoreConfig, Path], tiny_corpus: Path, embedder: Any
) -> None:
    cfg, data = built
    reader = open_index(cfg, embedder)
    old_name = reader.collection_name
    (tiny_corpus / "extra.md").write_text(
        (next(tiny_corpus.glob("*.md")))
        .read_text(encoding="utf-8")
        .replace("id: ", "id: extra-", 1),
        encoding="utf-8",
    )
    held = _DeletedMidQuery(reader._collection)
    run_ingest([tiny_corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    reader._collection = held  # the reader still holds the generation the ingest deleted

    hits = reader.query(embedder.encode(["azathioprine dose"])[0], k=3)

    assert hits and reader.collection_name != old_name


def test_the_same_error_with_the_pointer_unchanged_is_raised(
    built: tuple[StoreConfig, Path], embedder: Any
) -> None:
    cfg, _ = built
    reader = open_index(cfg, embedder)
    reader._collection = _DeletedMidQuery(reader._collection)

    with pytest.raises(InternalError):
        reader.query(embedder.encode(["azathioprine dose"])[0], k=3)
