"""Build the systems under evaluation from plain values (the entry point owns Settings)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from ingest.model import StoreConfig  # noqa: E402

__all__ = ["build_assistant", "build_baseline"]


def build_assistant(
    store: StoreConfig,
    model_path: str,
    data_dir: Path,
    corpus_dir: Path,
    *,
    chunk_size: int = 900,
    k: int = 8,
    embedder: Any = None,
    ingest_if_empty: bool = True,
) -> tuple[Any, Any]:
    """(Assistant, Embedder) on the configured index. An index never ingested is filled from the
    corpus first, so `dosewise eval` works on a fresh checkout; a populated index is used as is."""
    from assistant.chain import Assistant
    from guardrails import load_limits
    from ingest.embeddings import Embedder
    from ingest.pipeline import run_ingest
    from ingest.store import open_index

    embedder = embedder or Embedder(model_path)
    index = open_index(store, embedder)
    if ingest_if_empty and not index.stats().get("chunks"):
        run_ingest(
            [str(corpus_dir)],
            store,
            embedder,
            chunk_size=chunk_size,
            data_dir=data_dir,
            progress=False,
        )
        index = open_index(store, embedder)
    assistant = Assistant(index, embedder, load_limits(), k=k, data_dir=data_dir)
    return assistant, embedder


def build_baseline(corpus_dir: Path, embedder: Any, work_dir: Path) -> Any:
    """The tutorial chain over the raw corpus files, in its own Chroma directory."""
    from evals.baseline import Baseline

    files = sorted(Path(corpus_dir).glob("*.md"))
    return Baseline.build(files, embedder.as_langchain(), Path(work_dir) / "baseline-chroma")
