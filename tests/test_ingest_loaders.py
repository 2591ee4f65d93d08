from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.errors import CorpusError
from ingest.loaders import load_corpus, load_file
from ingest.model import Document

GOOD_FRONT = """---
id: {id}
title: A test document
drugs: [azathioprine]
last_reviewed: 2026-01-01
sources:
  - id: src-a
    reference: "Author A. A primary reference. J Test. 2020;1:1-2."
---
"""


def _md(doc_id: str, body: str = "# T\n\n## Dosing\n\n2 mg/kg/day [@src-a].\n") -> str:
    return GOOD_FRONT.format(id=doc_id) + body


def _pdf_bytes(lines: list[str]) -> bytes:
    """A minimal one-page PDF with Helvetica text, correct xref offsets."""
    text_ops = " ".join(f"({ln}) Tj T*" for ln in lines)
    stream = f"BT /F1 12 Tf 14 TL 72 720 Td {text_ops} ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return bytes(out)


def test_markdown_front_matter_becomes_document_fields(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text(_md("doc-a"), encoding="utf-8")
    doc = load_file(f)
    assert doc.doc_id == "doc-a"
    assert doc.drugs == ("azathioprine",)
    assert doc.last_reviewed == "2026-01-01"
    assert doc.sources[0].id == "src-a"
    assert doc.body.startswith("# T")
    assert len(doc.content_hash) == 64


def test_html_headings_become_markdown_headings_and_scripts_are_dropped(tmp_path: Path) -> None:
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Label page</title><style>p{color:red}</style></head><body>"
        "<h1>Imuran</h1><script>alert('x')</script><h2>Dosage</h2><p>Start 1 mg/kg/day.</p>"
        "<ul><li>Step one</li><li>Step two</li></ul></body></html>",
        encoding="utf-8",
    )
    doc = load_file(f)
    assert doc.title == "Label page"
    assert doc.doc_kind == "html"
    lines = doc.body.splitlines()
    assert "# Imuran" in lines and "## Dosage" in lines
    assert "Start 1 mg/kg/day." in lines and "Step two" in lines
    assert "alert" not in doc.body and "color" not in doc.body


def test_plain_text_and_pdf_are_loaded(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Plain notes about dosing.\n", encoding="utf-8")
    (tmp_path / "leaflet.pdf").write_bytes(
        _pdf_bytes(["Azathioprine leaflet", "Take 50 mg daily."])
    )
    txt = load_file(tmp_path / "notes.txt")
    pdf = load_file(tmp_path / "leaflet.pdf")
    assert (txt.doc_id, txt.doc_kind) == ("notes", "text")
    assert pdf.doc_kind == "pdf" and "Take 50 mg daily." in pdf.body


def test_spl_xml_is_delegated_to_the_label_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.spl

    f = tmp_path / "label.xml"
    f.write_text(
        '<?xml version="1.0"?><document xmlns="urn:hl7-org:v3"><title>x</title></document>'
    )
    seen: list[str] = []

    def fake_load_label(path: str | Path) -> Document:
        seen.append(str(path))
        return Document(
            doc_id="imuran-label",
            title="Imuran",
            body="# Imuran\n\ntext\n",
            path=str(path),
            doc_kind="label",
        )

    monkeypatch.setattr(ingest.spl, "load_label", fake_load_label)
    doc = load_file(f)
    assert seen == [str(f)]
    assert doc.doc_id == "imuran-label" and doc.content_hash


def test_xml_that_is_not_spl_is_reported(tmp_path: Path) -> None:
    f = tmp_path / "other.xml"
    f.write_text("<root><a>1</a></root>", encoding="utf-8")
    with pytest.raises(CorpusError, match="not an SPL label"):
        load_file(f)


def test_each_bad_file_is_reported_by_path_and_reason_and_the_rest_loads(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "good.md").write_text(_md("good"), encoding="utf-8")
    (root / "also-good.txt").write_text("Some text.\n", encoding="utf-8")
    bad = {
        "yaml.md": ("---\nid: [unclosed\n---\n# T\n", "YAML error"),
        "schema.md": (
            _md("schema").replace("drugs: [azathioprine]", "drugs: [Azathioprine]"),
            "lower-case",
        ),
        "nofront.md": ("# Just a heading\n\ntext\n", "missing YAML front matter"),
        "latin1.md": (_md("latin").encode("utf-8") + "caf\xe9".encode("latin-1"), "not UTF-8"),
        "binary.txt": (b"abc\x00\x01\x02", "binary"),
        "empty.md": ("", "empty"),
        "blank.txt": ("  \n\n", "empty"),
        "frontonly.md": (GOOD_FRONT.format(id="front-only"), "empty body"),
        "cite.md": (
            _md("cite", "# T\n\n2 mg [@src-a; @nope].\n"),
            "unknown citation source id(s): nope",
        ),
        "zz-dupe.md": (_md("good"), "duplicate document id 'good'"),
        "huge.txt": ("x" * 5000, "too large"),
    }
    for name, (content, _) in bad.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (root / name).write_bytes(data)
    docs, skipped = load_corpus([root], max_bytes=4096)
    reasons = {Path(s.path).name: s.reason for s in skipped}
    # Both files claiming id 'good' are refused: neither may silently win.
    assert sorted(d.doc_id for d in docs) == ["also-good"]
    assert set(reasons) == set(bad) | {"good.md"}
    assert "duplicate document id 'good'" in reasons["good.md"]
    for name, (_, fragment) in bad.items():
        assert fragment in reasons[name], (name, reasons[name])


def test_symlink_loops_and_links_outside_the_root_are_reported(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "good.md").write_text(_md("good"), encoding="utf-8")
    outside = tmp_path / "secret.md"
    outside.write_text(_md("secret"), encoding="utf-8")
    os.symlink(outside, root / "escape.md")
    os.symlink(root, root / "sub" / "loop")  # a directory that contains itself
    os.symlink(root / "self-a.md", root / "self-b.md")
    os.symlink(root / "self-b.md", root / "self-a.md")
    docs, skipped = load_corpus([root])
    assert [d.doc_id for d in docs] == ["good"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert "outside the corpus root" in reasons["escape.md"]
    assert "loop" in reasons["loop"]
    assert "loop" in reasons["self-a.md"] and "loop" in reasons["self-b.md"]


def test_missing_path_is_reported(tmp_path: Path) -> None:
    docs, skipped = load_corpus([tmp_path / "nope"])
    assert docs == [] and skipped[0].reason == "no such file or directory"


def test_hidden_readme_and_unsupported_files_in_a_directory_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# About this corpus\n", encoding="utf-8")
    (tmp_path / ".draft.md").write_text("junk", encoding="utf-8")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "good.md").write_text(_md("good"), encoding="utf-8")
    docs, skipped = load_corpus([tmp_path])
    assert [d.doc_id for d in docs] == ["good"] and skipped == []
