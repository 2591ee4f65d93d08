"""Sentence-transformers embeddings from a local model path, and adapters for LangChain and Chroma.

The model loads lazily on first use (an unchanged re-ingest or ``dosewise stats`` never pays for
it). Chroma only ever sees :class:`ChromaEmbeddingFunction`, so its default embedding function,
which would try to download an ONNX model, never runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch's OpenMP workers otherwise spin-wait after every encode; on a shared 2-core machine that
# starved Chroma's threads and made one query embedding ~10x slower (bench/: 500 ms vs 55 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from typing import Any  # noqa: E402

from chromadb.api.types import Documents, EmbeddingFunction  # noqa: E402
from chromadb.api.types import Embeddings as ChromaEmbeddings  # noqa: E402
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402

from ingest.errors import EmbeddingModelError  # noqa: E402

__all__ = ["ChromaEmbeddingFunction", "Embedder", "LangChainEmbeddings"]

_BATCH_SIZE = 32


class Embedder:
    """Normalised sentence embeddings on CPU from ``model_path`` (a local directory)."""

    _shared: dict[str, Embedder] = {}
    _shared_lock = threading.Lock()

    def __init__(self, model_path: str, *, batch_size: int = _BATCH_SIZE) -> None:
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @classmethod
    def shared(cls, model_path: str) -> Embedder:
        """One Embedder per path per process (used when Chroma rebuilds our function from config)."""
        with cls._shared_lock:
            if model_path not in cls._shared:
                cls._shared[model_path] = cls(model_path)
            return cls._shared[model_path]

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                if not os.path.isdir(self.model_path):
                    raise EmbeddingModelError(
                        f"embedding model not found at {self.model_path!r} (a local directory is "
                        "required; nothing is downloaded)"
                    )
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output

                try:
                    self._model = SentenceTransformer(
                        self.model_path, device="cpu", local_files_only=True
                    )
                except Exception as exc:
                    raise EmbeddingModelError(
                        f"cannot load embedding model from {self.model_path!r}: {exc}"
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise EmbeddingModelError(
                f"model at {self.model_path!r} reports no embedding dimension"
            )
        return int(dim)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [[float(x) for x in row] for row in vectors]

    def encode_query(self, text: str) -> list[float]:
        return self.encode([text])[0]

    def as_langchain(self) -> LangChainEmbeddings:
        return LangChainEmbeddings(self)

    def as_chroma(self) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(self)


class LangChainEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by the same loaded model."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_query(text)


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function; registered so a collection re-opened from its persisted
    configuration rebuilds this (from the model path), never Chroma's default."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self.embedder.encode(list(input))]

    @staticmethod
    def name() -> str:
        return "dosewise-sentence-transformer"

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.embedder.model_path}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(Embedder.shared(str(config["model_path"])))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"
