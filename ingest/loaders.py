"""Turn corpus files into :class:`~ingest.model.Document` values, reporting bad files instead of failing.

Supported: Markdown with YAML front matter (``.md``), plain text (``.txt``), HTML (``.html``/``.htm``),
PDF (``.pdf``) and, when ``ingest/spl.py`` is present, FDA SPL labels (``.xml`` in the HL7 v3
namespace). Every loader emits a body whose ``#`` headings delimit sections, so one chunker serves
all. When a directory is walked, hidden files, ``_``-prefixed files and ``README*`` are ignored,
and so are files of other types; files named explicitly are always considered.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ingest.citations import cited_source_ids
from ingest.detect import detect_topics, headings_of
from ingest.errors import CorpusError, FrontMatterError
from ingest.model import Document, SkippedFile, SourceRef
from ingest.schema import validate_front_matter

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IMPORTED_KINDS",
    "SUPPORTED_SUFFIXES",
    "load_corpus",
    "load_file",
]

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
SUPPORTED_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".pdf", ".xml"})
_HL7_NS = b"urn:hl7-org:v3"
_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$\n?", re.S | re.M)
_SLUG_RE = re.compile(r"[^a-z0-9]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_HEADING_TAGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 3, "h5": 3, "h6": 3}
IMPORTED_KINDS = frozenset({"text", "html", "pdf"})
LOCAL_EVIDENCE = "local document"
# A plain-text heading: a short line in capitals ("DOSAGE AND ADMINISTRATION", "2.1 ADULTS"),
# optionally numbered. Lower-case words, sentence punctuation or figures make it text.
_CAPS_HEADING_RE = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2})*\.?[ \t]+)?([A-Z][A-Z &/,()'’-]{2,78}[A-Z)])[ \t]*:?$"
)
_SETEXT_RE = re.compile(r"^(?P<text>[^\n#].{1,98})\n(?P<bar>=+|-+)[ \t]*$", re.M)
# A number at the end of a PDF line whose unit starts the next line ("500" / "mg").
_UNIT_WORDS = (
    r"(?:mg|mcg|µg|micrograms?|milligrams?|g|grams?|kg|mL|ml|L|units?|IU|mmol|mEq|%|"
    r"mg/kg|mg/m2|hours?|days?|weeks?|times|tablets?|capsules?|doses?)"
)
_WRAPPED_UNIT_RE = re.compile(rf"(\d)[ \t]*\n[ \t]*(?={_UNIT_WORDS}\b)")
_WRAPPED_NUMBER_RE = re.compile(r"(\b(?:to|and|or|of|every|up to|[-–—])[ \t]*)\n[ \t]*(?=\d)")
_SENTENCE_END_RE = re.compile(r"[.:;!?)]$")
# A line ending in a comma or a word that cannot end a sentence goes on in the next line, even
# one that opens with a capital ("... [see USE IN" / "SPECIFIC POPULATIONS (8.6)]").
_OPEN_END_RE = re.compile(
    r"(?:,|\b(?:and|or|of|in|to|the|a|an|with|for|by|at|from|than|as|per|on|into|over|under"
    r"|between|within|is|are|be|see))$"
)


def _slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "document"


def _decode(data: bytes, path: str) -> str:
    if b"\x00" in data[:8192]:
        raise CorpusError("binary file (contains NUL bytes)", path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"not UTF-8 (invalid byte 0x{data[exc.start]:02x} at offset {exc.start})", path
        ) from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise CorpusError("empty file", path)
    return text


def _check_citations(body: str, sources: Sequence[SourceRef], path: str) -> None:
    known = {s.id for s in sources}
    unknown = [i for i in cited_source_ids(body) if i not in known]
    if unknown:
        raise CorpusError(
            f"unknown citation source id(s): {', '.join(unknown)} (not in front matter sources)",
            path,
        )


# libyaml's safe loader when PyYAML was built with it: ~10× faster on front matter, same rules.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_markdown(data: bytes, path: str) -> Document:
    text = _decode(data, path)
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        raise FrontMatterError(
            "missing YAML front matter (file must start with a '---' block)", path
        )
    try:
        raw = yaml.load(match.group(1), Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(
            f"invalid front matter: YAML error{where}: {problem}", path
        ) from None
    meta = validate_front_matter(raw, path)
    body = text[match.end() :]
    if not body.strip():
        raise CorpusError("empty body (front matter only)", path)
    sources = tuple(
        SourceRef(id=s.id, reference=s.reference, kind=s.kind, section=s.section, url=s.url)
        for s in meta.sources
    )
    _check_citations(body, sources, path)
    return Document(
        doc_id=meta.id,
        title=meta.title,
        body=body,
        path=path,
        drugs=tuple(meta.drugs),
        indications=tuple(meta.indications),
        audience=meta.audience,
        review_status=meta.review_status,
        last_reviewed=meta.last_reviewed.isoformat(),
        sources=sources,
        doc_kind="article",
        brand_names=tuple(meta.brand_names),
    )


# Section names of labels and protocols, which a document may write in ordinary case on a line
# of their own ("Dosage and Administration", "Renal impairment:"), numbered or not.
_NAMED_HEADING_RE = re.compile(
    # (Not "Dose" or "Indication" alone: a PDF table's column headers stand on lines of their own.)
    r"^(?:\d{1,2}(?:\.\d{1,2})*\.?[ \t]+)?(?:dosage and administration|dosing"
    r"|recommended dos(?:e|age|ing)|how supplied|dosage forms and strengths"
    r"|indications and usage|contraindications|warnings(?: and precautions)?|precautions"
    r"|adverse (?:reactions|effects)|(?:drug )?interactions|use in specific populations"
    r"|monitoring|renal impairment|hepatic impairment|overdosage|description"
    r"|clinical pharmacology|dose adjustments?|background|references)"
    r"[ \t]*:?$",
    re.I,
)


def _heading_text(line: str) -> str | None:
    """The heading a plain-text line stands for, or None when it is ordinary text."""
    stripped = line.strip()
    m = _CAPS_HEADING_RE.match(stripped)
    named = _NAMED_HEADING_RE.match(stripped)
    if not named and (not m or not re.search(r"[A-Z]{3}", m.group(1))):
        return None
    return " ".join(stripped.rstrip(":").split())


def _mark_headings(text: str) -> str:
    """Plain text with its headings as ``#`` lines: setext underlines and lines in capitals."""
    text = _SETEXT_RE.sub(
        lambda m: f"{'#' if m.group('bar')[0] == '=' else '##'} {m.group('text').strip()}", text
    )
    out: list[str] = []
    for line in text.split("\n"):
        heading = None if line.lstrip().startswith("#") else _heading_text(line)
        out.append(f"## {heading}" if heading else line)
    return "\n".join(out)


def _first_line_title(body: str) -> str:
    """A text file's title: its first ``#`` heading, else a short first line that is not a
    sentence."""
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            return stripped.lstrip("#").strip()
        if len(stripped) <= 120 and not stripped.endswith((".", ";", ",")):
            return stripped
        return ""
    return ""


def _load_text(data: bytes, path: str) -> Document:
    raw = _decode(data, path)
    _check_citations(raw, (), path)
    stem = Path(path).stem
    body = _mark_headings(raw).lstrip("\n")
    title = _first_line_title(body) or stem
    first, _, rest = body.partition("\n")
    if first.strip().lstrip("#").strip() == title:
        # The title line heads the document: every section below it is the title's.
        body = f"# {title}\n{rest}"
    return Document(doc_id=_slug(stem), title=title, body=body, path=path, doc_kind="text")


def _cell_text(cell: Any) -> str:
    return " ".join(cell.get_text(" ", strip=True).split())


def _span(cell: Any, name: str) -> int:
    try:
        return max(1, min(int(str(cell.get(name, 1)).strip() or 1), 50))
    except ValueError:
        return 1


def _grid(rows: Sequence[Any]) -> list[list[str]]:
    """The table's rows as text cells, a ``colspan`` cell repeated across its columns and a
    ``rowspan`` cell carried down into the rows it spans: a dose table that names its drug or
    indication once for several rows still gives every row its drug or indication."""
    grid: list[list[str]] = []
    carried: dict[int, tuple[str, int]] = {}  # column -> (text, rows still to fill)
    for row in rows:
        out: list[str] = []
        col = 0
        cells = list(row.find_all(["th", "td"], recursive=False)) or list(
            row.find_all(["th", "td"])
        )
        queue = iter(cells)
        pending = next(queue, None)
        while pending is not None or any(c >= col for c in carried):
            if col in carried:
                text, left = carried[col]
                out.append(text)
                if left <= 1:
                    del carried[col]
                else:
                    carried[col] = (text, left - 1)
                col += 1
                continue
            if pending is None:
                break
            text = _cell_text(pending)
            for _ in range(_span(pending, "colspan")):
                out.append(text)
                if _span(pending, "rowspan") > 1:
                    carried[col] = (text, _span(pending, "rowspan") - 1)
                col += 1
            pending = next(queue, None)
        grid.append(out)
    return grid


def _is_header_row(row: Any) -> bool:
    """A header row: in ``thead``, all ``th``, or every cell bold (tables typed in an editor)."""
    if row.find_parent("thead") is not None:
        return True
    cells = row.find_all(["th", "td"])
    if not cells:
        return False
    if all(c.name == "th" for c in cells):
        return True
    return all(
        _cell_text(c)
        and _cell_text(c)
        == " ".join(
            " ".join(b.get_text(" ", strip=True) for b in c.find_all(["b", "strong"])).split()
        )
        for c in cells
    ) and not any(re.search(r"\d", _cell_text(c)) for c in cells)


def _flatten_tables(soup: Any) -> None:
    """Each table row as one line naming its column headers ("Dose: 500 mg; Frequency: twice
    daily"): a figure read apart from its header says nothing about what it is."""
    for table in soup.find_all("table"):
        rows = [r for r in table.find_all("tr") if r.find_parent("table") is table]
        if not rows:
            continue
        header: list[str] = []
        if _is_header_row(rows[0]):
            header = _grid(rows[:1])[0]
            rows = rows[1:]
        lines: list[str] = []
        caption = table.find("caption")
        if caption is not None:
            lines.append(" ".join(caption.get_text(" ", strip=True).split()))
        for cells in _grid(rows):
            if not any(cells):
                continue
            # A cell spread across columns (colspan) is said once, under its first header; a
            # row that is one cell across the table is a note, not a value of any column.
            keep = [i for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
            if header and len(header) == len(cells) and len(keep) > 1:
                parts = [
                    f"{header[i]}: {cells[i]}" if header[i] and header[i] != cells[i] else cells[i]
                    for i in keep
                ]
            else:
                parts = [cells[i] for i in keep]
            lines.append("- " + "; ".join(parts))
        table.replace_with("\n\n" + "\n".join(lines) + "\n\n")


def _load_html(data: bytes, path: str) -> Document:
    from bs4 import BeautifulSoup

    text = _decode(data, path)
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    if soup.head:
        soup.head.decompose()
    _flatten_tables(soup)
    for name, level in _HEADING_TAGS.items():
        for h in soup.find_all(name):
            heading = " ".join(h.get_text(" ", strip=True).split())
            h.replace_with(f"\n\n{'#' * level} {heading}\n\n" if heading else "\n")
    for block in soup.find_all(
        ["p", "div", "li", "tr", "br", "section", "article", "table", "ul", "ol"]
    ):
        block.insert_before("\n")
        block.insert_after("\n")
    lines = [" ".join(line.split()) for line in soup.get_text().split("\n")]
    body = _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip() + "\n"
    if not body.strip():
        raise CorpusError("no text in HTML", path)
    _check_citations(body, (), path)
    if not title:
        first = next((ln for ln in body.splitlines() if ln.startswith("# ")), "")
        title = first[2:].strip() or Path(path).stem
    return Document(
        doc_id=_slug(Path(path).stem), title=title, body=body, path=path, doc_kind="html"
    )


def _load_pdf(path: str) -> Document:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise CorpusError("encrypted PDF", path)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise CorpusError(f"unreadable PDF: {exc}", path) from None
    if not any(pages):
        raise CorpusError("PDF has no extractable text (scanned images?)", path)
    _check_citations("\n".join(pages), (), path)
    title = str(meta_title).strip()
    if not title:
        title = _first_line_title(unwrap_pdf_lines(pages[0])) if pages[0] else ""
        title = title or Path(path).stem
    body = pdf_body(pages, title)
    return Document(
        doc_id=_slug(Path(path).stem), title=title, body=body, path=path, doc_kind="pdf"
    )


def unwrap_pdf_lines(text: str) -> str:
    """Join the lines a PDF wrapped inside a sentence: a number stays with its unit ("500" /
    "mg"), and a line that does not end a sentence continues on the next when that one starts
    in lower case or with a figure. Headings and list items keep their own lines."""
    text = _WRAPPED_UNIT_RE.sub(r"\1 ", text)
    text = _WRAPPED_NUMBER_RE.sub(lambda m: m.group(1).rstrip() + " ", text)
    lines = [ln.rstrip() for ln in text.split("\n")]
    out: list[str] = []
    for line in lines:
        stripped = line.strip()
        if (
            out
            and stripped
            and out[-1].strip()
            and not _SENTENCE_END_RE.search(out[-1])
            and _heading_text(out[-1]) is None
            and _heading_text(stripped) is None
            and not _BULLET_START_RE.match(stripped)
            and (
                stripped[0].islower()
                or stripped[0].isdigit()
                or stripped[0] in "(%/"
                or _continues(out[-1])
            )
        ):
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        else:
            out.append(line)
    return "\n".join(out)


_BULLET_START_RE = re.compile(r"^(?:[-*•◦▪]|\d{1,2}[.)])\s")


def _continues(line: str) -> bool:
    """Does the sentence of this wrapped line go on in the next: a bracket left open, a comma
    or a word that cannot end it at the end?"""
    return (
        line.count("[") > line.count("]")
        or line.count("(") > line.count(")")
        or bool(_OPEN_END_RE.search(line.rstrip()))
    )


def pdf_body(pages: Sequence[str], title: str) -> str:
    """A PDF's pages as one body with ``#`` sections that name their page: its own headings
    ("Dosage and Administration (page 2)"), a page that starts mid-section continuing the
    previous heading on its page, or "Page N" for each page when the PDF has no headings."""
    marked = [_mark_headings(unwrap_pdf_lines(p)) for p in pages]
    has_headings = any(headings_of(p) for p in marked)
    parts = [f"# {title}"]
    current = ""
    for n, page in enumerate(marked, start=1):
        if not page.strip():
            continue
        if not has_headings:
            parts.append(f"## Page {n}\n{page.strip()}")
            continue
        lines = page.strip().split("\n")
        if n == 1 and lines and lines[0].strip().lstrip("#").strip() == title:
            lines = lines[1:]
        if lines and not lines[0].startswith("#"):
            lines.insert(0, f"## {current} (page {n})" if current else f"## Page {n}")
        fixed: list[str] = []
        for line in lines:
            m = re.match(r"^(#{1,6})[ \t]+(.+)$", line)
            if m and not m.group(2).endswith(f"(page {n})"):
                current = m.group(2).strip()
                line = f"{m.group(1)} {current} (page {n})"
            fixed.append(line)
        parts.append("\n".join(fixed))
    return "\n\n".join(parts) + "\n"


def _load_xml(data: bytes, path: str) -> Document:
    if b"\x00" in data[:8192]:
        raise CorpusError("binary file (contains NUL bytes)", path)
    if _HL7_NS not in data[:65536]:
        raise CorpusError(
            "unsupported XML (not an SPL label in the urn:hl7-org:v3 namespace)", path
        )
    try:
        spl = importlib.import_module("ingest.spl")
    except ImportError:
        raise CorpusError("SPL label loader (ingest/spl.py) is not available", path) from None
    try:
        doc: Document = spl.load_label(path)
    except CorpusError:
        raise
    except Exception as exc:  # a third-party label is untrusted input: report, don't crash
        raise CorpusError(f"unreadable SPL label: {type(exc).__name__}: {exc}", path) from None
    return doc


def load_file(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Load one file; raises :class:`CorpusError` (with ``.reason``) when it cannot be used."""
    p = Path(path)
    spath = str(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise CorpusError(f"unsupported file type '{suffix or '(none)'}'", spath)
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise CorpusError(f"cannot read: {exc.strerror or exc}", spath) from None
    if size > max_bytes:
        raise CorpusError(
            f"too large ({size / 1e6:.1f} MB > limit {max_bytes / 1e6:.1f} MB)", spath
        )
    if size == 0:
        raise CorpusError("empty file", spath)
    if suffix == ".pdf":
        doc = _load_pdf(spath)
        data = p.read_bytes()
    else:
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise CorpusError(f"cannot read: {exc.strerror or exc}", spath) from None
        if suffix in (".md", ".markdown"):
            doc = _load_markdown(data, spath)
        elif suffix == ".txt":
            doc = _load_text(data, spath)
        elif suffix == ".xml":
            doc = _load_xml(data, spath)
        else:
            doc = _load_html(data, spath)
    doc = replace(doc, content_hash=hashlib.sha256(data).hexdigest())
    if doc.doc_kind in IMPORTED_KINDS:
        doc = with_detected_topics(doc)
    return doc


def with_detected_topics(doc: Document, lexicon: Any = None) -> Document:
    """An imported document with its drugs, indications and brand names read from its content
    (``ingest.detect``) and itself as its one source (kind "local document"), so its sentences
    are cited as "Title — Section" like a label's. Front matter, when a format has it, wins."""
    if lexicon is None:
        from ingest.lexicon import default_lexicon

        lexicon = default_lexicon()
    topics = detect_topics(doc.title, doc.body, lexicon)
    source = SourceRef(
        id=doc.doc_id,
        # The answer cites "Title — Section (page N) — reference": the title is said once, the
        # reference names the file the clinician can open and the kind of evidence.
        reference=f"{Path(doc.path).name}, {LOCAL_EVIDENCE}",
        kind=LOCAL_EVIDENCE,
    )
    return replace(
        doc,
        drugs=doc.drugs or topics.drugs,
        indications=doc.indications or topics.indications,
        brand_names=doc.brand_names or topics.brand_names,
        sources=doc.sources or (source,),
    )


def _ignored(name: str) -> bool:
    return name.startswith((".", "_")) or name.upper().startswith("README")


def _walk(root: Path, skipped: list[SkippedFile]) -> list[Path]:
    """Files under ``root`` (sorted), following symlinks only while they stay inside ``root``."""
    real_root = root.resolve()
    found: list[Path] = []
    visited: set[Path] = set()

    def visit(directory: Path) -> None:
        try:
            real = directory.resolve(strict=True)
        except (OSError, RuntimeError):
            skipped.append(SkippedFile(str(directory), "symlink loop or dangling link"))
            return
        if real in visited:
            skipped.append(SkippedFile(str(directory), "symlink loop (directory already visited)"))
            return
        visited.add(real)
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(SkippedFile(str(directory), f"cannot list directory: {exc.strerror}"))
            return
        for entry in entries:
            if _ignored(entry.name):
                continue
            child = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = child.resolve(strict=True)
                except (OSError, RuntimeError):
                    skipped.append(SkippedFile(str(child), "symlink loop or dangling link"))
                    continue
                if not target.is_relative_to(real_root):
                    skipped.append(
                        SkippedFile(str(child), "symlink points outside the corpus root")
                    )
                    continue
            if child.is_dir():
                visit(child)
            elif child.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(child)

    visit(root)
    return found


def _expand(paths: Iterable[str | Path], skipped: list[SkippedFile]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(_walk(p, skipped))
        elif p.exists():
            files.append(p)
        elif p.is_symlink():
            skipped.append(SkippedFile(str(p), "symlink loop or dangling link"))
        else:
            skipped.append(SkippedFile(str(p), "no such file or directory"))
    unique: dict[Path, Path] = {}
    for f in files:
        try:
            unique.setdefault(f.resolve(), f)
        except (OSError, RuntimeError):
            skipped.append(SkippedFile(str(f), "symlink loop or dangling link"))
    return list(unique.values())


def _label_documents(roots: Sequence[str | Path], skipped: list[SkippedFile]) -> list[Document]:
    if not roots:
        return []
    try:
        spl = importlib.import_module("ingest.spl")
    except ImportError:
        skipped.extend(SkippedFile(str(r), "SPL label loader is not available") for r in roots)
        return []
    docs: list[Document] = []
    for root in roots:
        got, bad = spl.load_labels(root)
        docs.extend(got)
        skipped.extend(bad)
    return docs


def load_corpus(
    paths: Iterable[str | Path],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    labels: Iterable[str | Path] = (),
) -> tuple[list[Document], list[SkippedFile]]:
    """Load every supported file under ``paths``; bad files come back as :class:`SkippedFile`.

    ``labels`` are FDA SPL label files, folders or zips (read by ``ingest.spl.load_labels``); a
    ``.zip`` named in ``paths`` is read the same way. Walked folders never open zips."""
    skipped: list[SkippedFile] = []
    loaded: list[tuple[Document, str]] = []
    plain: list[str | Path] = []
    label_roots: list[str | Path] = []
    for raw in paths:
        is_zip = Path(raw).suffix.lower() == ".zip" and Path(raw).is_file()
        (label_roots if is_zip else plain).append(raw)
    label_roots.extend(labels)

    for f in _expand(plain, skipped):
        try:
            loaded.append((load_file(f, max_bytes=max_bytes), str(f)))
        except CorpusError as exc:
            skipped.append(SkippedFile(str(f), exc.reason))
    loaded.extend((doc, doc.path) for doc in _label_documents(label_roots, skipped))
    # One label named twice (in a corpus folder and by --labels) is indexed once: same id and
    # same content is the same document, not a clash.
    seen_labels: set[tuple[str, str]] = set()
    unique: list[tuple[Document, str]] = []
    for doc, where in loaded:
        key = (doc.doc_id, doc.content_hash)
        if doc.doc_kind == "label" and doc.content_hash:
            if key in seen_labels:
                continue
            seen_labels.add(key)
        unique.append((doc, where))
    loaded = unique

    # Every file claiming a shared id is refused, not just the later one: keeping the first by
    # name would let a new file that sorts earlier replace an already indexed document.
    places: dict[str, list[str]] = {}
    for doc, where in loaded:
        places.setdefault(doc.doc_id, []).append(where)
    docs: list[Document] = []
    for doc, where in loaded:
        if len(places[doc.doc_id]) == 1:
            docs.append(doc)
            continue
        others = ", ".join(p for p in places[doc.doc_id] if p != where)
        skipped.append(
            SkippedFile(where, f"duplicate document id '{doc.doc_id}' (also used by {others})")
        )
    return docs, skipped
