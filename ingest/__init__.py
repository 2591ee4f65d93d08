"""Corpus → chunks → embeddings → Chroma. Public surface re-exported lazily, so importing
``ingest.model`` (as settings.py does) never pulls in chromadb or torch."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Chunk",
    "Document",
    "DrugLexicon",
    "Embedder",
    "Index",
    "IngestReport",
    "SkippedFile",
    "SourceRef",
    "StatementStore",
    "StoreConfig",
    "chunk_document",
    "format_summary",
    "load_corpus",
    "load_file",
    "open_index",
    "run_ingest",
]

_WHERE = {
    "Chunk": "ingest.model",
    "Document": "ingest.model",
    "IngestReport": "ingest.model",
    "SkippedFile": "ingest.model",
    "SourceRef": "ingest.model",
    "StoreConfig": "ingest.model",
    "Embedder": "ingest.embeddings",
    "DrugLexicon": "ingest.lexicon",
    "StatementStore": "ingest.statements",
    "Index": "ingest.store",
    "open_index": "ingest.store",
    "chunk_document": "ingest.chunking",
    "load_corpus": "ingest.loaders",
    "load_file": "ingest.loaders",
    "format_summary": "ingest.pipeline",
    "run_ingest": "ingest.pipeline",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
