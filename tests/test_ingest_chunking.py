from __future__ import annotations

from dataclasses import replace

import pytest

from ingest.chunking import chunk_document, embedding_text
from ingest.model import Document, SourceRef

SOURCES = (
    SourceRef(id="src-a", reference="Reference A."),
    SourceRef(id="src-b", reference="Reference B."),
)


def _doc(body: str, **over: object) -> Document:
    base = Document(
        doc_id="doc-1",
        title="Drug X",
        body=body,
        path="corpus/doc-1.md",
        drugs=("drugx",),
        indications=("condition y",),
        sources=SOURCES,
    )
    return replace(base, **over)  # type: ignore[arg-type]


BODY = """Intro before any heading [@src-a].

# Drug X

Overview text.

## Dosing

Give 2 mg/kg/day [@src-a; @src-b].

### Children

Give 1 mg/kg/day [@src-b].

## Monitoring

Weekly blood counts.
"""


def test_chunks_never_span_two_headings_and_carry_their_section_path() -> None:
    chunks = chunk_document(_doc(BODY), chunk_size=900)
    assert [c.section_path for c in chunks] == [
        (),
        ("Drug X",),
        ("Drug X", "Dosing"),
        ("Drug X", "Dosing", "Children"),
        ("Drug X", "Monitoring"),
    ]
    for c in chunks:
        assert "\n#" not in c.text and not c.text.startswith("#")
    assert chunks[3].section == "Drug X > Dosing > Children"


def test_chunk_offsets_point_into_the_body() -> None:
    doc = _doc(BODY)
    for c in chunk_document(doc, chunk_size=900):
        assert doc.body[c.start : c.end] == c.text
        assert c.text == c.text.strip() and c.text


def test_chunks_keep_cited_source_ids_and_document_metadata() -> None:
    chunks = {c.section_path[-1:]: c for c in chunk_document(_doc(BODY), chunk_size=900)}
    dosing = chunks[("Dosing",)]
    assert dosing.source_ids == ("src-a", "src-b")
    assert [s.reference for s in dosing.sources] == ["Reference A.", "Reference B."]
    assert chunks[("Children",)].source_ids == ("src-b",)
    assert chunks[("Monitoring",)].source_ids == ()
    assert dosing.doc_id == "doc-1" and dosing.title == "Drug X"
    assert dosing.drugs == ("drugx",) and dosing.indications == ("condition y",)
    assert dosing.path == "corpus/doc-1.md"


def test_long_section_splits_on_sentence_boundaries_within_the_section() -> None:
    sentences = " ".join(
        f"Sentence number {i} states a dose of {i} mg [@src-a]." for i in range(40)
    )
    doc = _doc(f"# Drug X\n\n## Dosing\n\n{sentences}\n\n## Other\n\nShort.\n")
    chunks = chunk_document(doc, chunk_size=200)
    dosing = [c for c in chunks if c.section_path == ("Drug X", "Dosing")]
    assert len(dosing) > 5
    assert all(len(c.text) <= 200 for c in dosing)
    assert all(c.text.endswith(".") for c in dosing)  # never cut mid-sentence
    assert " ".join(c.text for c in dosing) == sentences
    assert chunks[-1].section_path == ("Drug X", "Other")
    assert len({c.id for c in chunks}) == len(chunks)


def test_chunk_ids_are_stable_and_change_only_with_their_own_content() -> None:
    first = chunk_document(_doc(BODY), chunk_size=900)
    again = chunk_document(_doc(BODY), chunk_size=900)
    assert [c.id for c in first] == [c.id for c in again]
    edited = chunk_document(
        _doc(BODY.replace("Weekly blood counts.", "Monthly blood counts.")), 900
    )
    changed = [a.id != b.id for a, b in zip(first, edited, strict=True)]
    assert changed == [False, False, False, False, True]


def test_heading_inside_code_fence_is_not_a_section() -> None:
    doc = _doc("# A\n\n```\n# not a heading\n```\n\ntext\n")
    chunks = chunk_document(doc, chunk_size=900)
    assert len(chunks) == 1 and "# not a heading" in chunks[0].text


def test_label_chunks_are_backed_by_the_label_source() -> None:
    label_src = SourceRef(id="imuran-label", reference="Imuran label.", kind="label")
    doc = _doc("# Imuran\n\n## Dosage\n\n1 mg/kg/day.\n", doc_kind="label", sources=(label_src,))
    (chunk,) = chunk_document(doc, chunk_size=900)
    assert chunk.source_ids == ("imuran-label",) and chunk.sources == (label_src,)


def test_embedding_text_names_title_and_section() -> None:
    chunk = chunk_document(_doc(BODY), chunk_size=900)[3]
    assert embedding_text(chunk).splitlines()[0] == "Drug X > Dosing > Children"


def test_tiny_chunk_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_document(_doc(BODY), chunk_size=10)
