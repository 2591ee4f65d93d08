"""Bring your own documents: text, HTML and PDF files without front matter are read for their
drugs, indications and sections, and answered from as they stand, cited by title and section.

The documents are written here, in our own words (a made-up hospital's protocols); the PDF is a
real PDF made with matplotlib's PDF backend and read back with pypdf."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from evals import byod_devset
from guardrails import load_limits
from ingest import open_index
from ingest.chunking import chunk_document
from ingest.detect import detect_topics
from ingest.lexicon import DrugLexicon
from ingest.loaders import load_corpus, load_file, unwrap_pdf_lines
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"

_SMALL = DrugLexicon(
    {"levetiracetam": "levetiracetam", "keppra": "levetiracetam", "warfarin": "warfarin",
     "vancomycin": "vancomycin", "apixaban": "apixaban", "eliquis": "apixaban"},
    use_package=False,
)  # fmt: skip


# -- drug and indication detection -----------------------------------------------------------
def test_the_title_drug_comes_first_and_a_passing_mention_is_not_a_topic() -> None:
    body = (
        "# Vancomycin dosing protocol\n## Dosing\nGive vancomycin 15 mg/kg every 12 hours. "
        "Vancomycin levels guide the next dose. Avoid warfarin changes during vancomycin courses.\n"
    )
    topics = detect_topics("Vancomycin dosing protocol", body, _SMALL)
    assert topics.drugs == ("vancomycin",)


def test_a_drug_named_in_a_heading_or_often_in_the_body_is_a_topic() -> None:
    body = (
        "# Anticoagulation\n## Apixaban\nApixaban 5 mg twice daily. Apixaban is reduced to "
        "2.5 mg twice daily in some patients.\n## Warfarin\nWarfarin is dosed to an INR. "
        "Warfarin needs monitoring. Warfarin interacts widely.\n"
    )
    topics = detect_topics("Anticoagulation", body, _SMALL)
    assert set(topics.drugs) == {"apixaban", "warfarin"}
    assert topics.drugs[0] == "warfarin"  # named most often


def test_brand_names_in_the_title_are_kept_for_questions_by_brand() -> None:
    topics = detect_topics("Keppra (levetiracetam) tablets", "# Keppra\ntext\n", _SMALL)
    assert topics.drugs == ("levetiracetam",)
    assert "keppra" in topics.brand_names


def test_indications_come_from_title_and_headings_and_repeated_body_mentions() -> None:
    body = "# Azathioprine in rheumatoid arthritis\nUsed in RA.\nAlso seen in gout once.\n"
    topics = detect_topics("Azathioprine in rheumatoid arthritis", body, _SMALL)
    assert topics.indications[:1] == ("rheumatoid arthritis",)
    assert "gout" not in topics.indications


# -- loaders: sections, tables, wrapped PDF lines ----------------------------------------------
def test_text_headings_in_capitals_become_sections(tmp_path: Path) -> None:
    f = tmp_path / "vanco.txt"
    f.write_text(
        "Vancomycin protocol\n\nDOSAGE AND ADMINISTRATION\nGive 15 mg/kg every 12 hours.\n\n"
        "MONITORING\nCheck a trough before the fourth dose.\n",
        encoding="utf-8",
    )
    doc = load_file(f)
    assert doc.title == "Vancomycin protocol"
    assert doc.drugs == ("vancomycin",)
    assert doc.sources and doc.sources[0].kind == "local document"
    sections = {c.section: c.text for c in chunk_document(doc, 900)}
    assert "Vancomycin protocol > DOSAGE AND ADMINISTRATION" in sections
    assert "15 mg/kg" in sections["Vancomycin protocol > DOSAGE AND ADMINISTRATION"]
    assert all(c.source_ids == (doc.doc_id,) for c in chunk_document(doc, 900))


def test_section_names_in_ordinary_case_on_their_own_line_are_headings(tmp_path: Path) -> None:
    f = tmp_path / "apix.txt"
    f.write_text(
        "Apixaban protocol\n\nDosage and Administration\nGive apixaban 5 mg twice daily.\n\n"
        "Renal impairment:\nReduce to 2.5 mg twice daily in the patients the label names.\n\n"
        "Dose\nA one-word line that could be a table column header stays text.\n",
        encoding="utf-8",
    )
    sections = {c.section: c.text for c in chunk_document(load_file(f), 900)}
    assert "5 mg twice daily" in sections["Apixaban protocol > Dosage and Administration"]
    assert "2.5 mg" in sections["Apixaban protocol > Renal impairment"]
    assert not any(s.endswith("> Dose") for s in sections), sections.keys()


def test_html_table_rows_are_read_with_their_header(tmp_path: Path) -> None:
    f = tmp_path / "apix.html"
    f.write_text(
        "<html><head><title>Apixaban guide</title></head><body><h2>Dosing</h2><table>"
        "<tr><th>Indication</th><th>Dose</th></tr>"
        "<tr><td>Atrial fibrillation</td><td>5 mg twice daily</td></tr>"
        "<tr><td>Treatment of DVT</td><td>10 mg twice daily for 7 days</td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )
    doc = load_file(f)
    assert "- Indication: Atrial fibrillation; Dose: 5 mg twice daily" in doc.body
    assert "- Indication: Treatment of DVT; Dose: 10 mg twice daily for 7 days" in doc.body
    assert doc.drugs == ("apixaban",)


def test_html_table_spans_and_bold_headers_give_every_row_its_context(tmp_path: Path) -> None:
    # Tables typed in an editor: bold first row instead of <th>, the drug named once for two
    # rows (rowspan), a note spanning the table (colspan).
    f = tmp_path / "vanco.html"
    f.write_text(
        "<html><body><h1>Vancomycin protocol</h1><table>"
        "<tr><td><b>Drug</b></td><td><strong>Phase</strong></td><td><b>Dose</b></td></tr>"
        "<tr><td rowspan='2'>Vancomycin</td><td>Loading</td><td>25 mg/kg</td></tr>"
        "<tr><td>Maintenance</td><td>15 mg/kg every 12 hours</td></tr>"
        "<tr><td colspan='3'>Check a trough level before the fourth dose</td></tr>"
        "</table></body></html>",
        encoding="utf-8",
    )
    body = load_file(f).body
    assert "- Drug: Vancomycin; Phase: Loading; Dose: 25 mg/kg" in body
    assert "- Drug: Vancomycin; Phase: Maintenance; Dose: 15 mg/kg every 12 hours" in body
    assert "- Check a trough level before the fourth dose\n" in body
    assert "Drug: Check" not in body


def test_a_number_keeps_its_unit_across_a_wrapped_pdf_line() -> None:
    text = "The usual dose is 500\nmg twice daily, up to\n1500 mg per day.\nMONITORING\nWeekly."
    out = unwrap_pdf_lines(text)
    assert "500 mg twice daily, up to 1500 mg per day." in out
    assert "\nMONITORING\n" in out  # a heading keeps its own line


def test_a_wrapped_line_that_cannot_end_goes_on_even_into_capitals() -> None:
    text = (
        "The dose is 20 mg once daily [see Warnings (5.5), USE IN\n"
        "SPECIFIC POPULATIONS (8.6)].\n"
        "Give it with water, or with\n"
        "Food.\n"
        "It is taken in the following patients:\n"
        "Adults over 18 years.\n"
    )
    out = unwrap_pdf_lines(text).split("\n")
    assert (
        "The dose is 20 mg once daily [see Warnings (5.5), USE IN SPECIFIC POPULATIONS (8.6)]."
        in out
    )
    assert "Give it with water, or with Food." in out
    assert "Adults over 18 years." in out  # a list's introduction ends its line


def _write_levetiracetam_pdf(path: Path) -> None:
    byod_devset.write_pdf(
        path,
        "Levetiracetam in status epilepticus",
        [
            ["Levetiracetam in status epilepticus", "", "BACKGROUND",
             "This protocol covers second-line treatment after benzodiazepines."],
            ["DOSAGE", "Give levetiracetam 60 mg/kg intravenously over 10 minutes,",
             "to a maximum of 4500", "mg."],
        ],
    )  # fmt: skip


def test_pdf_sections_name_their_page_and_keep_wrapped_units(tmp_path: Path) -> None:
    f = tmp_path / "lev.pdf"
    _write_levetiracetam_pdf(f)
    doc = load_file(f)
    assert doc.doc_kind == "pdf" and doc.drugs == ("levetiracetam",)
    sections = {c.section: c.text for c in chunk_document(doc, 900)}
    dosage = [s for s in sections if "DOSAGE (page 2)" in s]
    assert dosage, sections.keys()
    assert "maximum of 4500 mg" in sections[dosage[0]]


def test_a_pdf_without_headings_has_one_section_per_page(tmp_path: Path) -> None:
    f = tmp_path / "plain.pdf"
    byod_devset.write_pdf(f, "", [["give vancomycin 15 mg/kg."], ["then check levels."]])
    doc = load_file(f)
    names = [c.section for c in chunk_document(doc, 900)]
    assert any(n.endswith("Page 1") for n in names) and any(n.endswith("Page 2") for n in names)


# -- the dev-set builder ----------------------------------------------------------------------
def test_devset_builder_skips_cleanly_without_the_shared_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = byod_devset.main(
        ["--out", str(tmp_path / "out"), "--source", str(tmp_path / "no.jsonl")]
    )
    assert code == 0
    assert "absent" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_devset_builder_refuses_to_write_inside_the_repository(tmp_path: Path) -> None:
    src = tmp_path / "rows.jsonl"
    src.write_text("{}\n", encoding="utf-8")
    assert byod_devset.main(["--out", str(REPO / "byod-out"), "--source", str(src)]) == 2
    assert not (REPO / "byod-out").exists()


def test_devset_builder_writes_three_formats_and_dose_questions(tmp_path: Path) -> None:
    rows = [
        {"id": "r1", "focus_drug": "levetiracetam", "question": "max dose of levetiracetam?",
         "question_type": "Dose", "label_section_title": "DOSAGE AND ADMINISTRATION",
         "label_excerpt": "Start at 500 mg twice daily on Day 1, up to 1500 mg twice daily.",
         "dailymed_setid": "aaaa1111"},
        {"id": "r2", "focus_drug": "apixaban", "question": "what colour is the pill",
         "question_type": "Appearance", "label_section_title": "HOW SUPPLIED",
         "label_excerpt": "Yellow 2.5 mg tablets.", "dailymed_setid": "bbbb2222"},
        {"id": "r3", "focus_drug": "vancomycin", "question": "vancomycin dose?",
         "question_type": "Dose", "label_section_title": "DOSAGE AND ADMINISTRATION",
         "label_excerpt": "2 g daily divided every 6 hours.", "dailymed_setid": "cccc3333"},
    ]  # fmt: skip
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    assert byod_devset.main(["--out", str(out), "--source", str(src)]) == 0
    suffixes = sorted(p.suffix for p in (out / "docs").iterdir())
    assert suffixes == [".html", ".pdf", ".txt"]
    items = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert [i["id"] for i in items] == [
        "byod-r1",
        "byod-r3",
    ]  # the colour question is not a dose one
    numbers = items[0]["expected"]["numbers"]
    assert [n.split()[0] for n in numbers] == ["500", "1500"]  # "Day 1" is no dose
    assert items[0]["expected"]["drugs"] == ["levetiracetam"]
    docs, skipped = load_corpus([out / "docs"])
    assert not skipped and {d.drugs[0] for d in docs} == {"levetiracetam", "apixaban", "vancomycin"}


# -- end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def byod_assistant(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("byod-docs")
    (folder / "vancomycin-protocol.txt").write_text(
        "Vancomycin protocol\n\nDOSAGE AND ADMINISTRATION\nThe loading dose of vancomycin is "
        "25 mg/kg intravenously. Maintenance is 15 mg/kg every 12 hours.\n\nMONITORING\nCheck a "
        "trough level before the fourth dose.\n",
        encoding="utf-8",
    )
    (folder / "apixaban-guide.html").write_text(
        "<html><head><title>Apixaban guide</title></head><body><h1>Apixaban guide</h1>"
        "<h2>Dosing</h2><p>The usual dose of apixaban is 5 mg twice daily.</p>"
        "<h2>Monitoring</h2><p>No routine level monitoring is needed.</p></body></html>",
        encoding="utf-8",
    )
    _write_levetiracetam_pdf(folder / "levetiracetam-status.pdf")
    data = tmp_path_factory.mktemp("byod-data")
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="byod")
    report = run_ingest(
        [FIXTURE_CORPUS, folder], cfg, embedder, chunk_size=900, data_dir=data, progress=False
    )
    assert not report.skipped
    return Assistant(open_index(cfg, embedder), embedder, load_limits(), data_dir=data)


@pytest.mark.parametrize(
    ("question", "doc_id", "section", "figure"),
    [
        ("What is the maximum dose of levetiracetam?", "levetiracetam-status", "page 2", "4500 mg"),
        ("What is the loading dose of vancomycin?", "vancomycin-protocol", "DOSAGE", "25 mg/kg"),
        ("What is the dose of Apixaban?", "apixaban-guide", "Dosing", "5 mg"),
    ],
)
def test_an_imported_drug_is_answered_from_its_document_cited_by_section(
    byod_assistant: Assistant, question: str, doc_id: str, section: str, figure: str
) -> None:
    result = byod_assistant.ask(question)
    assert result.status == "verified", result.answer
    assert figure in result.answer
    cited = [c for c in result.citations if c.doc_id == doc_id]
    assert cited, [c.doc_id for c in result.citations]
    assert any(section in c.section for c in cited)
    assert all(c.doc_id == doc_id for c in result.citations)
    assert "local document" in result.answer  # the reference names the evidence kind


def test_a_drug_in_no_document_abstains_naming_it(byod_assistant: Assistant) -> None:
    result = byod_assistant.ask("What is the dose of gentamicin?")
    assert result.status == "abstained"
    assert "gentamicin" in result.answer.lower()
    assert "vancomycin" in result.answer.lower()  # the imported drugs are listed as covered


# -- the command line: ingest --dry-run, stats per drug and kind ------------------------------
@pytest.fixture
def cli_env(
    tmp_path: Path, tiny_corpus: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOSEWISE_CORPUS_DIR", str(tiny_corpus))
    monkeypatch.setenv("DOSEWISE_COLLECTION", "byodcli")
    monkeypatch.setenv("DOSEWISE_CHROMA_MODE", "embedded")
    monkeypatch.setenv("DOSEWISE_EMBEDDING_MODEL_PATH", embedder.model_path)
    folder = tmp_path / "imports"
    folder.mkdir()
    (folder / "vanco.txt").write_text(
        "Vancomycin protocol\n\nDOSAGE\nThe loading dose of vancomycin is 25 mg/kg. "
        "Maintenance is 15 mg/kg every 12 hours.\n",
        encoding="utf-8",
    )
    (folder / "notes.bin.txt").write_bytes(b"\xff\xfe bad")
    return folder


def test_ingest_dry_run_lists_drugs_and_statements_and_writes_nothing(
    cli_env: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["ingest", "--dry-run", str(cli_env)])
    assert result.exit_code == 1, result.output  # a file would be skipped
    out = result.output
    assert "[text] 'Vancomycin protocol'" in out
    assert "drugs: vancomycin" in out
    assert "initial 1" in out and "maintenance 1" in out
    assert "notes.bin.txt: not UTF-8" in out
    assert "1 documents would be read, 1 skipped" in out
    assert not (tmp_path / "data" / "chroma").exists()
    assert not (tmp_path / "data" / "statements.sqlite").exists()


def test_stats_lists_each_drug_with_its_document_kinds(cli_env: Path, tiny_corpus: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    (cli_env / "notes.bin.txt").unlink()
    runner = CliRunner()
    ingested = runner.invoke(app, ["ingest", "--no-progress", str(tiny_corpus), str(cli_env)])
    assert ingested.exit_code == 0, ingested.output
    out = runner.invoke(app, ["stats"]).output
    assert "vancomycin: 1 documents (text 1)" in out
    assert "methotrexate: 1 documents (article 1)" in out
    data = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert data["per_drug"]["vancomycin"]["kinds"] == {"text": 1}
    assert data["per_drug"]["vancomycin"]["statements"] >= 2


def test_a_misspelt_title_still_finds_its_drug_but_ordinary_title_words_do_not() -> None:
    from ingest.lexicon import default_lexicon

    lexicon = default_lexicon()
    assert detect_topics("Metroprolol succinate protocol", "# x\n", lexicon).drugs == (
        "metoprolol",
    )
    assert detect_topics("Prescribing information for the ward", "# x\n", lexicon).drugs == ()


def test_a_label_product_line_names_the_ingredients_the_title_does_not() -> None:
    # An over-the-counter label titled by a brand the lexicon lacks: "BRAND - ingredients form".
    body = (
        "# Gutcalm — prescribing information\n\n## Label\n"
        "GUTCALM ANTACID - aluminum hydroxide, magnesium hydroxide, simethicone liquid\n"
    )
    topics = detect_topics("Gutcalm — prescribing information", body, _SMALL_OTC)
    assert topics.drugs == ("aluminum hydroxide", "magnesium hydroxide", "simethicone")
    # A combination's own entry ("x and y") is not one more drug beside its parts.
    from ingest.lexicon import default_lexicon

    combo = "# Pain tabs\nPAINTABS - acetaminophen and codeine phosphate tablet\n"
    assert detect_topics("Pain tabs", combo, default_lexicon()).drugs == (
        "acetaminophen",
        "codeine",
    )
    # An ordinary sentence with a dash is not a product line.
    prose = "# Pain tabs\nNote - give acetaminophen with food. Avoid codeine.\n"
    assert detect_topics("Pain tabs", prose, _SMALL_OTC).drugs == ()


def test_an_unknown_brand_title_over_a_body_naming_one_drug_is_about_that_drug() -> None:
    one = (
        "# Brandol\n## Clinical pharmacology\nA 10 mg oral dose of levetiracetam peaks at 1 hour.\n"
    )
    assert detect_topics("Brandol", one, _SMALL).drugs == ("levetiracetam",)
    # Two drugs named once each: no guess.
    two = one + "Warfarin levels did not change.\n"
    assert detect_topics("Brandol", two, _SMALL).drugs == ()


_SMALL_OTC = DrugLexicon(
    {"aluminum hydroxide": "aluminum hydroxide", "magnesium hydroxide": "magnesium hydroxide",
     "simethicone": "simethicone", "acetaminophen": "acetaminophen", "codeine": "codeine"},
    use_package=False,
)  # fmt: skip
