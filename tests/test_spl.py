"""FDA SPL label import (ingest/spl.py) on invented fixtures in the real SPL schema, plus the real
openFDA fixtures in ../shared when present."""

from __future__ import annotations

import http.server
import io
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import CorpusError, LabelError, LabelFetchError
from ingest.model import Document
from ingest.spl import fetch_label, load_label, load_labels, parse_label

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spl"
PLR = FIXTURES / "examplix_plr.xml"
OLD = FIXTURES / "placebrin_old.xml"
SHARED_SPL = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "datasets"
    / "labels"
    / "spl_fixtures_openfda"
)
PLR_SETID = "7d1e0c9a-3b52-4f7e-9a61-2c8e5d4b1a01"
HEADING_RE = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*$", re.M)


def sections_of(body: str) -> dict[tuple[str, ...], str]:
    """Section path → text, the way a heading-splitting chunker sees the body (repeated paths
    are concatenated)."""
    out: dict[tuple[str, ...], str] = {}
    path: list[tuple[int, str]] = []
    matches = list(HEADING_RE.finditer(body))
    for i, m in enumerate(matches):
        level = len(m.group(1))
        while path and path[-1][0] >= level:
            path.pop()
        path.append((level, m.group(2)))
        end = matches[i + 1].start() if i + 1 < len(matches) else len(body)
        key = tuple(t for _, t in path)
        out[key] = out.get(key, "") + body[m.end() : end]
    return out


@pytest.fixture(scope="module")
def plr() -> Document:
    return load_label(PLR)


@pytest.fixture(scope="module")
def old() -> Document:
    return load_label(OLD)


# --- PLR layout --------------------------------------------------------------------------


def test_plr_label_metadata_from_document_header(plr: Document) -> None:
    assert plr.title == "Label: EXAMPLIX® (examplinib) tablets, for oral use"
    assert plr.doc_id == f"label-{PLR_SETID}-v4"
    assert plr.last_reviewed == "2024-03-15"
    assert plr.doc_kind == "label"
    assert plr.review_status == "official label"
    assert plr.drugs == ("examplinib",)
    assert plr.brand_names == ("examplix",)
    assert plr.content_hash  # set from the file bytes so re-ingest can detect changes


def test_plr_source_names_label_set_id_version_and_date(plr: Document) -> None:
    (source,) = plr.sources
    assert source.id == "label" and source.kind == "label"
    assert source.reference == (
        f"FDA label: EXAMPLIX® (examplinib) tablets, for oral use. Set ID {PLR_SETID}, "
        "version 4, effective 2024-03-15."
    )
    assert source.url == f"https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid={PLR_SETID}"


def test_plr_dosage_section_found_by_loinc_code_with_its_numbers(plr: Document) -> None:
    secs = sections_of(plr.body)
    dosing = secs[("Dosage and Administration", "2.1 Recommended Dosage")]
    assert "The recommended dosage of EXAMPLIX is 100 mg orally once daily" in dosing


def test_plr_top_sections_named_after_their_codes_in_order(plr: Document) -> None:
    top = [m.group(2) for m in HEADING_RE.finditer(plr.body) if m.group(1) == "#"]
    assert top == [
        "Boxed Warning",
        "Indications and Usage",
        "Dosage and Administration",
        "Dosage Forms and Strengths",
        "Contraindications",
        "Warnings and Precautions",
        "Adverse Reactions",
        "Use in Specific Populations",
    ]


def test_nested_subsections_become_deeper_headings(plr: Document) -> None:
    assert "\n## 2.2 Dosage Modifications for Adverse Reactions\n" in plr.body
    secs = sections_of(plr.body)
    liver = secs[
        (
            "Dosage and Administration",
            "2.2 Dosage Modifications for Adverse Reactions",
            "2.2.1 Liver Test Abnormalities",
        )
    ]
    assert "withhold EXAMPLIX until ALT is at or below 3 × ULN" in liver


def test_fourth_level_subsection_stays_under_its_parent_heading(plr: Document) -> None:
    assert "# Recurrence" not in plr.body
    secs = sections_of(plr.body)
    liver = secs[
        (
            "Dosage and Administration",
            "2.2 Dosage Modifications for Adverse Reactions",
            "2.2.1 Liver Test Abnormalities",
        )
    ]
    assert "Recurrence" in liver and "again exceeds 5 × ULN at 50 mg once daily" in liver


def test_untitled_subsection_after_titled_sibling_is_filed_under_parent(plr: Document) -> None:
    secs = sections_of(plr.body)
    parent = secs[("Dosage and Administration", "2.2 Dosage Modifications for Adverse Reactions")]
    assert "Dose re-escalation after a reduction is not recommended." in parent
    liver = secs[
        (
            "Dosage and Administration",
            "2.2 Dosage Modifications for Adverse Reactions",
            "2.2.1 Liver Test Abnormalities",
        )
    ]
    assert "re-escalation" not in liver


def test_subsection_reusing_parent_code_keeps_its_own_title(plr: Document) -> None:
    assert ("Adverse Reactions", "6.1 Clinical Trials Experience") in sections_of(plr.body)


def test_coded_subsection_gets_readable_name(plr: Document) -> None:
    secs = sections_of(plr.body)
    assert "younger than 18 years" in secs[("Use in Specific Populations", "Pediatric Use")]


def test_table_flattened_to_pipe_rows_with_caption(plr: Document) -> None:
    lines = plr.body.splitlines()
    assert "Table 1: Dose Reduction Levels [@label]" in lines
    assert "Dose level | Dosage" in lines
    assert "Recommended starting dosage | 100 mg once daily [@label]" in lines
    assert "Second dose reduction | 50 mg once daily [@label]" in lines
    assert "Adverse reaction | EXAMPLIX (N=210) % | Placebo (N=105) % [@label]" in lines
    assert "Fatigue | 31 | 14 [@label]" in lines


def test_table_footnote_kept_beside_its_cell(plr: Document) -> None:
    assert (
        "First dose reduction | 75 mg once daily (Note: Use one 50 mg tablet plus one half of a "
        "scored 50 mg tablet.) [@label]"
    ) in plr.body.splitlines()


def test_lists_become_dash_items_with_nesting(plr: Document) -> None:
    lines = plr.body.splitlines()
    assert "- Swallow tablets whole with water." in lines
    assert "- Do not take more than 1 dose in 24 hours. [@label]" in lines
    assert "  - If vomiting occurs after a dose, do not take an extra dose." in lines


def test_br_splits_lines_and_sup_sub_render_without_fusing_numbers(plr: Document) -> None:
    lines = plr.body.splitlines()
    assert (
        "Mild to moderate renal impairment (CLcr 30 to 89 mL/min/1.73 m2): no dose change. [@label]"
        in lines
    )
    assert (
        "Severe renal impairment (CLcr 15 to 29 mL/min/1.73 m2): 50 mg once daily. [@label]"
        in lines
    )
    # 10<sup>9</sup> must not become "109".
    assert "Do not start EXAMPLIX if platelets are below 50 × 10^9/L. [@label]" in lines


def test_every_text_line_with_a_number_cites_the_label(plr: Document, old: Document) -> None:
    for doc in (plr, old):
        for line in doc.body.splitlines():
            if line.startswith("#") or not re.search(r"\d", line):
                assert "[@label]" not in line, line
            else:
                assert line.endswith(" [@label]"), line


def test_highlights_product_data_and_image_only_sections_not_rendered(plr: Document) -> None:
    assert "HIGHLIGHT-ONLY" not in plr.body
    assert "Recent Major Changes" not in plr.body
    assert "MICROCRYSTALLINE" not in plr.body
    assert "Package Label" not in plr.body and "carton" not in plr.body


def test_whitespace_normalised_in_text_and_headings(plr: Document) -> None:
    assert "100 mg orally once daily, with or without food" in plr.body
    assert "\t" not in plr.body and "  mg" not in plr.body


# --- older non-PLR layout ---------------------------------------------------------------


def test_old_layout_metadata_and_pre_2009_product_elements(old: Document) -> None:
    assert old.title == "Label: PLACEBRIN (placebrinol hydrochloride) Tablets, USP"
    assert old.doc_id == "label-c0ffee00-1234-4abc-8def-0123456789ab-v2"
    assert old.last_reviewed == "2007-06-12"
    assert old.drugs == ("placebrinol hydrochloride", "placebrinol")
    assert old.brand_names == ("placebrin",)


def test_old_layout_unclassified_dosage_section_mapped_by_title(old: Document) -> None:
    secs = sections_of(old.body)
    dosing = secs[("Dosage and Administration",)]
    assert "The usual dose is 10 mg by mouth twice daily." in dosing
    assert "Do not exceed 40 mg per day. [@label]" in dosing
    assert "10 to 50 mL/min | 10 mg once daily [@label]" in dosing


def test_old_layout_section_without_code_mapped_by_title(old: Document) -> None:
    assert "dry mouth" in sections_of(old.body)[("Adverse Reactions",)]


def test_old_layout_coded_nested_sections(old: Document) -> None:
    secs = sections_of(old.body)
    assert "Category C" in secs[("Precautions", "Pregnancy")]
    assert "below the age of 12 years" in secs[("Precautions", "Pediatric Use")]
    assert "Indications and Usage" in [m.group(2) for m in HEADING_RE.finditer(old.body)]


def test_generic_document_title_falls_back_to_product_names(tmp_path: Path) -> None:
    data = OLD.read_bytes()
    start, end = data.index(b"<title>PLACEBRIN"), data.index(b"</title>") + len(b"</title>")
    for replacement in (b"<title>Drug Facts</title>", b"<title/>"):
        doc = parse_label(data[:start] + replacement + data[end:], "mem.xml")
        assert doc.title == "Label: Placebrin (Placebrinol Hydrochloride)"


# --- folders and zips -------------------------------------------------------------------


def test_folder_loads_every_label_and_skips_other_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.xml").write_bytes(PLR.read_bytes())
    (tmp_path / "b.xml").write_bytes(OLD.read_bytes())
    (tmp_path / "notes.txt").write_text("hello")
    docs, skipped = load_labels(tmp_path)
    assert sorted(d.doc_id for d in docs) == [
        "label-7d1e0c9a-3b52-4f7e-9a61-2c8e5d4b1a01-v4",
        "label-c0ffee00-1234-4abc-8def-0123456789ab-v2",
    ]
    assert [(Path(s.path).name, s.reason) for s in skipped] == [
        ("notes.txt", "not an SPL label file (.txt)")
    ]


def test_same_label_twice_is_skipped_as_duplicate(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_bytes(PLR.read_bytes())
    (tmp_path / "b.xml").write_bytes(PLR.read_bytes())
    docs, skipped = load_labels(tmp_path)
    assert len(docs) == 1
    assert len(skipped) == 1 and "duplicate label" in skipped[0].reason


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_read_in_memory_rejecting_traversal_and_non_xml(tmp_path: Path) -> None:
    archive = tmp_path / "labels.zip"
    archive.write_bytes(
        _zip_bytes(
            {
                "examplix/examplix.xml": PLR.read_bytes(),
                "examplix/carton.jpg": b"\xff\xd8\xff",
                "../evil.xml": OLD.read_bytes(),
                "/abs/evil.xml": OLD.read_bytes(),
                "inner.zip": _zip_bytes({"placebrin.xml": OLD.read_bytes()}),
            }
        )
    )
    docs, skipped = load_labels(archive)
    assert sorted(d.doc_kind for d in docs) == ["label", "label"]
    by_path = {d.path: d for d in docs}
    assert f"{archive}!examplix/examplix.xml" in by_path
    assert f"{archive}!inner.zip!placebrin.xml" in by_path
    reasons = {s.path.removeprefix(f"{archive}!"): s.reason for s in skipped}
    assert reasons["examplix/carton.jpg"] == "not an XML label (.jpg)"
    assert "unsafe path" in reasons["../evil.xml"]
    assert "unsafe path" in reasons["/abs/evil.xml"]
    assert not (tmp_path.parent / "evil.xml").exists()
    assert not list(tmp_path.glob("**/*.xml"))  # nothing extracted to disk


def test_corrupt_zip_is_skipped_with_reason(tmp_path: Path) -> None:
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    docs, skipped = load_labels(archive)
    assert docs == [] and "not a readable zip archive" in skipped[0].reason


# --- bad input --------------------------------------------------------------------------

NOT_SPL_ROOT = b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body/></html>'
WRONG_NS = b'<?xml version="1.0"?><document xmlns="urn:example:other"><title>x</title></document>'
NO_SECTIONS = (
    b'<document xmlns="urn:hl7-org:v3"><setId root="11111111-2222-4333-8444-555555555555"/>'
    b'<component><structuredBody><component><section><code code="48780-1"/></section>'
    b"</component></structuredBody></component></document>"
)
NON_XML_BODY = (
    b'<document xmlns="urn:hl7-org:v3"><setId root="11111111-2222-4333-8444-555555555555"/>'
    b'<component><nonXMLBody><text mediaType="application/pdf"/></nonXMLBody></component></document>'
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"%PDF-1.4 binary", "not XML"),
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b'<?xml version="1.0"?><document xmlns="urn:hl7-org:v3"><title>cut off', "malformed XML"),
        (NOT_SPL_ROOT, "root element is <html>"),
        (WRONG_NS, "in namespace 'urn:example:other'"),
        (NO_SECTIONS, "no sections with text"),
        (NON_XML_BODY, "nonXMLBody"),
        (
            b'<document xmlns="urn:hl7-org:v3"><component><structuredBody/></component></document>',
            "no set id",
        ),
    ],
)
def test_bad_input_raises_label_error_naming_path_and_reason(
    tmp_path: Path, data: bytes, reason: str
) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(data)
    with pytest.raises(LabelError) as info:
        load_label(path)
    assert reason in info.value.reason
    assert str(path) in str(info.value)
    assert isinstance(info.value, CorpusError)  # the corpus loader reports it as a skipped file


def test_truncated_real_schema_label_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "cut.xml"
    path.write_bytes(PLR.read_bytes()[:3000])
    with pytest.raises(LabelError, match="malformed XML"):
        load_label(path)


def test_missing_file_raises_label_error(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="cannot read"):
        load_label(tmp_path / "absent.xml")


def test_external_entities_are_never_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = (
        PLR.read_bytes()
        .replace(
            b"<document ",
            f'<!DOCTYPE document [<!ENTITY x SYSTEM "file://{secret}">]>\n<document '.encode(),
            1,
        )
        .replace(b"None.</paragraph>", b"None &x;.</paragraph>", 1)
    )
    try:
        doc = parse_label(data, "xxe.xml")
    except LabelError:
        return
    assert "TOP-SECRET-CONTENT" not in doc.body


# --- integration with the corpus loader and chunker ----------------------------------------


def test_corpus_loader_delegates_spl_xml_to_label_loader() -> None:
    loaders = pytest.importorskip("ingest.loaders")
    doc = loaders.load_file(PLR)
    assert doc.doc_kind == "label" and doc.doc_id == f"label-{PLR_SETID}-v4"


def test_chunks_of_dosage_section_cite_the_label(plr: Document) -> None:
    chunking = pytest.importorskip("ingest.chunking")
    chunks = chunking.chunk_document(plr, 900)
    dosing = [c for c in chunks if c.section_path[:1] == ("Dosage and Administration",)]
    assert any("100 mg orally once daily" in c.text for c in dosing)
    assert all(c.source_ids == ("label",) for c in chunks)
    assert all(c.sources[0].kind == "label" for c in chunks)


# --- fetch_label (never touches the internet) ---------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def label_server() -> Iterator[tuple[str, dict[str, tuple[int, bytes]]]]:
    routes: dict[str, tuple[int, bytes]] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/spls/{{setid}}.xml", routes
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_label_offline_fails_with_clear_error(tmp_path: Path, no_network: list[str]) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/spls/{{setid}}.xml"
    with pytest.raises(LabelFetchError, match=r"cannot reach .*Connection refused.*no network"):
        fetch_label(PLR_SETID, tmp_path, timeout_s=2, url_template=url)
    assert list(tmp_path.iterdir()) == []


def test_fetch_label_rejects_non_uuid_set_id_and_non_http_urls(tmp_path: Path) -> None:
    with pytest.raises(LabelFetchError, match="not a DailyMed set id"):
        fetch_label("../../etc/passwd", tmp_path)
    with pytest.raises(LabelFetchError, match="only http"):
        fetch_label(PLR_SETID, tmp_path, url_template="file:///tmp/{setid}.xml")


def test_fetch_label_writes_validated_label(
    tmp_path: Path, label_server: Any, no_network: list[str]
) -> None:
    url, routes = label_server
    routes[f"/spls/{PLR_SETID}.xml"] = (200, PLR.read_bytes())
    path = fetch_label(PLR_SETID.upper(), tmp_path / "labels", timeout_s=5, url_template=url)
    assert path == tmp_path / "labels" / f"{PLR_SETID}.xml"
    assert load_label(path).doc_id == f"label-{PLR_SETID}-v4"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_fetch_label_http_error_and_bad_payload_write_nothing(
    tmp_path: Path, label_server: Any, no_network: list[str]
) -> None:
    url, routes = label_server
    with pytest.raises(LabelFetchError, match="HTTP 404"):
        fetch_label(PLR_SETID, tmp_path, url_template=url)
    routes[f"/spls/{PLR_SETID}.xml"] = (200, b"<html>maintenance</html>")
    with pytest.raises(LabelFetchError, match="not a usable label"):
        fetch_label(PLR_SETID, tmp_path, url_template=url)
    other = "11111111-2222-4333-8444-555555555555"
    routes[f"/spls/{other}.xml"] = (200, PLR.read_bytes())
    with pytest.raises(LabelFetchError, match="received"):
        fetch_label(other, tmp_path, url_template=url)
    assert list(tmp_path.iterdir()) == []


# --- real openFDA labels in ../shared (skipped when absent) --------------------------------

_SHARED_FILES = sorted(SHARED_SPL.glob("*.xml")) if SHARED_SPL.is_dir() else []


@pytest.mark.skipif(
    not _SHARED_FILES, reason="../shared/datasets/labels/spl_fixtures_openfda absent"
)
@pytest.mark.parametrize("path", _SHARED_FILES, ids=lambda p: p.name)
def test_real_openfda_label_dosage_section_found(path: Path) -> None:
    data = path.read_bytes()
    try:
        doc = load_label(path)
    except LabelError:
        assert b"34068-7" not in data, "a label with a D&A section must load"
        return
    if b'"34068-7"' not in data:
        return
    dosing = {k: v for k, v in sections_of(doc.body).items() if k[0] == "Dosage and Administration"}
    assert dosing, f"no Dosage and Administration heading in {path.name}"
    text = " ".join(dosing.values())
    assert re.search(r"\d+(\.\d+)? ?(mg|mL|teaspoonful)", text), text[:500]
    assert "[@label]" in text
    assert doc.drugs and doc.title.startswith("Label: ") and len(doc.title) > len("Label: ")


# --- end to end through the ingest pipeline -----------------------------------------------


def test_run_ingest_indexes_label_dosage_chunks_that_cite_the_label(
    tmp_path: Path, embedder: Any, no_network: list[str]
) -> None:
    pipeline = pytest.importorskip("ingest.pipeline")
    store_mod = pytest.importorskip("ingest.store")
    from ingest.model import StoreConfig

    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "examplix.xml").write_bytes(PLR.read_bytes())
    config = StoreConfig(
        mode="embedded", path=str(tmp_path / "data" / "chroma"), collection="spltest"
    )
    report = pipeline.run_ingest(
        [labels], config, embedder, chunk_size=400, data_dir=tmp_path / "data", progress=False
    )
    assert report.skipped == () and report.chunks_added > 0
    index = store_mod.open_index(config, embedder)
    chunks = index.all_chunks()
    dosing = [c for c in chunks if c.section_path[:1] == ("Dosage and Administration",)]
    assert any("100 mg orally once daily" in c.text for c in dosing)
    for c in dosing:
        assert c.doc_kind == "label" and c.source_ids == ("label",)
        assert c.sources[0].reference.startswith("FDA label: EXAMPLIX® (examplinib)")
        assert c.title == "Label: EXAMPLIX® (examplinib) tablets, for oral use"
    hits = index.query(embedder.encode_query("recommended dosage of examplinib"), k=3)
    assert any(c.section_path[:1] == ("Dosage and Administration",) for c, _ in hits)
