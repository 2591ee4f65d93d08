"""Synthetic chunks for the scale benchmark, derived from the real corpus.

Each synthetic chunk recombines 2-4 real corpus sentences (with their ``[@source]`` markers, so
the composer and guard still resolve citations). Nine documents in ten are re-attributed to an
invented drug name, with the numbers scaled, so a large store looks like a formulary of many
drugs rather than 100k copies of azathioprine; the tenth keeps its real drugs and numbers.

Vectors: every distinct corpus sentence is encoded once by the real model and cached under
``bench/cache/``; a synthetic chunk's vector is the normalised mean of its sentences' vectors plus
small Gaussian noise. So 100k chunks need only a few hundred encodes. (The invented drug names
and scaled numbers are not re-encoded: the vector is that of the original sentences.)
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.model import Chunk, SourceRef

__all__ = ["VECTOR_METHOD", "SentencePool", "SyntheticCorpus", "build_pool", "fake_drug_name"]

VECTOR_METHOD = (
    "mean of cached real-model embeddings of the 2-4 corpus sentences each synthetic chunk "
    "recombines, plus N(0, 0.01) noise per dimension, renormalised; sentences encoded once "
    "and cached under bench/cache/"
)
CHUNKS_PER_DOC = 25
REAL_DOC_EVERY = 10  # one synthetic document in ten keeps its real drugs and numbers
_NOISE_SIGMA = 0.01
_MARKER = re.compile(r"\[@[^\]]*\]")
_MARKER_IDS = re.compile(r"@([A-Za-z0-9_.-]+)")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w])")
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|\n+")
_FACTORS = (0.5, 0.75, 1.25, 1.5, 2.0)
_PLACEHOLDER = "qqdrugplaceholderqq"
_BRANDS = (
    "imuran",
    "azasan",
    "aza",
    "cellcept",
    "myfortic",
    "mmf",
    "cytoxan",
    "6-mp",
    "purinethol",
)

_PREFIX = (
    "zor",
    "bel",
    "tam",
    "vix",
    "lor",
    "cen",
    "dap",
    "quen",
    "tol",
    "fen",
    "ral",
    "sev",
    "nab",
    "ost",
    "pra",
    "kel",
    "mib",
    "sor",
    "tev",
    "ulo",
)
_MIDDLE = ("a", "i", "o", "e", "u", "ar", "el", "ox", "in", "um")
_SUFFIX = (
    "imab",
    "inib",
    "olol",
    "pril",
    "statin",
    "azole",
    "mycin",
    "parin",
    "dronate",
    "tide",
    "sartan",
    "vir",
    "afil",
    "oxacin",
    "triptan",
    "prazole",
)


def fake_drug_name(k: int) -> str:
    """The k-th invented generic name (3200 distinct before repeating with a numeric tag)."""
    size = len(_PREFIX) * len(_MIDDLE) * len(_SUFFIX)
    base, tag = k % size, k // size
    p, rest = divmod(base, len(_MIDDLE) * len(_SUFFIX))
    m, s = divmod(rest, len(_SUFFIX))
    name = _PREFIX[p] + _MIDDLE[m] + _SUFFIX[s]
    return f"{name}{tag}" if tag else name


@dataclass(frozen=True)
class _Sentence:
    text: str
    chunk: Chunk  # where it came from: section, drugs, indications, sources


@dataclass(frozen=True)
class SentencePool:
    sentences: tuple[_Sentence, ...]
    vectors: Any  # float32 array, one normalised row per sentence
    cache_hit: bool
    cache_file: str


def _split(chunk: Chunk) -> list[str]:
    out = []
    for piece in _SENTENCE_SPLIT.split(chunk.text):
        piece = piece.strip().lstrip("#-*| ").strip()
        if len(piece) >= 40 and sum(ch.isalpha() for ch in piece) >= 20:
            out.append(piece)
    return out


def build_pool(
    chunks: Sequence[Chunk], embedder: Any, cache_dir: str | Path, *, limit: int | None = None
) -> SentencePool:
    """Distinct corpus sentences and their real embeddings (from the cache when present)."""
    seen: set[str] = set()
    sentences: list[_Sentence] = []
    for chunk in sorted(chunks, key=lambda c: (c.doc_id, c.start)):
        for text in _split(chunk):
            if text not in seen:
                seen.add(text)
                sentences.append(_Sentence(text, chunk))
    if limit is not None:
        sentences = sentences[:limit]
    if not sentences:
        raise ValueError("the corpus has no sentences to derive synthetic chunks from")
    texts = [s.text for s in sentences]
    key = hashlib.sha256(
        (Path(str(getattr(embedder, "model_path", ""))).name + "\x1f" + "\x1e".join(texts)).encode()
    ).hexdigest()[:16]
    cache = Path(cache_dir) / f"sentences-{key}.npy"
    hit = False
    vectors: Any = None
    if cache.is_file():
        try:
            vectors = np.load(cache)
            hit = vectors.shape[0] == len(texts)
        except (OSError, ValueError):
            hit = False
    if not hit:
        vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, vectors)
        tmp.replace(cache)
    return SentencePool(tuple(sentences), vectors, hit, str(cache))


def _outside_markers(text: str, fn: Callable[[str], str]) -> str:
    """Apply ``fn`` to the prose only: markers such as [@kdigo-2024-ln] or [@imuran] must
    survive untouched or their citations would no longer resolve."""
    parts = _MARKER.split(text)
    markers = _MARKER.findall(text)
    out = [fn(parts[0])]
    for marker, part in zip(markers, parts[1:], strict=True):
        out.append(marker)
        out.append(fn(part))
    return "".join(out)


def _scale_numbers(text: str, factor: float) -> str:
    def one(m: re.Match[str]) -> str:
        raw = m.group(1)
        value = float(raw) * factor
        return f"{value:.1f}" if "." in raw else str(max(1, round(value)))

    return _NUMBER.sub(one, text)


class SyntheticCorpus:
    """``take(start, stop)`` → (chunk, vector) pairs; chunk ``i`` depends only on (seed, i), so
    growing a store from 1k to 10k adds chunks 1000..9999 without changing the first thousand."""

    def __init__(self, pool: SentencePool, *, seed: int = 7) -> None:
        self.pool = pool
        self.seed = seed
        real = sorted(
            {d for s in pool.sentences for d in s.chunk.drugs} | set(_BRANDS), key=len, reverse=True
        )
        self._real_drugs = re.compile(
            r"(?<![\w-])(" + "|".join(re.escape(d) for d in real) + r")(?![\w-])", re.IGNORECASE
        )
        # Per sentence and factor, the re-attributed text with a placeholder for the drug: the
        # regex work is done once per pair instead of once per chunk (100k chunks draw on a few
        # hundred sentences). The placeholder is word characters, like every invented name, so
        # number scaling sees the same neighbours as when the name itself was substituted.
        self._templates: dict[tuple[int, int], str] = {}
        self._docs: dict[int, tuple[int, int]] = {}

    def take(self, start: int, stop: int) -> list[tuple[Chunk, list[float]]]:
        return [self._one(i) for i in range(start, stop)]

    def _template(self, sentence: int, factor: int) -> str:
        key = (sentence, factor)
        text = self._templates.get(key)
        if text is None:
            f = _FACTORS[factor]
            text = self._templates[key] = _outside_markers(
                self.pool.sentences[sentence].text,
                lambda t: _scale_numbers(self._real_drugs.sub(_PLACEHOLDER, t), f),
            )
        return text

    def _doc(self, doc: int) -> tuple[int, int]:
        """(anchor sentence, factor index) of a document: the same for its 25 chunks."""
        drawn = self._docs.get(doc)
        if drawn is None:
            doc_rng = np.random.default_rng((self.seed, 1_000_000_007, doc))
            anchor = int(doc_rng.integers(len(self.pool.sentences)))
            drawn = (anchor, int(doc_rng.integers(len(_FACTORS))))
            if len(self._docs) > 4096:
                self._docs.clear()
            self._docs[doc] = drawn
        return drawn

    def _one(self, i: int) -> tuple[Chunk, list[float]]:
        rng = np.random.default_rng((self.seed, i))
        doc = i // CHUNKS_PER_DOC
        picks = rng.choice(len(self.pool.sentences), size=int(rng.integers(2, 5)), replace=False)
        parts = [self.pool.sentences[int(p)] for p in picks]
        anchor_index, factor = self._doc(doc)
        anchor = self.pool.sentences[anchor_index].chunk
        real = doc % REAL_DOC_EVERY == 0
        if real:
            drugs = anchor.drugs
            text = " ".join(p.text for p in parts)
            title = f"{anchor.title} (formulary note {doc})"
        else:
            drug = fake_drug_name(
                doc // REAL_DOC_EVERY * (REAL_DOC_EVERY - 1) + doc % REAL_DOC_EVERY - 1
            )
            drugs = (drug,)
            text = " ".join(self._template(int(p), factor) for p in picks).replace(
                _PLACEHOLDER, drug
            )
            indication = anchor.indications[0] if anchor.indications else "general use"
            title = f"{drug.capitalize()} in {indication}"
        by_id: dict[str, SourceRef] = {}
        for p in parts:
            for s in p.chunk.sources:
                by_id.setdefault(s.id, s)
        cited = [i for m in _MARKER.findall(text) for i in _MARKER_IDS.findall(m)]
        source_ids = tuple(dict.fromkeys(s for s in cited if s in by_id))
        section_path = (title, *anchor.section_path[1:]) if anchor.section_path else (title,)
        chunk = Chunk(
            id=hashlib.sha256(f"bench-syn-{self.seed}-{i}".encode()).hexdigest()[:32],
            doc_id=f"syn-{doc:05d}",
            title=title,
            section_path=section_path,
            text=text,
            start=(i % CHUNKS_PER_DOC) * 1000,
            end=(i % CHUNKS_PER_DOC) * 1000 + len(text),
            content_hash=hashlib.sha256(text.encode()).hexdigest()[:16],
            source_ids=source_ids,
            sources=tuple(by_id[s] for s in source_ids),
            drugs=tuple(drugs),
            indications=anchor.indications,
            audience=anchor.audience,
            review_status=anchor.review_status,
            last_reviewed=anchor.last_reviewed,
            path=f"synthetic/syn-{doc:05d}.md",
            doc_kind=anchor.doc_kind,
        )
        # ndarray.mean and linalg.norm, spelled out: their per-call overhead was a third of
        # the generation time (same float32 sum-then-divide, same sqrt of the dot product).
        mean = np.add.reduce(self.pool.vectors[picks], axis=0)
        np.true_divide(mean, len(picks), out=mean, casting="unsafe")
        vec = mean + rng.normal(0.0, _NOISE_SIGMA, self.pool.vectors.shape[1])
        vec = vec / (math.sqrt(vec.dot(vec)) or 1.0)
        return chunk, vec.astype(np.float32).tolist()
