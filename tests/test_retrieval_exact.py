"""The in-memory exact dense search a small store uses instead of a Chroma query: it must find
the neighbours Chroma's own search finds, in the same order, with the same distances; a store
above the limit keeps Chroma's search; the retrieval is the same either way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import assistant.retrieval as retrieval
from assistant.retrieval import HybridRetriever
from ingest import open_index

QUESTIONS = (
    "What is the azathioprine maintenance dose in lupus nephritis?",
    "How should azathioprine be dosed in a TPMT poor metabolizer?",
    "Prednisone dose for autoimmune hepatitis induction?",
    "Which blood tests are needed when starting azathioprine and how often?",
    "Can azathioprine be used in pregnancy?",
)


@pytest.fixture(scope="module")
def index(corpus_index: tuple[Any, Path], embedder: Any) -> Any:
    cfg, _data = corpus_index
    return open_index(cfg, embedder)


def test_store_lists_every_vector_of_a_small_store_and_none_of_a_large_one(index: Any) -> None:
    got = index.vectors(index.count())
    assert got is not None
    ids, matrix = got
    assert len(ids) == len(set(ids)) == index.count() == matrix.shape[0]
    assert index.vectors(index.count() - 1) is None


@pytest.mark.parametrize("question", QUESTIONS)
def test_exact_search_finds_what_chroma_finds(index: Any, embedder: Any, question: str) -> None:
    vectors = index.vectors(index.count())
    embedding = embedder.encode([question])[0]
    exact = retrieval.exact_nearest(vectors, embedding, 30)
    chroma = index.query_ids(embedding, 30)
    assert [cid for cid, _ in exact] == [cid for cid, _ in chroma]
    for (_, ours), (_, theirs) in zip(exact, chroma, strict=True):
        assert ours == pytest.approx(theirs, abs=1e-5)


def test_retrieval_is_the_same_with_and_without_the_exact_search(
    index: Any, embedder: Any, corpus_index: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _cfg, data = corpus_index
    exact = HybridRetriever(index, embedder, data_dir=data)
    vocabulary = exact.vocabulary()

    def run(retriever: HybridRetriever) -> list[list[tuple[str, float]]]:
        return [
            [(c.chunk_id, round(c.score, 9)) for c in retriever.retrieve(
                q, vocabulary.facets(q), vocabulary
            ).chunks]
            for q in QUESTIONS
        ]  # fmt: skip

    with_exact = run(exact)
    assert exact._ensure_lexical().vectors is not None  # the exact search was used
    monkeypatch.setattr(retrieval, "EXACT_SEARCH_LIMIT", 0)
    chroma = HybridRetriever(index, embedder, data_dir=data)
    without = run(chroma)
    assert chroma._ensure_lexical().vectors is None  # too large for the limit: Chroma's search
    assert with_exact == without
