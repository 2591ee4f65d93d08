"""User-facing errors of the ingest package. Every message is meant to be shown as is.

Exception tree::

    IngestError                      base of everything ingest raises on purpose
    ├── CorpusError                  a corpus file cannot be used (caught per file → SkippedFile)
    │   ├── FrontMatterError         YAML front matter missing, unparsable or invalid
    │   └── LabelError               an FDA SPL label file is not XML, not SPL, malformed or empty
    ├── IngestLockedError            another ingest holds the writer lock and did not finish in time
    ├── StoreUnavailableError        the Chroma store cannot be opened or reached (server down, bad path)
    ├── EmbeddingModelError          the sentence-transformers model cannot be loaded from its path
    └── LabelFetchError              a label could not be downloaded from DailyMed (offline, HTTP error)
"""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "EmbeddingModelError",
    "FrontMatterError",
    "IngestError",
    "IngestLockedError",
    "LabelError",
    "LabelFetchError",
    "StoreUnavailableError",
]


class IngestError(Exception):
    """Base class: the message is user-facing."""


class CorpusError(IngestError):
    """One file cannot be ingested; ``reason`` is the short user-facing explanation."""

    def __init__(self, reason: str, path: str = "") -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{path}: {reason}" if path else reason)


class FrontMatterError(CorpusError):
    pass


class IngestLockedError(IngestError):
    pass


class StoreUnavailableError(IngestError):
    pass


class EmbeddingModelError(IngestError):
    pass


class LabelError(CorpusError):
    """An SPL label file cannot be used (not XML, not SPL, malformed, no sections)."""


class LabelFetchError(IngestError):
    """A label could not be downloaded (offline, timeout, HTTP error, not an SPL answer)."""
