"""A reader that searches a small store in memory never queries Chroma, so no failed query tells
it an ingest flipped generations: it must follow the pointer itself, cheaply when nothing moved.
The writer here is a second ``Index`` on the same folder, as a CLI ingest is to a running app."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from assistant.retrieval import HybridRetriever
from ingest import open_index
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest
from ingest.store import Index

REPO = Path(__file__).resolve().parents[1]
QUESTION = "azathioprine monitoring blood count"
OLD = "Check a full blood count weekly for the first month"
NEW = "Check a full blood count every week for the first eight weeks"


@pytest.fixture()
def store(tmp_path: Path, embedder: Any) -> tuple[StoreConfig, Path, Path]:
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "tests" / "fixtures" / "corpus", corpus)
    assert OLD in (corpus / "aza-ibd.md").read_text(encoding="utf-8")
    data = tmp_path / "data"
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="follow")
    run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    return cfg, data, corpus


def _reingest(corpus: Path, cfg: StoreConfig, data: Path, embedder: Any) -> None:
    aza = corpus / "aza-ibd.md"
    aza.write_text(aza.read_text(encoding="utf-8").replace(OLD, NEW), encoding="utf-8")
    run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)


def _count_reads(index: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the collections ``index`` reads from Chroma from now on."""
    reads: list[str] = []
    real_get = index._client.get_collection

    def counting_get(name: str, **kwargs: Any) -> Any:
        reads.append(name)
        return real_get(name, **kwargs)

    monkeypatch.setattr(index._client, "get_collection", counting_get)
    return reads


def _texts(retriever: HybridRetriever) -> str:
    vocabulary = retriever.vocabulary()
    got = retriever.retrieve(QUESTION, vocabulary.facets(QUESTION), vocabulary)
    return "\n".join(c.text for c in got.chunks)


def test_an_in_memory_reader_answers_from_the_generation_another_writer_flipped_to(
    store: tuple[StoreConfig, Path, Path], embedder: Any
) -> None:
    cfg, data, corpus = store
    reader = HybridRetriever(open_index(cfg, embedder), embedder, data_dir=data)
    before = _texts(reader)
    assert reader._ensure_lexical().vectors is not None  # searched in memory, not by Chroma
    assert "first month" in before

    _reingest(corpus, cfg, data, embedder)

    after = _texts(reader)
    assert "first eight weeks" in after and "first month" not in after
    assert reader.generation == str(open_index(cfg, embedder).generation)


def test_follow_reads_the_pointer_only_after_a_flip(
    store: tuple[StoreConfig, Path, Path], embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, data, corpus = store
    index = open_index(cfg, embedder)
    reads = _count_reads(index, monkeypatch)
    assert index.follow() is False
    assert reads == []  # unchanged marker: one stat, no Chroma call

    generation = index.generation
    _reingest(corpus, cfg, data, embedder)
    assert index.follow() is True
    assert index.generation == generation + 1 and reads
    reads.clear()
    assert index.follow() is False and reads == []


def test_without_the_marker_follow_reads_the_pointer_every_time(
    store: tuple[StoreConfig, Path, Path], embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg, data, corpus = store
    index = open_index(cfg, embedder)
    markers = [p for p in os.listdir(cfg.path) if p.endswith(".generation")]
    assert markers == ["dosewise-follow.generation"]
    os.remove(os.path.join(cfg.path, markers[0]))  # a store written before the marker existed
    reads = _count_reads(index, monkeypatch)
    assert index.follow() is False
    assert reads == ["follow__pointer"]  # nothing moved: the pointer alone, not the collection
    reader = HybridRetriever(open_index(cfg, embedder), embedder, data_dir=data)
    assert "first month" in _texts(reader)

    generation = index.generation
    monkeypatch.setattr(Index, "_mark_flip", lambda self, name: None)  # an older writer
    _reingest(corpus, cfg, data, embedder)
    assert not [p for p in os.listdir(cfg.path) if p.endswith(".generation")]
    assert index.follow() is True and index.generation == generation + 1
    assert "first eight weeks" in _texts(reader)
