"""Section-aware chunking: a chunk never spans two headings.

Each ``#``/``##``/``###`` heading opens a section; its text (up to the next heading of any level)
is one chunk when it fits ``chunk_size`` characters, otherwise it is split on paragraph, line and
sentence boundaries. ``chunk.text == doc.body[chunk.start:chunk.end]`` always holds, so a citation
can be highlighted in the original document.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from ingest.citations import cited_source_ids
from ingest.model import Chunk, Document

__all__ = ["chunk_document", "chunk_id", "embedding_text", "sections"]

_HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_FENCE_RE = re.compile(r"^(```|~~~)", re.M)
_SEPARATORS = ["\n\n", "\n", ". ", "; ", ", ", " ", ""]
_SELF_CITED = frozenset({"label", "text", "html", "pdf"})


def _digest(*parts: str, size: int = 32) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:size]


def chunk_id(doc_id: str, section_path: tuple[str, ...], ordinal: int, content_hash: str) -> str:
    return _digest(doc_id, "\x1e".join(section_path), str(ordinal), content_hash)


def _fenced_ranges(body: str) -> list[tuple[int, int]]:
    # A '#' line inside a code fence is not a heading.
    marks = [m.start() for m in _FENCE_RE.finditer(body)]
    return [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]


def sections(body: str) -> Iterator[tuple[tuple[str, ...], int, int]]:
    """Yield ``(section_path, start, end)`` for the text between consecutive headings."""
    fences = _fenced_ranges(body)
    path: list[tuple[int, str]] = []
    start = 0
    current: tuple[str, ...] = ()
    for m in _HEADING_RE.finditer(body):
        if any(a < m.start() < b for a, b in fences):
            continue
        yield current, start, m.start()
        level = min(len(m.group(1)), 3)
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, m.group(2).strip()))
        current = tuple(title for _, title in path)
        start = m.end()
    yield current, start, len(body)


def _pieces(text: str, chunk_size: int) -> Iterator[tuple[int, int]]:
    """Offsets (relative to ``text``) of the stripped pieces of one section."""
    stripped = text.strip()
    if not stripped:
        return
    lead = len(text) - len(text.lstrip())
    if len(stripped) <= chunk_size:
        yield lead, lead + len(stripped)
        return
    # Imported here: the text splitter (and LangChain's document classes under it) costs ~0.3 s
    # to import, and the store imports this module for every question, which never splits.
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=chunk_size,
        chunk_overlap=0,
        separators=_SEPARATORS,
        keep_separator="end",
        strip_whitespace=True,
    )
    cursor = 0
    for piece in splitter.split_text(text):
        at = text.find(piece, cursor)
        if (
            at < 0
        ):  # the splitter only strips whitespace, so this cannot happen; fail loudly if it does
            raise AssertionError("chunk text not found in section")
        yield at, at + len(piece)
        cursor = at + len(piece)


def chunk_document(doc: Document, chunk_size: int) -> list[Chunk]:
    if chunk_size < 50:
        raise ValueError(f"chunk_size must be at least 50 characters, got {chunk_size}")
    by_id = {s.id: s for s in doc.sources}
    chunks: list[Chunk] = []
    ordinals: dict[tuple[str, ...], int] = {}
    for section_path, s_start, s_end in sections(doc.body):
        for a, b in _pieces(doc.body[s_start:s_end], chunk_size):
            start, end = s_start + a, s_start + b
            text = doc.body[start:end]
            ids = tuple(i for i in cited_source_ids(text) if i in by_id)
            if not ids and doc.doc_kind in _SELF_CITED:
                # A label, or an imported document, is its own source: every passage of it is
                # backed by the document (its title and section are the citation).
                ids = tuple(by_id)
            ordinal = ordinals.get(section_path, 0)
            ordinals[section_path] = ordinal + 1
            content_hash = _digest(text, size=16)
            chunks.append(
                Chunk(
                    id=chunk_id(doc.doc_id, section_path, ordinal, content_hash),
                    doc_id=doc.doc_id,
                    title=doc.title,
                    section_path=section_path,
                    text=text,
                    start=start,
                    end=end,
                    content_hash=content_hash,
                    source_ids=ids,
                    sources=tuple(by_id[i] for i in ids),
                    drugs=doc.drugs,
                    indications=doc.indications,
                    audience=doc.audience,
                    review_status=doc.review_status,
                    last_reviewed=doc.last_reviewed,
                    path=doc.path,
                    doc_kind=doc.doc_kind,
                    brand_names=doc.brand_names,
                )
            )
    return chunks


def embedding_text(chunk: Chunk) -> str:
    """What gets embedded: the passage with its title and section, so a bare table row or a short
    paragraph still lands near questions about its drug and topic."""
    path = chunk.section_path
    if path[:1] == (chunk.title,):
        path = path[1:]
    header = " > ".join((chunk.title, *path))
    return f"{header}\n{chunk.text}"
