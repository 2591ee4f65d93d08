"""FDA Structured Product Labeling (SPL) XML drug labels → :class:`~ingest.model.Document`.

Handles the HL7 v3 SPL schema as DailyMed and openFDA distribute it, in both the PLR layout
(numbered sections, ``42229-5`` unclassified subsections, highlights) and the older non-PLR
layout (fewer coded sections; ``DOSAGE AND ADMINISTRATION`` etc. recognised by title when the
code is missing or unclassified). Each top-level section becomes a ``#`` heading named after
its LOINC code, nested subsections ``##``/``###``; tables become ``cell | cell`` rows and lists
``- item`` lines. Every paragraph, item or row carrying a number ends with ``[@label]`` so the
dose guard can tie each number to the label source.

Not handled (reported or skipped, never guessed): PDF-only labels (``nonXMLBody``), images,
highlights excerpts (their content repeats the full prescribing information), row/column spans.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path, PurePosixPath

from lxml import etree

from ingest.errors import LabelError, LabelFetchError
from ingest.model import Document, SkippedFile, SourceRef

__all__ = [
    "DAILYMED_SPL_URL",
    "SECTION_NAMES",
    "LabelError",
    "LabelFetchError",
    "fetch_label",
    "is_spl",
    "load_label",
    "load_labels",
    "parse_label",
]

NS = "urn:hl7-org:v3"
_NSMAP = {"v": NS}
SOURCE_ID = "label"
DAILYMED_SPL_URL = "https://dailymed.nlm.nih.gov/dailymed/services/v2/spls/{setid}.xml"
DAILYMED_LOOKUP_URL = "https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid={setid}"
MAX_LABEL_BYTES = 50 * 1024 * 1024

UNCLASSIFIED = "42229-5"
# Structured product data, not prose: read for drug names, never rendered as text.
_DATA_SECTIONS = frozenset({"48780-1", "48779-3"})

# LOINC section codes → readable names (the names answers cite).
SECTION_NAMES: dict[str, str] = {
    "34066-1": "Boxed Warning",
    "43683-2": "Recent Major Changes",
    "34067-9": "Indications and Usage",
    "34068-7": "Dosage and Administration",
    "43678-2": "Dosage Forms and Strengths",
    "34070-3": "Contraindications",
    "43685-7": "Warnings and Precautions",
    "34071-1": "Warnings",
    "42232-9": "Precautions",
    "34072-9": "General Precautions",
    "34076-0": "Information for Patients",
    "34075-2": "Laboratory Tests",
    "34074-5": "Drug and Laboratory Test Interactions",
    "34083-6": "Carcinogenesis, Mutagenesis, Impairment of Fertility",
    "34084-4": "Adverse Reactions",
    "34073-7": "Drug Interactions",
    "43684-0": "Use in Specific Populations",
    "42228-7": "Pregnancy",
    "34077-8": "Teratogenic Effects",
    "34078-6": "Nonteratogenic Effects",
    "34079-4": "Labor and Delivery",
    "34080-2": "Nursing Mothers",
    "77290-5": "Lactation",
    "77291-3": "Females and Males of Reproductive Potential",
    "34081-0": "Pediatric Use",
    "34082-8": "Geriatric Use",
    "42227-9": "Drug Abuse and Dependence",
    "34085-1": "Controlled Substance",
    "34086-9": "Abuse",
    "34087-7": "Dependence",
    "34088-5": "Overdosage",
    "34089-3": "Description",
    "34090-1": "Clinical Pharmacology",
    "43679-0": "Mechanism of Action",
    "43681-6": "Pharmacodynamics",
    "43682-4": "Pharmacokinetics",
    "66106-6": "Pharmacogenomics",
    "49489-8": "Microbiology",
    "43680-8": "Nonclinical Toxicology",
    "34091-9": "Animal Pharmacology and Toxicology",
    "34092-7": "Clinical Studies",
    "34093-5": "References",
    "34069-5": "How Supplied",
    "44425-7": "Storage and Handling",
    "42230-3": "Patient Package Insert",
    "42231-1": "Medication Guide",
    "68498-5": "Patient Medication Information",
    "59845-8": "Instructions for Use",
    "51945-4": "Package Label",
    # OTC "Drug Facts" sections
    "55106-9": "Active Ingredient",
    "55105-1": "Purpose",
    "50570-1": "Do Not Use",
    "50569-3": "Ask a Doctor",
    "50568-5": "Ask a Doctor or Pharmacist",
    "50567-7": "When Using",
    "50566-9": "Stop Use",
    "50565-1": "Keep Out of Reach of Children",
    "53414-9": "Pregnancy or Breast Feeding",
    "51727-6": "Inactive Ingredients",
    "60561-8": "Other Safety Information",
    "53413-1": "Questions",
}

# Older labels put main sections under 42229-5 (or no code): recognise them by title.
_TITLE_CODES: dict[str, str] = {
    "BOXED WARNING": "34066-1",
    "INDICATIONS AND USAGE": "34067-9",
    "INDICATIONS AND USE": "34067-9",
    "INDICATIONS": "34067-9",
    "DOSAGE AND ADMINISTRATION": "34068-7",
    "DOSAGE AND ADMINISTRATIONS": "34068-7",
    "DOSAGE": "34068-7",
    "DIRECTIONS": "34068-7",
    "DOSAGE FORMS AND STRENGTHS": "43678-2",
    "CONTRAINDICATIONS": "34070-3",
    "CONTRAINDICATION": "34070-3",
    "WARNINGS AND PRECAUTIONS": "43685-7",
    "WARNINGS": "34071-1",
    "WARNING": "34071-1",
    "PRECAUTIONS": "42232-9",
    "ADVERSE REACTIONS": "34084-4",
    "DRUG INTERACTIONS": "34073-7",
    "USE IN SPECIFIC POPULATIONS": "43684-0",
    "PREGNANCY": "42228-7",
    "NURSING MOTHERS": "34080-2",
    "LACTATION": "77290-5",
    "PEDIATRIC USE": "34081-0",
    "GERIATRIC USE": "34082-8",
    "OVERDOSAGE": "34088-5",
    "DESCRIPTION": "34089-3",
    "CLINICAL PHARMACOLOGY": "34090-1",
    "CLINICAL STUDIES": "34092-7",
    "HOW SUPPLIED": "34069-5",
    "STORAGE AND HANDLING": "44425-7",
}

# Titles that name the document type rather than the product.
_GENERIC_TITLES = frozenset(
    {"", "DRUG FACTS", "PRESCRIBING INFORMATION", "FULL PRESCRIBING INFORMATION", "PACKAGE INSERT"}
)

_BR = "\u2028"  # stands for <br/> until whitespace is normalised
_WS_RE = re.compile(r"[\s\u00a0\u200b\ufeff]+")
_DIGIT_RE = re.compile(r"\d")
_HEADING_LIKE_RE = re.compile(r"^(#+)(?=[ \t])")
_NUMBERING_RE = re.compile(r"^\s*\d+(?:\.\d+)*\.?\s*")
_NON_ALNUM_RE = re.compile(r"[^A-Z0-9]+")
_UNIT_BEFORE_RE = re.compile(r"(?:^|[\s/(\d])(?:m|cm|mm|dm|km|ft|in)$")
_HIGHLIGHTS_RE = re.compile(
    r"These\s+highlights\s+do\s+not\s+include\s+all\s+the\s+information\s+needed\s+to\s+use\s+"
    r".*?\s+safely\s+and\s+effectively\.?(?:\s*See\s+full\s+prescribing\s+information\s+for\s+"
    r"[^\n.]*\.?)?",
    re.I | re.S,
)
_APPROVAL_RE = re.compile(r"Initial\s+U\.?\s*S\.?\s+Approval:?\s*\d{4}\.?", re.I)
_SETID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_SAFE_ID_RE = re.compile(r"[^a-z0-9-]+")
_TRADEMARK_RE = re.compile(r"[®™©]")


def _parser() -> etree.XMLParser:
    # Untrusted input: no entity expansion, no DTD or network access (XXE, billion laughs).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
    )


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _norm(text: str) -> str:
    return _WS_RE.sub(" ", text).strip()


def _lines(text: str) -> list[str]:
    """Split on <br/> marks and normalise whitespace in each line; drop empty lines."""
    return [line for line in (_norm(part) for part in text.split(_BR)) if line]


def _cite(line: str) -> str:
    if _HEADING_LIKE_RE.match(line):
        line = "\\" + line  # a label line must never be read as a heading
    return f"{line} [@{SOURCE_ID}]" if _DIGIT_RE.search(line) else line


def _sup(before: str, sup: str) -> str:
    s = _norm(sup)
    if not s:
        return ""
    last = before.rstrip()[-1:]
    if s.lstrip("+-−").isdigit():
        # m<sup>2</sup> is a unit power ("mg/m2"); 10<sup>9</sup> an exponent, which must not
        # fuse into "109"; anything else is a footnote mark.
        if _UNIT_BEFORE_RE.search(before):
            return s
        return "^" + s if last else s
    if all(c in "®™©*†‡§" for c in s):
        return s
    return "^" + s if last else s


_BLOCK_TAGS = frozenset(
    {"paragraph", "list", "table", "item", "tr", "caption", "thead", "tbody", "tfoot"}
)
_SKIP_TAGS = frozenset({"renderMultiMedia", "observationMedia", "footnoteRef", "col", "colgroup"})


def _child_text(child: etree._Element, before: str, sep: str) -> str:
    """Text of one child element (without its tail); ``before`` is the text rendered so far."""
    tag = _local(child)
    if not tag or tag in _SKIP_TAGS:
        return ""
    if tag == "br":
        return _BR if sep == _BR else " "
    if tag == "sup":
        return _sup(before, _inline(child, " "))
    if tag == "footnote":
        note = _norm(_inline(child, " "))
        return f" (Note: {note})" if note else ""
    if tag in _BLOCK_TAGS:
        return sep + _inline(child, sep) + sep
    if tag in ("td", "th"):
        return " | " + _inline(child, " ")
    return _inline(child, sep)


def _inline(el: etree._Element, sep: str) -> str:
    """Text of ``el`` and its descendants; ``sep`` separates nested blocks (a cell keeps one line)."""
    parts: list[str] = [el.text or ""]
    for child in el:
        parts.append(_child_text(child, "".join(parts), sep))
        parts.append(child.tail or "")
    return "".join(parts)


def _list_lines(lst: etree._Element, depth: int) -> list[str]:
    lines: list[str] = []
    caption = lst.find(_q("caption"))
    if caption is not None and _norm(_inline(caption, " ")):
        lines.append(_cite("  " * depth + _norm(_inline(caption, " "))))
    for item in lst.iterfind(_q("item")):
        nested = [c for c in item if _local(c) == "list"]
        parts: list[str] = [item.text or ""]
        for child in item:
            if _local(child) == "caption":
                parts.append(_inline(child, " ") + ": ")
            elif _local(child) != "list":
                parts.append(_child_text(child, "".join(parts), " "))
            parts.append(child.tail or "")
        text = _norm("".join(parts).replace(_BR, " "))
        if text:
            lines.append("  " * depth + "- " + _cite(text))
        for sub in nested:
            lines.extend(_list_lines(sub, depth + 1))
    return lines


def _table_lines(table: etree._Element) -> list[str]:
    lines: list[str] = []
    caption = table.find(_q("caption"))
    if caption is not None:
        text = _norm(_inline(caption, " "))
        if text:
            lines.append(_cite(text))
    rows = table.xpath("v:thead/v:tr | v:tbody/v:tr | v:tfoot/v:tr | v:tr", namespaces=_NSMAP)
    for tr in rows:
        cells = [
            _norm(_inline(cell, " ").replace(_BR, " "))
            for cell in tr
            if _local(cell) in ("td", "th")
        ]
        while cells and not cells[-1]:
            cells.pop()
        if any(cells):
            lines.append(_cite(" | ".join(cells)))
    return lines


def _text_blocks(text_el: etree._Element | None) -> list[str]:
    """Render a section's ``<text>`` as blocks separated by blank lines."""
    if text_el is None:
        return []
    blocks: list[str] = []
    pending: list[str] = [text_el.text or ""]

    def flush() -> None:
        lines = _lines("".join(pending))
        if lines:
            blocks.append("\n".join(_cite(line) for line in lines))
        pending.clear()

    for child in text_el:
        tag = _local(child)
        if not tag or tag in _SKIP_TAGS:
            pass
        elif tag == "paragraph":
            flush()
            lines = _lines(_inline(child, _BR))
            if lines:
                blocks.append("\n".join(_cite(line) for line in lines))
        elif tag == "list":
            flush()
            lines = _list_lines(child, 0)
            if lines:
                blocks.append("\n".join(lines))
        elif tag == "table":
            flush()
            lines = _table_lines(child)
            if lines:
                blocks.append("\n".join(lines))
        else:
            pending.append(_child_text(child, "".join(pending), _BR))
        pending.append(child.tail or "")
    flush()
    return blocks


def _title_key(title: str) -> str:
    key = _NUMBERING_RE.sub("", title.upper().replace("&", " AND "))
    return _NON_ALNUM_RE.sub(" ", key).strip()


def _section_name(code: str, title: str, display: str) -> str:
    """Readable section name; "" for an untitled unclassified section (continues its parent)."""
    if code in SECTION_NAMES:
        return SECTION_NAMES[code]
    by_title = _TITLE_CODES.get(_title_key(title))
    if by_title:
        return SECTION_NAMES[by_title]
    if title:
        return title
    if code and code != UNCLASSIFIED and display:
        return _norm(re.sub(r"\s+SECTION\s*$", "", display, flags=re.I)).title()
    return ""


def _render_section(section: etree._Element, depth: int, parent: str) -> tuple[str, list[str]]:
    """(heading line or "" when untitled, body lines incl. nested subsections)."""
    code_el = section.find(_q("code"))
    code = (code_el.get("code") or "").strip() if code_el is not None else ""
    if code in _DATA_SECTIONS:
        return "", []
    display = (code_el.get("displayName") or "") if code_el is not None else ""
    title_el = section.find(_q("title"))
    title = _norm(_inline(title_el, " ").replace(_BR, " ")) if title_el is not None else ""
    name = _section_name(code, title, display)
    if name == parent and title and title != name:
        name = title  # a subsection reusing its parent's code keeps its own title
    if depth > 0 and not title:
        # Untitled nested sections are layout boxes (old labels even code dosing tables as
        # "Boxed Warning"): their text belongs to the enclosing section.
        name = ""
    elif not name:
        name = "Other Information"
    lines = _text_blocks(section.find(_q("text")))
    if depth >= 3 and name:
        # Headings stop at ###; a 4th level becomes a lead-in line so its text stays filed
        # under its real parent instead of a sibling.
        lines.insert(0, _cite(name))
        name = ""
    heading = "#" * (depth + 1) + " " + name if name else ""
    after_heading = False  # has a titled subsection opened a heading since our own?
    for sub in section.iterfind(f"{_q('component')}/{_q('section')}"):
        sub_heading, sub_lines = _render_section(sub, depth + 1, name or parent)
        if not sub_lines:
            continue
        if sub_heading:
            lines.append(sub_heading)
            after_heading = True
        elif after_heading and heading:
            # Untitled paragraphs group after a titled sibling: reopen our own heading so the
            # text is not filed under that sibling.
            lines.append(heading)
            after_heading = False
        lines.extend(sub_lines)
    if not lines:
        return "", []
    return heading, lines


def _clean_name(name: str | None) -> str:
    return _norm(_TRADEMARK_RE.sub("", name or ""))


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _split_generic(name: str) -> list[str]:
    # Combination products name all components in one string: "X HCl, Y HCl" / "X and Y".
    return [part.strip() for part in re.split(r",|\band\b|/", name) if part.strip()]


def _product_names(root: etree._Element) -> tuple[list[str], list[str], list[str]]:
    """(product names as written, generic names, active moiety names) from the product data.

    Only each product's own generic name and active ingredients count: a kit's accessory parts
    (e.g. an alcohol swab) are not the drug the label is about.
    """
    names: list[str] = []
    generics: list[str] = []
    moieties: list[str] = []
    products = root.xpath(
        "v:component/v:structuredBody//v:subject/v:manufacturedProduct/v:manufacturedProduct"
        " | v:component/v:structuredBody//v:subject/v:manufacturedProduct/v:manufacturedMedicine",
        namespaces=_NSMAP,
    )
    for med in products:
        names.append(_clean_name(med.findtext(_q("name"))))
        for g in med.iterfind(f"{_q('asEntityWithGeneric')}/{_q('genericMedicine')}/{_q('name')}"):
            generics.append(_clean_name(g.text))
        # "activeIngredient" is the pre-2009 schema's element; it carries no classCode.
        for ing in med.findall(_q("ingredient")) + med.findall(_q("activeIngredient")):
            cls = ing.get("classCode") or "ACTIM"
            if not cls.startswith("ACT"):
                continue
            for m in ing.iterfind(f".//{_q('activeMoiety')}/{_q('activeMoiety')}/{_q('name')}"):
                moieties.append(_clean_name(m.text))
    return names, generics, moieties


def _product_title(root: etree._Element, names: list[str], generics: list[str]) -> str:
    title_el = root.find(_q("title"))
    raw = _inline(title_el, _BR) if title_el is not None else ""
    text = _APPROVAL_RE.sub(" ", _HIGHLIGHTS_RE.sub(" ", raw.replace(_BR, "\n")))
    title = _norm(text)
    if title.upper().rstrip(".") not in _GENERIC_TITLES:
        return title
    name = next((n for n in names if n), "")
    generic = next((g for g in generics if g), "")
    if name and generic and name.lower() != generic.lower():
        return f"{name} ({generic})"
    return name or generic


def _date(value: str) -> str:
    digits = value.strip()[:8]
    if len(digits) == 8 and digits.isdigit():
        return f"{digits[:4]}-{digits[4:6]}-{digits[6:]}"
    return ""


def is_spl(data: bytes) -> bool:
    """Cheap sniff: does this look like an SPL document (HL7 v3 ``<document>``)?"""
    head = data[:65536]
    return b"urn:hl7-org:v3" in head and b"<document" in head


def parse_label(data: bytes, path: str) -> Document:
    """Parse SPL XML bytes; ``path`` is only used in messages and ``Document.path``."""
    stripped = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped:
        raise LabelError("empty file, not an SPL label", path)
    if not stripped.startswith(b"<"):
        raise LabelError("not XML (does not start with '<'), not an SPL label", path)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise LabelError(f"malformed XML: {exc}", path) from None
    if root is None or not isinstance(root.tag, str):
        raise LabelError("malformed XML: no root element", path)
    if root.tag != _q("document"):
        qname = etree.QName(root)
        where = f" in namespace '{qname.namespace}'" if qname.namespace else " without a namespace"
        raise LabelError(
            f"not an SPL label: root element is <{qname.localname}>{where}, "
            f"expected <document> in '{NS}'",
            path,
        )
    if root.find(f"{_q('component')}/{_q('nonXMLBody')}") is not None:
        raise LabelError(
            "SPL label has no structured body (nonXMLBody, e.g. a PDF-only label); "
            "only structured SPL is supported",
            path,
        )
    body_el = root.find(f"{_q('component')}/{_q('structuredBody')}")
    if body_el is None:
        raise LabelError("not an SPL label: no <structuredBody>", path)

    setid_el = root.find(_q("setId"))
    setid = (setid_el.get("root") or "").strip().lower() if setid_el is not None else ""
    if not setid:
        raise LabelError("SPL label has no set id (<setId root=...>)", path)
    version_el = root.find(_q("versionNumber"))
    version = (version_el.get("value") or "").strip() if version_el is not None else ""
    time_el = root.find(_q("effectiveTime"))
    effective = _date(time_el.get("value") or "") if time_el is not None else ""

    out: list[str] = []
    for section in body_el.iterfind(f"{_q('component')}/{_q('section')}"):
        heading, lines = _render_section(section, 0, "")
        if lines:
            out.append(heading)
            out.extend(lines)
    if not out:
        raise LabelError("SPL label has no sections with text", path)

    names, generics, moieties = _product_names(root)
    title = _product_title(root, names, generics) or f"SPL {setid}"
    split = [part for g in generics for part in _split_generic(g)]
    drugs = _unique([g.lower() for g in split + moieties])
    brands = _unique([n.lower() for n in names if n.lower() not in drugs])

    doc_id = (
        "label-"
        + _SAFE_ID_RE.sub("-", setid)
        + (f"-v{_SAFE_ID_RE.sub('-', version)}" if version else "")
    )
    ref = f"FDA label: {title}. Set ID {setid}"
    ref += f", version {version}" if version else ""
    ref += f", effective {effective}." if effective else "."
    source = SourceRef(
        id=SOURCE_ID,
        kind="label",
        reference=ref,
        url=DAILYMED_LOOKUP_URL.format(setid=urllib.parse.quote(setid)),
    )
    return Document(
        doc_id=doc_id,
        title=f"Label: {title}",
        body="\n\n".join(out) + "\n",
        path=path,
        drugs=drugs,
        review_status="official label",
        last_reviewed=effective,
        sources=(source,),
        doc_kind="label",
        brand_names=brands,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def load_label(path: str | Path) -> Document:
    """Load one SPL XML file; raises :class:`LabelError` naming the path and the reason."""
    spath = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_LABEL_BYTES:
            raise LabelError(f"too large for a label ({size / 1e6:.1f} MB)", spath)
        data = Path(path).read_bytes()
    except OSError as exc:
        raise LabelError(f"cannot read: {exc.strerror or exc}", spath) from None
    return parse_label(data, spath)


def _unsafe_member(name: str) -> bool:
    posix = PurePosixPath(name.replace("\\", "/"))
    return posix.is_absolute() or ".." in posix.parts or re.match(r"^[A-Za-z]:", name) is not None


def _zip_members(
    data: bytes | Path, label: str, depth: int, skipped: list[SkippedFile]
) -> Iterator[tuple[str, bytes]]:
    """XML members of a zip (and of zips inside it, one level), read in memory."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except (zipfile.BadZipFile, OSError) as exc:
        skipped.append(SkippedFile(label, f"not a readable zip archive: {exc}"))
        return
    with zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            where = f"{label}!{info.filename}"
            if _unsafe_member(info.filename):
                skipped.append(
                    SkippedFile(where, "unsafe path in zip (absolute or '..'), not read")
                )
                continue
            suffix = PurePosixPath(info.filename).suffix.lower()
            if suffix not in (".xml", ".zip"):
                skipped.append(SkippedFile(where, f"not an XML label ({suffix or 'no extension'})"))
                continue
            if suffix == ".zip" and depth >= 1:
                skipped.append(SkippedFile(where, "zip nested more than one level deep, not read"))
                continue
            if info.file_size > MAX_LABEL_BYTES:
                skipped.append(SkippedFile(where, f"too large ({info.file_size / 1e6:.1f} MB)"))
                continue
            try:
                with zf.open(info) as fh:
                    content = fh.read(MAX_LABEL_BYTES + 1)
            except (zipfile.BadZipFile, RuntimeError, OSError, EOFError) as exc:
                skipped.append(SkippedFile(where, f"cannot read zip member: {exc}"))
                continue
            if len(content) > MAX_LABEL_BYTES:
                skipped.append(SkippedFile(where, "too large when decompressed"))
                continue
            if suffix == ".zip":
                yield from _zip_members(content, where, depth + 1, skipped)
            else:
                yield where, content


def _label_sources(root: Path, skipped: list[SkippedFile]) -> Iterator[tuple[str, bytes | Path]]:
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif root.exists():
        files = [root]
    else:
        skipped.append(SkippedFile(str(root), "no such file or directory"))
        return
    for f in files:
        suffix = f.suffix.lower()
        if suffix == ".zip":
            yield from _zip_members(f, str(f), 0, skipped)
        elif suffix == ".xml":
            yield str(f), f
        else:
            skipped.append(
                SkippedFile(str(f), f"not an SPL label file ({suffix or 'no extension'})")
            )


def load_labels(path: str | Path) -> tuple[list[Document], list[SkippedFile]]:
    """Labels from an XML file, a folder (recursive) or a zip; bad ones come back as skipped."""
    skipped: list[SkippedFile] = []
    docs: list[Document] = []
    seen: dict[str, str] = {}
    for where, content in _label_sources(Path(path), skipped):
        try:
            doc = load_label(content) if isinstance(content, Path) else parse_label(content, where)
        except LabelError as exc:
            skipped.append(SkippedFile(where, exc.reason))
            continue
        if doc.doc_id in seen:
            skipped.append(
                SkippedFile(
                    where, f"duplicate label '{doc.doc_id}' (already in {seen[doc.doc_id]})"
                )
            )
            continue
        seen[doc.doc_id] = where
        docs.append(doc)
    return docs, skipped


def _resolve(host: str, port: int, timeout_s: float) -> None:
    # getaddrinfo ignores socket timeouts; offline DNS can hang far longer than timeout_s.
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        pool.submit(socket.getaddrinfo, host, port).result(timeout=timeout_s)
    except FutureTimeout:
        raise LabelFetchError(f"cannot resolve {host} within {timeout_s:g} s (offline?)") from None
    except OSError as exc:
        raise LabelFetchError(f"cannot resolve {host}: {exc} (offline?)") from None
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def fetch_label(
    setid: str,
    dest_dir: str | Path,
    timeout_s: float = 5.0,
    *,
    url_template: str = DAILYMED_SPL_URL,
) -> Path:
    """Download one label's SPL XML from DailyMed into ``dest_dir/<setid>.xml``.

    Fails fast with :class:`LabelFetchError` when offline or on any HTTP or content problem;
    the file is only written (atomically) once it parses as an SPL label with that set id.
    """
    setid = setid.strip().lower()
    if not _SETID_RE.match(setid):
        raise LabelFetchError(f"not a DailyMed set id (expected a UUID): {setid!r}")
    url = url_template.format(setid=setid)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LabelFetchError(f"refusing to fetch from {url!r}: only http(s) URLs are allowed")
    hint = "no network? Download the SPL XML elsewhere and import it with 'dosewise ingest --labels PATH'"
    _resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), timeout_s)
    request = urllib.request.Request(
        url, headers={"User-Agent": "dosewise-label-fetch/0.1", "Accept": "application/xml"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            data = resp.read(MAX_LABEL_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise LabelFetchError(
            f"DailyMed answered HTTP {exc.code} for set id {setid} ({url})"
        ) from None
    except urllib.error.URLError as exc:
        raise LabelFetchError(f"cannot reach {url}: {exc.reason} ({hint})") from None
    except (TimeoutError, OSError) as exc:
        raise LabelFetchError(f"cannot reach {url}: {exc} ({hint})") from None
    if len(data) > MAX_LABEL_BYTES:
        raise LabelFetchError(f"label from {url} is larger than {MAX_LABEL_BYTES // 2**20} MB")
    try:
        doc = parse_label(data, url)
    except LabelError as exc:
        raise LabelFetchError(f"download from {url} is not a usable label: {exc.reason}") from None
    got = doc.doc_id.removeprefix("label-").split("-v")[0]
    if got != setid:
        raise LabelFetchError(f"asked DailyMed for set id {setid} but received {got}")
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{setid}.xml"
    fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{setid}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
