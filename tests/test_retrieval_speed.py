"""The speed work in retrieval and vocabulary changes no result: top-k by partition ranks like a
full sort, the length-filtered fuzzy match finds what difflib over every name finds, and a
restart loads the persisted lexical index and vocabulary without reading every chunk back."""

from __future__ import annotations

import difflib
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from assistant.retrieval import HybridRetriever, _top_positive
from assistant.vocabulary import Vocabulary
from ingest.chunking import chunk_document
from ingest.loaders import load_corpus
from ingest.model import Chunk

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = (
    "What is the recommended dose of azathioprine for treating lupus?",
    "aza dose LN maint?",
    "mycophenolate induction dose in lupus nephritis",
    "TPMT intermediate metabolizer azathioprine dose",
    "azathioprin monitoring blood counts",  # a typo: the fuzzy path
)


@pytest.fixture(scope="module")
def corpus_chunks() -> list[Chunk]:
    docs, _ = load_corpus([REPO / "corpus"])
    chunks = [c for d in docs for c in chunk_document(d, 900)]
    assert chunks
    return chunks


class CountingIndex:
    """A store stand-in that records how it is read."""

    def __init__(self, chunks: list[Chunk], generation: int = 1) -> None:
        self._chunks = sorted(chunks, key=lambda c: (c.doc_id, c.start))
        self._by_id = {c.id: c for c in self._chunks}
        self.generation = generation
        self.all_chunks_calls = 0
        self.get_calls = 0

    def all_chunks(self) -> list[Chunk]:
        self.all_chunks_calls += 1
        return list(self._chunks)

    def count(self) -> int:
        return len(self._chunks)

    def get(self, ids: list[str]) -> list[Chunk]:
        self.get_calls += 1
        return [self._by_id[i] for i in ids if i in self._by_id]

    def query(self, embedding: Any, k: int, where: Any = None) -> list[tuple[Chunk, float]]:
        # Deterministic "dense" neighbours: the chunks sharing most words with nothing but
        # the vector's first component, enough to exercise fusion without a model.
        start = int(abs(float(embedding[0])) * 1000) % len(self._chunks)
        picked = (self._chunks[start:] + self._chunks[:start])[:k]
        return [(c, 0.1 + n / 100) for n, c in enumerate(picked)]


class FakeEmbedder:
    def encode(self, texts: list[str]) -> list[list[float]]:
        return [[(sum(map(ord, t)) % 97) / 97.0, 0.5] for t in texts]


def _answers(retriever: HybridRetriever, vocabulary: Vocabulary) -> list[list[tuple[str, float]]]:
    out = []
    for q in QUESTIONS:
        r = retriever.retrieve(q, vocabulary.facets(q), vocabulary, k=8)
        out.append([(c.chunk_id, round(c.score, 9)) for c in r.chunks])
    return out


def test_top_positive_ranks_like_a_full_descending_sort() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(5000) * (rng.random(5000) > 0.3)  # a third are zero: never returned
    expected = [i for i in np.argsort(-scores, kind="stable")[:30] if scores[i] > 0]
    assert list(_top_positive(scores, 30)) == expected


def test_top_positive_puts_the_higher_index_first_among_equal_scores() -> None:
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 0.0, 2.0])
    assert list(_top_positive(scores, 4)) == [3, 1, 6, 4]
    assert list(_top_positive(scores, 10)) == [3, 1, 6, 4, 2, 0]
    assert list(_top_positive(np.zeros(4), 3)) == []


def test_fuzzy_drug_finds_what_difflib_over_every_name_finds() -> None:
    from bench.synthetic import fake_drug_name

    names = sorted({fake_drug_name(k) for k in range(3600)} | {"azathioprine", "mycophenolate"})
    vocab = Vocabulary.from_names(names)
    words = {n: n for n in names if len(n) >= 5}
    rng = random.Random(11)
    tokens = []
    for name in rng.sample(names, 150):
        chars = list(name)
        chars[rng.randrange(len(chars))] = rng.choice("aeioux")
        tokens.append("".join(chars))
        tokens.append(name[:-1])
    tokens += ["dosing", "maximum", "patients", "azathioprin", "mycofenolate"]
    for token in tokens:
        if not token.isalpha():
            continue
        match = difflib.get_close_matches(token, words, n=1, cutoff=0.82)
        assert vocab._fuzzy_drug(token) == (words[match[0]] if match else None), token
        assert vocab._fuzzy_drug(token) == (words[match[0]] if match else None), token  # cached


def test_vocabulary_round_trips_through_its_dict(corpus_chunks: list[Chunk]) -> None:
    built = Vocabulary.from_chunks(corpus_chunks)
    loaded = Vocabulary.from_dict(built.to_dict())
    assert loaded.drugs == built.drugs
    assert loaded.indications == built.indications
    assert loaded.sections_by_drug == built.sections_by_drug
    assert loaded.drugs_by_indication == built.drugs_by_indication
    assert loaded.brands == built.brands
    for q in QUESTIONS:
        assert loaded.facets(q) == built.facets(q)


def test_restart_loads_the_persisted_index_and_vocabulary_without_reading_every_chunk(
    corpus_chunks: list[Chunk], tmp_path: Path
) -> None:
    first_index = CountingIndex(corpus_chunks)
    first = HybridRetriever(first_index, FakeEmbedder(), data_dir=tmp_path)
    vocabulary = first.vocabulary()
    expected = _answers(first, vocabulary)
    assert first_index.all_chunks_calls == 1  # built once, for the index and the vocabulary

    index = CountingIndex(corpus_chunks)
    restarted = HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path)
    loaded_vocabulary = restarted.vocabulary()
    assert loaded_vocabulary.to_dict() == vocabulary.to_dict()
    assert _answers(restarted, loaded_vocabulary) == expected
    assert index.all_chunks_calls == 0
    assert index.get_calls >= 1  # the candidates' chunks, fetched by id
    # Asking for every chunk still works, and in the persisted order.
    assert [c.id for c in restarted.chunks()] == [c.id for c in first.chunks()]


def test_persisted_index_of_another_store_is_rebuilt_not_trusted(
    corpus_chunks: list[Chunk], tmp_path: Path
) -> None:
    HybridRetriever(CountingIndex(corpus_chunks), FakeEmbedder(), data_dir=tmp_path).vocabulary()
    # Same generation number, but the store now holds fewer chunks (wiped and re-ingested).
    smaller = CountingIndex(corpus_chunks[: len(corpus_chunks) // 2])
    retriever = HybridRetriever(smaller, FakeEmbedder(), data_dir=tmp_path)
    vocabulary = retriever.vocabulary()
    assert smaller.all_chunks_calls == 1
    assert {c.id for c in retriever.chunks()} == {c.id for c in smaller.all_chunks()}
    assert vocabulary.to_dict() == Vocabulary.from_chunks(smaller.all_chunks()).to_dict()


def test_persisted_index_written_by_other_code_is_rebuilt(
    corpus_chunks: list[Chunk], tmp_path: Path
) -> None:
    first = HybridRetriever(CountingIndex(corpus_chunks), FakeEmbedder(), data_dir=tmp_path)
    first.vocabulary()
    (directory,) = (tmp_path / "bm25").iterdir()
    (directory / "format.txt").write_text("older-code", encoding="utf-8")
    index = CountingIndex(corpus_chunks)
    HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path).vocabulary()
    assert index.all_chunks_calls == 1


class IdsOnlyIndex(CountingIndex):
    """A store that can answer a dense query with ids only (as ``ingest.store.Index`` does)."""

    def __init__(self, chunks: list[Chunk]) -> None:
        super().__init__(chunks)
        self.full_queries = 0

    def query(self, embedding: Any, k: int, where: Any = None) -> list[tuple[Chunk, float]]:
        self.full_queries += 1
        return super().query(embedding, k, where)

    def query_ids(self, embedding: Any, k: int, where: Any = None) -> list[tuple[str, float]]:
        return [(c.id, d) for c, d in super().query(embedding, k, where)]


def test_dense_hits_by_id_retrieve_what_full_hits_retrieve(
    corpus_chunks: list[Chunk], tmp_path: Path
) -> None:
    plain = HybridRetriever(CountingIndex(corpus_chunks), FakeEmbedder(), data_dir=tmp_path / "a")
    expected = _answers(plain, plain.vocabulary())
    index = IdsOnlyIndex(corpus_chunks)
    by_id = HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path / "a")
    assert _answers(by_id, by_id.vocabulary()) == expected  # restarted: chunks fetched by id
    fresh_index = IdsOnlyIndex(corpus_chunks)
    fresh = HybridRetriever(fresh_index, FakeEmbedder(), data_dir=tmp_path / "b")
    assert _answers(fresh, fresh.vocabulary()) == expected  # built: chunks from memory
    assert index.full_queries == 0 and fresh_index.full_queries == 0


def test_chunk_traits_remembered_across_questions_rank_as_read_fresh(
    corpus_chunks: list[Chunk], tmp_path: Path
) -> None:
    # Questions about different drugs meet the same chunks: what fusion remembers of a chunk
    # for one drug must not answer for another.
    questions = QUESTIONS + (
        "methotrexate dose in rheumatoid arthritis",
        "allopurinol with azathioprine dose",
        "mycophenolate monitoring",
        "prednisone taper in lupus",
    )
    index = CountingIndex(corpus_chunks)
    vocabulary = HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path).vocabulary()

    def ranked(retriever: HybridRetriever, q: str) -> list[tuple[str, float]]:
        r = retriever.retrieve(q, vocabulary.facets(q), vocabulary, k=8)
        return [(c.chunk_id, round(c.score, 9)) for c in r.chunks]

    fresh = {
        q: ranked(HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path), q) for q in questions
    }
    warm = HybridRetriever(index, FakeEmbedder(), data_dir=tmp_path)
    for q in (*questions, *reversed(questions)):
        assert ranked(warm, q) == fresh[q], q
