"""Typed values that flow out of ingest: documents, chunks, reports."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chunk", "Document", "IngestReport", "SkippedFile", "SourceRef", "StoreConfig"]


@dataclass(frozen=True)
class SourceRef:
    id: str
    reference: str  # full primary reference, e.g. "KDIGO 2024 Clinical Practice Guideline ..."
    kind: str = "guideline"  # label | guideline | trial | review | cpic | other
    section: str = ""
    url: str = ""


@dataclass(frozen=True)
class Document:
    """A loaded source file, before chunking. ``body`` is Markdown-like text whose
    ``#``/``##``/``###`` headings delimit sections (loaders for HTML, PDF and SPL labels
    emit headings too, so one chunker serves all)."""

    doc_id: str
    title: str
    body: str
    path: str
    drugs: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    audience: str = "clinician"
    review_status: str = "draft"
    last_reviewed: str = ""
    sources: tuple[SourceRef, ...] = ()
    doc_kind: str = "article"  # article | label | text | html | pdf
    brand_names: tuple[str, ...] = ()
    content_hash: str = ""


@dataclass(frozen=True)
class Chunk:
    """A piece of one document under one heading. ``id`` is a stable hash of
    (doc_id, section_path, ordinal, content_hash) so re-ingest is idempotent."""

    id: str
    doc_id: str
    title: str
    section_path: tuple[str, ...]
    text: str
    start: int
    end: int
    content_hash: str
    source_ids: tuple[str, ...] = ()
    sources: tuple[SourceRef, ...] = ()
    drugs: tuple[str, ...] = ()
    indications: tuple[str, ...] = ()
    audience: str = "clinician"
    review_status: str = "draft"
    last_reviewed: str = ""
    path: str = ""
    doc_kind: str = "article"  # article | label | text | html | pdf
    brand_names: tuple[str, ...] = ()  # lower-case brand names of the document's drugs

    @property
    def section(self) -> str:
        return " > ".join(self.section_path)


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass(frozen=True)
class IngestReport:
    files_seen: int
    chunks_added: int
    chunks_updated: int
    chunks_removed: int
    chunks_unchanged: int
    skipped: tuple[SkippedFile, ...]
    seconds: float
    generation: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def chunks_per_second(self) -> float:
        written = self.chunks_added + self.chunks_updated
        return written / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class StoreConfig:
    """Where the Chroma index lives. mode 'embedded' uses ``path``; 'server' uses host/port."""

    mode: str = "embedded"
    path: str = "data/chroma"
    host: str = "127.0.0.1"
    port: int = 8000
    collection: str = "dosewise"
    timeout_s: float = 10.0
