"""Hybrid retrieval: bm25s lexical + Chroma dense, fused by reciprocal rank, boosted by facets.

The lexical index is built once per index generation, kept in memory and persisted under
``<data_dir>/bm25/<generation>/`` so that a restart loads it instead of re-tokenising the corpus.
The corpus vocabulary is persisted beside it, so a restart reads no chunk back in bulk: the
chunks of each question's candidates are fetched by id and kept; only ``chunks()`` reads all.
Dense hits come back from the store as ids when it can (``query_ids``) and are matched to the
chunks in memory: reading 30 hits' text and metadata cost more than the vector search. A store
of up to ``EXACT_SEARCH_LIMIT`` chunks is not asked at all: its vectors are read once per
generation and searched exactly in memory (a Chroma query's fixed cost was ~1.8 ms); since no
query then fails when an ingest flips generations, each search first asks the store to
``follow()`` its pointer (a file ``stat`` in embedded mode).
The question is embedded at most once per retrieval: an LRU cache of query embeddings, keyed by
the normalised query text, answers repeated questions (the app's reruns, the same question with
another patient) without running the model, which dominates a warm ``ask``. A new question pays
for one encode (the embedder's ONNX query path when it has one); ``timings_ms["encode"]`` shows it.
``prepare()`` builds the lexical index and vocabulary at ingest time, so no question waits for it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.model import RetrievedChunk
from assistant.vocabulary import QueryFacets, Vocabulary, answer_section, normalise
from ingest.model import Chunk

__all__ = [
    "HybridRetriever",
    "EXACT_SEARCH_LIMIT",
    "Retrieval",
    "exact_nearest",
    "lexical_tokens",
    "query_cache_key",
    "to_retrieved",
]

RRF_K = 60
_STOPWORDS = frozenset(
    """a an and are as at be by for from has have how i if in is it its of on or that the this
    to was what when which who with should would can could does do my me we you your much many
    recommended treating treatment usage use used""".split()
)
_SAFE_GENERATION = re.compile(r"[^A-Za-z0-9._-]+")
_SPACES = re.compile(r"\s+")
QUERY_CACHE_SIZE = 1024  # 384 floats each: well under 10 MB
# Up to this many chunks the dense search runs exactly in memory over the stored vectors
# (10k x 384 float32 = 15 MB, ~0.3 ms a question) instead of asking Chroma, whose query costs
# ~1.8 ms even at 1k chunks; larger stores keep HNSW.
EXACT_SEARCH_LIMIT = 10_000


def query_cache_key(text: str) -> str:
    """Questions that differ only in case or spacing embed alike (the model is uncased)."""
    return _SPACES.sub(" ", text).strip().lower()


class IndexLike(Protocol):
    @property
    def generation(self) -> Any: ...

    def query(self, embedding: Sequence[float], k: int, where: Any = None) -> Any: ...

    def all_chunks(self) -> list[Chunk]: ...


class EmbedderLike(Protocol):
    def encode(self, texts: Sequence[str]) -> Any: ...


def lexical_tokens(text: str) -> list[str]:
    # A crude plural fold keeps "counts"/"count" and "doses"/"dose" together without a stemmer.
    out = []
    for token in normalise(text):
        if token in _STOPWORDS:
            continue
        if len(token) > 4 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        out.append(token)
    return out


def to_retrieved(chunk: Chunk, score: float, **extra: Any) -> RetrievedChunk:
    """A chunk as the chain passes it on; metadata keeps what composing and citing need."""
    metadata: dict[str, Any] = {
        "drugs": tuple(chunk.drugs),
        "indications": tuple(chunk.indications),
        "section_path": tuple(chunk.section_path),
        "sources": tuple(chunk.sources),
        "source_ids": tuple(chunk.source_ids),
        "review_status": chunk.review_status,
        "last_reviewed": chunk.last_reviewed,
        "doc_kind": chunk.doc_kind,
        "audience": chunk.audience,
        "path": chunk.path,
        "start": chunk.start,
    }
    metadata.update(extra)
    return RetrievedChunk(
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        section=chunk.section,
        text=chunk.text,
        score=score,
        metadata=metadata,
    )


@dataclass(frozen=True)
class Retrieval:
    chunks: tuple[RetrievedChunk, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)
    best_distance: float | None = None  # dense distance of the closest chunk (lower = closer)
    lexical_hits: int = 0


_ID_SAMPLE = 16  # persisted ids checked against the store before a loaded index is trusted


def _format_key() -> str:
    """Changes whenever the code that tokenises chunks or reads the vocabulary does, so a
    persisted index or vocabulary written by older code is rebuilt rather than trusted."""
    import hashlib

    import assistant.vocabulary as vocabulary_module

    digest = hashlib.sha256()
    for module_file in (__file__, vocabulary_module.__file__):
        try:
            digest.update(Path(str(module_file)).read_bytes())
        except OSError:
            digest.update(str(module_file).encode())
    return digest.hexdigest()[:16]


_FORMAT_KEY = _format_key()
_FORMAT_FILE = "format.txt"
_VOCABULARY_FILE = "vocabulary.json"


@dataclass
class _Lexical:
    """``ids[i]`` is BM25 document ``i``; ``by_id`` holds the chunks read so far (all of them
    when ``complete``)."""

    generation: str
    bm25: Any
    ids: list[str]
    by_id: dict[str, Chunk]
    complete: bool = True
    vocabulary: Vocabulary | None = None
    # (ids, unit-norm float32 rows) of a small store, searched exactly in memory; None when
    # the store is too large (or cannot list its vectors): HNSW then. Read once per generation.
    vectors: tuple[list[str], Any] | None = None
    vectors_read: bool = False
    # Lexical rankings of the coverage queries (a fixed query plus the drug's aliases: the same
    # few texts for every dose question about a drug), by query text.
    coverage: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    # What fusion reads of each chunk, by the asked drugs then chunk id (``_Traits``), with the
    # vocabulary they were read with: one value, so a thread that swaps in another vocabulary
    # never writes into the dict of the one before.
    traits: tuple[Vocabulary | None, dict[tuple[str, ...], dict[str, _Traits]]] = field(
        default_factory=lambda: (None, {})
    )


@dataclass(frozen=True)
class _Traits:
    """What fusion reads of one chunk for the asked drugs: a function of the chunk and those
    drugs only, so read once per generation (a new question about a drug asked before meets
    mostly the same candidates), not once per question."""

    about: bool  # names or lists an asked drug (``_about_drugs``)
    lists: bool  # its document lists an asked drug (``_lists_drug``)
    main: bool  # its document is mainly about an asked drug (``_main_drug``)
    first_asked: bool  # its first listed drug is an asked one
    product: bool  # a label or imported document (``_PRODUCT_KINDS``)
    section: str  # its answer section (``_chunk_section``)
    title_words: frozenset[str]


class HybridRetriever:
    def __init__(
        self,
        index: IndexLike,
        embedder: EmbedderLike,
        *,
        data_dir: str | Path | None = None,
        candidates: int = 30,
        query_cache_size: int = QUERY_CACHE_SIZE,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.candidates = candidates
        self._lexical: _Lexical | None = None
        self._lock = threading.Lock()
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._query_cache_size = max(0, query_cache_size)
        self._query_lock = threading.Lock()

    def embed_query(self, text: str) -> list[float]:
        """The query's embedding, from the LRU cache when this text was embedded before."""
        key = query_cache_key(text)
        with self._query_lock:
            cached = self._query_cache.get(key)
            if cached is not None:
                self._query_cache.move_to_end(key)
                return cached
        # The model runs outside the lock: two threads may embed the same new text once each,
        # which is cheaper than serialising every request behind one encode.
        vector = self.encode_query(text)
        if self._query_cache_size:
            with self._query_lock:
                self._query_cache[key] = vector
                self._query_cache.move_to_end(key)
                while len(self._query_cache) > self._query_cache_size:
                    self._query_cache.popitem(last=False)
        return vector

    def encode_query(self, text: str) -> list[float]:
        """The query's embedding from the model, never the cache: the embedder's query path
        (ONNX when it has one) or its batch ``encode``."""
        encode_query = getattr(self.embedder, "encode_query", None)
        if encode_query is not None:
            return [float(x) for x in encode_query(text)]
        return [float(x) for x in self.embedder.encode([text])[0]]

    def prepare(self) -> Vocabulary:
        """Build (or load) the lexical index and the vocabulary of the store's current
        generation and persist both under ``data_dir``. Called right after an ingest, so the
        first question after a large import does not pay for tokenising every chunk."""
        return self.vocabulary()

    # -- lexical index ----------------------------------------------------------------------
    @property
    def generation(self) -> str:
        return str(self.index.generation)

    def chunks(self) -> list[Chunk]:
        lexical = self._ensure_lexical()
        if not lexical.complete:
            with self._lock:
                if not lexical.complete:
                    by_id = {c.id: c for c in self.index.all_chunks()}
                    lexical.by_id.update(by_id)
                    lexical.complete = True
        return [lexical.by_id[i] for i in lexical.ids if i in lexical.by_id]

    def vocabulary(self) -> Vocabulary:
        """The corpus vocabulary of the current generation, built once from every chunk and
        persisted beside the lexical index, so a restart loads it instead of reading the
        whole store back."""
        lexical = self._ensure_lexical()
        if lexical.vocabulary is not None:
            return lexical.vocabulary
        directory = self._bm25_dir(lexical.generation)
        vocabulary = self._load_vocabulary(directory) if directory is not None else None
        if vocabulary is None:
            vocabulary = Vocabulary.from_chunks(self.chunks())
            if directory is not None and lexical.ids and (directory / "chunk_ids.json").is_file():
                _write_atomic(directory / _VOCABULARY_FILE, json.dumps(vocabulary.to_dict()))
        lexical.vocabulary = vocabulary
        return vocabulary

    @staticmethod
    def _load_vocabulary(directory: Path) -> Vocabulary | None:
        path = directory / _VOCABULARY_FILE
        if not path.is_file() or not _format_matches(directory):
            return None
        try:
            return Vocabulary.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # damaged: rebuilt from the chunks

    def _fetch(self, lexical: _Lexical, ids: Sequence[str]) -> None:
        """Read the chunks of ``ids`` that are not in memory yet, in one store call."""
        if lexical.complete:
            return
        missing = [i for i in ids if i not in lexical.by_id]
        if missing:
            for chunk in self.index.get(missing):  # type: ignore[attr-defined]
                lexical.by_id[chunk.id] = chunk

    def _ensure_lexical(self) -> _Lexical:
        generation = self.generation
        lexical = self._lexical
        if lexical is not None and lexical.generation == generation:
            return lexical
        with self._lock:
            if self._lexical is None or self._lexical.generation != generation:
                self._lexical = self._load_or_build(generation)
            return self._lexical

    def _bm25_dir(self, generation: str) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / "bm25" / (_SAFE_GENERATION.sub("_", generation) or "default")

    def _load_or_build(self, generation: str) -> _Lexical:
        import bm25s

        directory = self._bm25_dir(generation)
        loaded = self._load(directory, generation) if directory is not None else None
        if loaded is not None:
            return loaded
        chunks = list(self.index.all_chunks())
        by_id = {c.id: c for c in chunks}
        corpus_tokens = [
            lexical_tokens(" ".join((c.title, " ".join(c.section_path), c.text))) or ["_empty_"]
            for c in chunks
        ]
        bm25 = bm25s.BM25()
        if chunks:
            bm25.index(corpus_tokens, show_progress=False)
        if directory is not None and chunks:
            self._persist(bm25, [c.id for c in chunks], directory)
        return _Lexical(generation, bm25 if chunks else None, [c.id for c in chunks], by_id)

    def _load(self, directory: Path, generation: str) -> _Lexical | None:
        """The persisted index of this generation, when it still describes the store: same
        number of chunks and a spread sample of its ids present. (The chunk ids are content
        hashes, so a sampled id that exists is that chunk.) Without ``count``/``get`` on the
        index, the ids are compared with the full chunk list as before."""
        import bm25s

        if not (directory / "chunk_ids.json").is_file() or not _format_matches(directory):
            return None
        try:
            ids = json.loads((directory / "chunk_ids.json").read_text(encoding="utf-8"))
            if not isinstance(ids, list) or not ids:
                return None
            if hasattr(self.index, "count") and hasattr(self.index, "get"):
                if int(self.index.count()) != len(ids) or len(set(ids)) != len(ids):
                    return None
                step = max(1, len(ids) // _ID_SAMPLE)
                sample = list(dict.fromkeys(ids[::step] + [ids[-1]]))
                found = self.index.get(sample)
                if len(found) != len(sample):
                    return None
                by_id = {c.id: c for c in found}
                complete = False
            else:
                chunks = list(self.index.all_chunks())
                by_id = {c.id: c for c in chunks}
                if set(ids) != set(by_id) or len(ids) != len(chunks):
                    return None
                complete = True
            bm25 = bm25s.BM25.load(str(directory), show_progress=False)
            return _Lexical(generation, bm25, [str(i) for i in ids], by_id, complete)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged cache is rebuilt, never trusted

    @staticmethod
    def _persist(bm25: Any, ids: list[str], directory: Path) -> None:
        # Written to a sibling temp dir and renamed, so a reader never sees half an index.
        try:
            directory.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory.parent))
            bm25.save(str(tmp), show_progress=False)
            (tmp / "chunk_ids.json").write_text(json.dumps(ids), encoding="utf-8")
            (tmp / _FORMAT_FILE).write_text(_FORMAT_KEY, encoding="utf-8")
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
            os.replace(tmp, directory)
        except OSError:
            pass  # persistence is a start-up optimisation; the in-memory index still works

    def _lexical_ranking(self, lexical: _Lexical, query: str) -> list[tuple[str, float]]:
        if lexical.bm25 is None:
            return []
        tokens = [t for t in lexical_tokens(query) if t in lexical.bm25.vocab_dict]
        if not tokens:
            return []
        scores = lexical.bm25.get_scores(tokens)
        order = _top_positive(scores, self.candidates)
        ranked = [(lexical.ids[i], float(scores[i])) for i in order]
        self._fetch(lexical, [cid for cid, _ in ranked])
        # A chunk the store no longer has (an ingest swapped generations) is left out; the
        # caller notices the new generation and ranks again.
        return [(cid, score) for cid, score in ranked if cid in lexical.by_id]

    def _dense(self, lexical: _Lexical, embedding: list[float]) -> list[tuple[Chunk, float]]:
        """Dense neighbours. When the store can answer with ids only, the chunks come from
        memory (or one fetch by id): reading 30 hits' text and metadata back from Chroma cost
        three times the vector search itself."""
        query_ids = getattr(self.index, "query_ids", None)
        if query_ids is None or not lexical.ids:
            return list(self.index.query(embedding, self.candidates, None) or [])
        vectors = self._vectors(lexical)
        if vectors is not None:
            # No Chroma query fails to tell us of a flip: ask the store. A changed generation
            # makes the caller redo this search on the new one.
            follow = getattr(self.index, "follow", None)
            if follow is not None:
                follow()
            hits = exact_nearest(vectors, embedding, self.candidates)
        else:
            hits = list(query_ids(embedding, self.candidates, None) or [])
        missing = [cid for cid, _ in hits if cid not in lexical.by_id]
        if missing:
            # Not in memory: the index is still loading lazily, or an ingest has just swapped
            # generations (the caller notices and asks again).
            fetched = {c.id: c for c in self.index.get(missing)}  # type: ignore[attr-defined]
            if not lexical.complete:
                lexical.by_id.update(fetched)
        else:
            fetched = {}
        out: list[tuple[Chunk, float]] = []
        for cid, distance in hits:
            chunk = lexical.by_id.get(cid) or fetched.get(cid)
            if chunk is not None:
                out.append((chunk, distance))
        return out

    def _coverage_ranking(self, lexical: _Lexical, query: str) -> list[tuple[str, float]]:
        """``_lexical_ranking`` of a coverage query, ranked once per generation: it does not
        depend on the question, only on the drug."""
        got = lexical.coverage.get(query)
        if got is None:
            got = self._lexical_ranking(lexical, query)
            if len(lexical.coverage) >= _COVERAGE_CACHE_SIZE:  # any drug may be asked: bounded
                lexical.coverage.clear()
            lexical.coverage[query] = got
        return got

    def _vectors(self, lexical: _Lexical) -> tuple[list[str], Any] | None:
        """The store's vectors for the exact search, read on the first dense search of a
        generation (or by ``prepare``); None keeps the Chroma search."""
        if lexical.vectors_read:
            return lexical.vectors
        read = getattr(self.index, "vectors", None)
        with self._lock:
            if not lexical.vectors_read:
                lexical.vectors = read(EXACT_SEARCH_LIMIT) if read is not None else None
                lexical.vectors_read = True
        return lexical.vectors

    def clear_memos(self) -> None:
        """Forget the chunk traits fusion remembers (``_Traits``); the next question reads them
        again, as the first question about a drug does."""
        lexical = self._lexical
        if lexical is not None:
            lexical.traits = (None, {})

    # -- retrieval ----------------------------------------------------------------------------
    @staticmethod
    def _traits(
        lexical: _Lexical, facets: QueryFacets, vocabulary: Vocabulary
    ) -> Callable[[Chunk], _Traits]:
        held, by_drugs = lexical.traits
        if held is not vocabulary:
            by_drugs = {}
            lexical.traits = (vocabulary, by_drugs)
        cache = by_drugs.get(facets.drugs)
        if cache is None:
            if len(by_drugs) >= _TRAITS_CACHE_SIZE:  # any drug may be asked: bounded
                by_drugs.clear()
            cache = by_drugs[facets.drugs] = {}
        elif len(cache) >= _TRAITS_PER_DRUGS:
            cache.clear()
        drugs = frozenset(facets.drugs)

        def traits(chunk: Chunk) -> _Traits:
            got = cache.get(chunk.id)
            if got is None:
                got = cache[chunk.id] = _Traits(
                    about=_about_drugs(chunk, facets, vocabulary, drugs),
                    lists=_lists_drug(chunk, drugs),
                    main=_main_drug(chunk, facets),
                    first_asked=bool(chunk.drugs) and chunk.drugs[0].lower() in drugs,
                    product=chunk.doc_kind in _PRODUCT_KINDS,
                    section=_chunk_section(tuple(chunk.section_path)),
                    title_words=_title_words(chunk.title),
                )
            return got

        return traits

    def _coverage(
        self,
        lexical: _Lexical,
        facets: QueryFacets,
        vocabulary: Vocabulary,
        ranked: list[tuple[str, float]],
        chunks: dict[str, Chunk],
        about: Callable[[Chunk], bool],
        per_section: int = 2,
    ) -> list[tuple[str, float]]:
        """A dose question deserves the TPMT and monitoring facts even when the question's
        words did not pull them in: add the best lexical hits for a missing section."""
        have = {cid for cid, _ in ranked}
        present = {_chunk_section(tuple(chunks[cid].section_path)) for cid in have}
        floor = ranked[-1][1] * 0.5
        extra: list[tuple[str, float]] = []
        aliases = " ".join(vocabulary.aliases_of(facets.drugs[0]))
        for section, query in _COVER_QUERIES.items():
            if section in present:
                continue
            added = 0
            for cid, _score in self._coverage_ranking(lexical, f"{query} {aliases}"):
                chunk = lexical.by_id[cid]
                if cid in have or _chunk_section(tuple(chunk.section_path)) != section:
                    continue
                if not about(chunk):
                    continue
                chunks[cid] = chunk
                extra.append((cid, floor))
                have.add(cid)
                added += 1
                if added >= per_section:
                    break
        return extra

    def retrieve(
        self,
        question: str,
        facets: QueryFacets,
        vocabulary: Vocabulary,
        *,
        k: int = 8,
    ) -> Retrieval:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        lexical = self._ensure_lexical()
        expansion = (
            " ".join(" ".join(vocabulary.aliases_of(d)) for d in facets.drugs)
            + " "
            + " ".join(facets.indications + facets.populations)
        )
        lexical_ranked = self._lexical_ranking(lexical, f"{question} {expansion}")
        t1 = time.perf_counter()
        timings["lexical"] = (t1 - t0) * 1000

        dense_query = question
        if facets.drugs and not any(d in question.lower() for d in facets.drugs):
            # A follow-up ("and in pregnancy?") carries its drug only in the facets.
            dense_query = f"{' '.join(facets.drugs)} {' '.join(facets.indications)} {question}"
        embedding = self.embed_query(dense_query)
        t_encoded = time.perf_counter()
        timings["encode"] = (t_encoded - t1) * 1000
        dense = self._dense(lexical, embedding)
        for _retry in range(3):
            if self.generation == lexical.generation:
                break
            # An ingest swapped generations between the two halves: redo both on the new one,
            # so one answer never mixes chunks of two generations.
            lexical = self._ensure_lexical()
            lexical_ranked = self._lexical_ranking(lexical, f"{question} {expansion}")
            dense = self._dense(lexical, embedding)
        t2 = time.perf_counter()
        # "dense" is the vector search alone; "encode" the question's embedding (0 when cached).
        timings["dense"] = (t2 - t_encoded) * 1000

        fused: dict[str, float] = {}
        lex_rank: dict[str, int] = {}
        dense_rank: dict[str, int] = {}
        distances: dict[str, float] = {}
        chunks: dict[str, Chunk] = {}
        for rank, (chunk_id, _score) in enumerate(lexical_ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            lex_rank[chunk_id] = rank
            chunks[chunk_id] = lexical.by_id[chunk_id]
        for rank, (chunk, distance) in enumerate(dense, start=1):
            fused[chunk.id] = fused.get(chunk.id, 0.0) + 1.0 / (RRF_K + rank)
            dense_rank[chunk.id] = rank
            distances[chunk.id] = float(distance)
            chunks.setdefault(chunk.id, chunk)

        vote = 1.0 / (RRF_K + 1)
        matching: dict[str, bool] = {}
        indication_fits: dict[str, bool] = {}  # chunks share few indications: match each once

        def fits(indication: str) -> bool:
            if indication not in indication_fits:
                indication_fits[indication] = any(
                    vocabulary.indication_matches(indication, f) for f in facets.indications
                )
            return indication_fits[indication]

        wanted = _wanted_sections(facets)
        topic = _topic_words(question, facets, vocabulary)
        trait = self._traits(lexical, facets, vocabulary)
        # A document about other drugs that merely names the asked one ("methotrexate with
        # penicillins") answers about those drugs: it is a source only when the question points
        # at its topic (a word of its title beyond the drug names) or no document lists the drug.
        strict = any(trait(chunk).lists for chunk in chunks.values())
        # An imported document or label is about its main drug: a combination product of
        # another drug (a Percocet label for an acetaminophen question) is a source only when
        # the asked drug has no document of its own or the question names that drug too.
        own_main = any(trait(chunk).main for chunk in chunks.values())

        def about(chunk: Chunk) -> bool:
            t = trait(chunk)
            if not t.about:
                return False
            if own_main and t.product and not t.main:
                return False
            if strict and not t.lists:
                return bool(topic & t.title_words)
            return True

        for chunk_id, chunk in chunks.items():
            about_drug = about(chunk)
            matching[chunk_id] = about_drug
            t = trait(chunk)
            bonus = 0.0
            if about_drug:
                bonus += vote
                if t.first_asked:
                    bonus += vote / 2
                if t.product and topic & t.title_words:
                    # Several products of one drug (a tablet and its extended-release form,
                    # "Tylenol PM"): the one whose title the question names leads. (An
                    # article's title names its topic, which the facets match already.)
                    bonus += vote
            if facets.indications and any(fits(ind) for ind in chunk.indications):
                bonus += vote / 2
            if t.section in wanted:
                bonus += vote / 2
            fused[chunk_id] += bonus
        if facets.drugs and any(matching.values()):
            # Metadata filter: once the question names a drug, chunks about other drugs only
            # add noise (and wrong numbers) to the answer.
            fused = {cid: s for cid, s in fused.items() if matching[cid]}

        if _asks_regimen(question, facets):
            # "How Supplied" and "Description" list the strengths a product comes in: the answer
            # to "what doses are available?", never to "what is the usual dose?".
            fused = {cid: sc for cid, sc in fused.items() if not _lists_strengths(chunks[cid])}
        ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:k]
        if facets.intent in ("dose", "general") and facets.drugs and ranked:
            ranked += self._coverage(lexical, facets, vocabulary, ranked, chunks, about)
        doc_rank: dict[str, int] = {}
        for cid, _score in ranked:
            doc_rank.setdefault(chunks[cid].doc_id, len(doc_rank))
        result = tuple(
            to_retrieved(
                chunks[cid],
                score,
                doc_rank=doc_rank[chunks[cid].doc_id],
                lexical_rank=lex_rank.get(cid),
                dense_rank=dense_rank.get(cid),
                distance=distances.get(cid),
            )
            for cid, score in ranked
        )
        timings["fusion"] = (time.perf_counter() - t2) * 1000
        return Retrieval(
            chunks=result,
            timings_ms=timings,
            best_distance=min(distances.values()) if distances else None,
            lexical_hits=len(lexical_ranked),
        )


def _format_matches(directory: Path) -> bool:
    try:
        return (directory / _FORMAT_FILE).read_text(encoding="utf-8").strip() == _FORMAT_KEY
    except OSError:
        return False


def _write_atomic(path: Path, text: str) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError:
        pass  # persistence is a start-up optimisation only


def exact_nearest(
    vectors: tuple[list[str], Any], embedding: Sequence[float], k: int
) -> list[tuple[str, float]]:
    """The ``k`` nearest ids by cosine distance (1 - cosine similarity, as Chroma's cosine
    space reports it), closest first; equal distances keep store order."""
    ids, matrix = vectors
    if k <= 0 or not ids:
        return []
    query = np.asarray(embedding, dtype=np.float32)
    norm = float(np.linalg.norm(query))
    if norm > 0:
        query = query / norm
    distance = 1.0 - matrix @ query
    if len(ids) > k:
        top = np.argpartition(distance, k - 1)[:k]
    else:
        top = np.arange(len(ids))
    order = top[np.lexsort((top, distance[top]))]
    return [(ids[i], float(distance[i])) for i in order]


def _top_positive(scores: Any, k: int) -> Any:
    """Indices of the ``k`` highest positive scores, best first; equal scores put the higher
    index first (what a descending full sort gave). Partitions instead of sorting every
    document: at 100k chunks a full argsort alone cost ~8 ms per question."""
    idx = np.flatnonzero(scores > 0)
    if k <= 0 or idx.size == 0:
        return idx[:0]
    values = scores[idx]
    if idx.size > k:
        threshold = values[np.argpartition(values, idx.size - k)[idx.size - k]]
        keep = values >= threshold  # ties at the threshold all compete in the sort below
        idx, values = idx[keep], values[keep]
    order = np.lexsort((-idx, -values))
    return idx[order][:k]


_COVERAGE_CACHE_SIZE = 1024
_TRAITS_CACHE_SIZE = 256  # asked drug sets per generation
_TRAITS_PER_DRUGS = 20000  # chunks per drug set
_COVER_QUERIES = {
    "Pharmacogenomics": "TPMT NUDT15 testing before starting intermediate metabolizer dose",
    "Monitoring": "monitoring blood counts weekly first weeks liver tests",
}


# Documents whose drug list is read from their content (the first is the product's drug), not
# written by an author who lists every drug an article is about.
_PRODUCT_KINDS = frozenset({"label", "text", "html", "pdf"})


_STRENGTH_HEADING_RE = re.compile(
    r"how supplied|description|dosage forms|strengths?\b|active ingredients?", re.I
)
_REGIMEN_RE = re.compile(
    r"\b(?:usual|start(?:ing)?|initial|initiat\w*|maintenance|maximum|max|recommended|loading"
    r"|titrat\w*|taper\w*|per day|a day|daily|weekly|per kg|mg/kg|regimen|schedule)\b",
    re.I,
)


def _asks_regimen(question: str, facets: QueryFacets) -> bool:
    """Does the question ask how much to give (a role, an indication, a population) rather than
    which strengths a product comes in?"""
    return bool(facets.indications or facets.populations or _REGIMEN_RE.search(question))


def _lists_strengths(chunk: Chunk) -> bool:
    """Is the chunk a product document's strengths list (How Supplied, Description...)?"""
    if chunk.doc_kind not in _PRODUCT_KINDS:
        return False
    # A label's path holds its section headings only; an imported document's starts with its title.
    headings = chunk.section_path if chunk.doc_kind == "label" else chunk.section_path[1:]
    return bool(headings) and bool(_STRENGTH_HEADING_RE.search(headings[-1]))


def _main_drug(chunk: Chunk, facets: QueryFacets) -> bool:
    """Is the chunk's document mainly about an asked drug (its first drug)? A label lists its
    salt first ("atorvastatin calcium"): the salt of the asked drug is that drug."""
    if not chunk.drugs:
        return False
    main = chunk.drugs[0].lower()
    return any(main == d or main.startswith(f"{d} ") for d in facets.drugs)


def _lists_drug(chunk: Chunk, drugs: frozenset[str]) -> bool:
    """Is an asked drug (``drugs``) one of the drugs the chunk's document is about (its
    metadata)?"""
    return any(d.lower() in drugs for d in chunk.drugs)


@functools.lru_cache(maxsize=4096)
def _title_words(title: str) -> frozenset[str]:
    return frozenset(lexical_tokens(title))


def _topic_words(question: str, facets: QueryFacets, vocabulary: Vocabulary) -> set[str]:
    """The question's words that are not the asked drugs' names: "thiopurine" in "allopurinol
    dose used with a reduced thiopurine" points at a thiopurine article."""
    names = {t for d in facets.drugs for a in vocabulary.aliases_of(d) for t in lexical_tokens(a)}
    return {t for t in lexical_tokens(question) if t not in names and t not in _TOPIC_COMMON}


# Words any dose question and any article title share: they point at no article in particular.
_TOPIC_COMMON = frozenset(
    """dose doses dosing dosage mg day daily adult adults patient patients tablet tablets
    information prescribing excerpt label""".split()
)


def _about_drugs(
    chunk: Chunk, facets: QueryFacets, vocabulary: Vocabulary, drugs: frozenset[str] | None = None
) -> bool:
    """Whether ``chunk`` is about a drug of ``facets`` (``drugs``: its drugs as a set, made
    once by a caller that asks for every candidate)."""
    if not facets.drugs:
        return False
    wanted = drugs if drugs is not None else frozenset(facets.drugs)
    if _lists_drug(chunk, wanted):
        return True
    return not wanted.isdisjoint(vocabulary.mentions(f"{chunk.title} {chunk.text}", "drug"))


_INTENT_SECTIONS = {
    "dose": {"Dosing", "Duration"},
    "monitoring": {"Monitoring"},
    "duration": {"Duration", "Dosing"},
    "interaction": {"Interactions"},
    "pharmacogenomics": {"Pharmacogenomics"},
    "adverse": {"Adverse effects", "Contraindications"},
    "contraindication": {"Contraindications"},
    "pregnancy": {"Special populations"},
}


@functools.lru_cache(maxsize=8192)
def _chunk_section(section_path: tuple[str, ...]) -> str:
    # A pure function of the heading path, asked for every candidate of every question.
    return answer_section(section_path)


def _wanted_sections(facets: QueryFacets) -> frozenset[str]:
    wanted = set(_INTENT_SECTIONS.get(facets.intent, ()))
    if facets.populations:
        wanted.add("Special populations")
    return frozenset(wanted)


def __getattr__(name: str) -> Any:
    # The LangChain retriever lives in its own module: importing LangChain's retriever base
    # costs ~0.5 s (runnables, tracers, langsmith), which an ask without LangChain never needs.
    if name == "LangChainHybridRetriever":
        from assistant.langchain_retriever import LangChainHybridRetriever

        return LangChainHybridRetriever
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
