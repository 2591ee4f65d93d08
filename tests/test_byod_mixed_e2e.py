"""End to end, one folder of every format a team brings: plain text, HTML (with a dose table),
PDF (a figure whose unit wrapped onto the next line) and FDA SPL XML, ingested together. Each
question gets its figure cited to the document and section it comes from, a question about a
drug in none of them abstains naming it, and two documents on one drug (a tablet and its
extended-release form) are told apart by the product the question names.

The text, HTML and PDF documents are written here in our own words (a made-up hospital's
protocols); the SPL label is the repository's invented EXAMPLIX fixture. When ../shared is
present, a real public-domain openFDA label (haloperidol) joins the folder, copied to a temp
folder only — datasets are never copied into the repository."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from evals import byod_devset
from guardrails import load_limits
from ingest import open_index
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"
EXAMPLIX = REPO / "tests" / "fixtures" / "spl" / "examplix_plr.xml"
REAL_LABEL = (
    REPO.parent / "shared" / "datasets" / "labels" / "spl_fixtures_openfda" / "no-title.xml"
)


def _write_folder(folder: Path) -> None:
    (folder / "vancomycin-protocol.txt").write_text(
        "Vancomycin protocol\n\nDOSAGE AND ADMINISTRATION\nThe loading dose of vancomycin is "
        "25 mg/kg intravenously. Maintenance is 15 mg/kg every 12 hours.\n\nMONITORING\nCheck a "
        "trough level before the fourth dose.\n",
        encoding="utf-8",
    )
    (folder / "apixaban-guide.html").write_text(
        "<html><head><title>Apixaban guide</title></head><body><h1>Apixaban guide</h1>"
        "<h2>Dosing by indication</h2><table>"
        "<tr><th>Indication</th><th>Dose</th></tr>"
        "<tr><td>Atrial fibrillation</td><td>5 mg twice daily</td></tr>"
        "<tr><td>Treatment of deep vein thrombosis</td><td>10 mg twice daily for 7 days</td></tr>"
        "</table><h2>Monitoring</h2><p>No routine level monitoring is needed.</p></body></html>",
        encoding="utf-8",
    )
    byod_devset.write_pdf(
        folder / "levetiracetam-status.pdf",
        "Levetiracetam in status epilepticus",
        [
            ["Levetiracetam in status epilepticus", "", "BACKGROUND",
             "This protocol covers second-line treatment after benzodiazepines."],
            ["DOSAGE", "Give levetiracetam 60 mg/kg intravenously over 10 minutes,",
             "to a maximum of 4500", "mg."],
        ],
    )  # fmt: skip
    # Two products of one drug, whose strengths lists do not name the product: the question
    # that names the extended-release form gets its list (the title says which is which).
    (folder / "metoprolol-tartrate.txt").write_text(
        "Metoprolol tartrate tablets\n\nHOW SUPPLIED\nScored tablets of 25 mg, 50 mg and 100 mg "
        "metoprolol.\n\nDOSAGE AND ADMINISTRATION\nStart metoprolol tartrate at "
        "50 mg twice daily.\n",
        encoding="utf-8",
    )
    (folder / "metoprolol-succinate-er.txt").write_text(
        "Metoprolol succinate extended-release tablets\n\nHOW SUPPLIED\nTablets of 47.5 mg, "
        "95 mg and 190 mg metoprolol.\n\n"
        "DOSAGE AND ADMINISTRATION\nGive metoprolol succinate extended-release once daily.\n",
        encoding="utf-8",
    )
    shutil.copy(EXAMPLIX, folder / "examplix.xml")
    if REAL_LABEL.is_file():
        shutil.copy(REAL_LABEL, folder / "haloperidol-label.xml")


def _citations_of(result: Any, figure: str) -> list[Any]:
    """The citations whose passage the guard found supporting a number of ``figure``."""
    by_n = {c.n: c for c in result.citations}
    number = figure.split()[0]
    return [
        by_n[c.citation_n]
        for c in result.claims
        if number in c.text and c.citation_n in by_n and c.status == "supported"
    ]


@pytest.fixture(scope="module")
def mixed_assistant(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    folder = tmp_path_factory.mktemp("byod-mixed")
    _write_folder(folder)
    data = tmp_path_factory.mktemp("byod-mixed-data")
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="byodmixed")
    report = run_ingest(
        [FIXTURE_CORPUS, folder], cfg, embedder, chunk_size=900, data_dir=data, progress=False
    )
    assert not report.skipped, report.skipped
    return Assistant(open_index(cfg, embedder), embedder, load_limits(), data_dir=data)


@pytest.mark.parametrize(
    ("question", "doc_id", "section", "figure"),
    [
        # text: a capitalised heading is the section
        ("What is the loading dose of vancomycin?", "vancomycin-protocol", "DOSAGE", "25 mg/kg"),
        # HTML: a table row read with its column headers
        ("apixaban dose for treatment of deep vein thrombosis", "apixaban-guide",
         "Dosing by indication", "10 mg twice daily"),
        # PDF: "4500" / "mg" on two lines is one figure, the page is in the section name
        ("What is the maximum dose of levetiracetam?", "levetiracetam-status", "(page 2)",
         "4500 mg"),
        # SPL XML: the label's Dosage and Administration section
        ("What is the recommended dose of examplinib?", None, "Dosage and Administration",
         "100 mg"),
    ],
)  # fmt: skip
def test_each_format_answers_with_its_figure_cited_to_its_document_and_section(
    mixed_assistant: Assistant, question: str, doc_id: str | None, section: str, figure: str
) -> None:
    result = mixed_assistant.ask(question)
    assert result.status == "verified", result.answer
    assert figure in result.answer, result.answer
    holders = _citations_of(result, figure)
    assert any((doc_id is None or h.doc_id == doc_id) and section in h.section for h in holders), [
        (h.doc_id, h.section) for h in holders
    ]


def test_an_imported_document_is_cited_as_title_section_page_once(
    mixed_assistant: Assistant,
) -> None:
    result = mixed_assistant.ask("What is the maximum dose of levetiracetam?")
    refs = result.answer.split("**Sources**", 1)[1]
    line = next(x for x in refs.splitlines() if "levetiracetam-status.pdf" in x)
    # "Title — Section (page N) — file, local document": the title is said once.
    assert "Levetiracetam in status epilepticus — DOSAGE (page 2) — " in line, line
    assert line.count("Levetiracetam in status epilepticus") == 1, line
    assert line.endswith("levetiracetam-status.pdf, local document"), line


def test_the_product_the_question_names_is_the_one_cited(mixed_assistant: Assistant) -> None:
    result = mixed_assistant.ask("metoprolol succinate ER tablet strengths?")
    assert result.status == "verified", result.answer
    # The direct answer (first line, first source) is the named product's strengths list.
    assert "95 mg" in result.summary, result.answer
    first = min(result.citations, key=lambda c: c.n)
    assert (first.doc_id, first.section.split(" > ")[-1]) == (
        "metoprolol-succinate-er",
        "HOW SUPPLIED",
    ), [(c.doc_id, c.section) for c in result.citations]
    assert {h.doc_id for h in _citations_of(result, "95 mg")} == {"metoprolol-succinate-er"}


def test_a_regimen_question_is_not_answered_with_the_strengths_list(
    mixed_assistant: Assistant,
) -> None:
    result = mixed_assistant.ask("What is the starting dose of metoprolol tartrate?")
    assert result.status == "verified", result.answer
    assert "50 mg twice daily" in result.answer, result.answer
    assert all("HOW SUPPLIED" not in c.section for c in result.citations), [
        c.section for c in result.citations
    ]


def test_a_drug_in_no_document_abstains_naming_it(mixed_assistant: Assistant) -> None:
    result = mixed_assistant.ask("What is the dose of gentamicin?")
    assert result.status == "abstained", result.answer
    assert "gentamicin" in result.answer.lower()
    assert not result.citations


@pytest.mark.skipif(not REAL_LABEL.is_file(), reason="../shared openFDA labels absent")
def test_a_real_label_in_the_folder_answers_from_its_dosage_section(
    mixed_assistant: Assistant,
) -> None:
    result = mixed_assistant.ask(
        "What is the initial haloperidol dose for adults with moderate symptomatology?"
    )
    assert result.status == "verified", result.answer
    assert result.drug == "haloperidol"
    assert "0.5 mg to 2 mg" in result.answer, result.answer
    holders = _citations_of(result, "0.5 mg to 2 mg")
    assert holders and all(
        h.doc_kind == "label" and h.section.startswith("Dosage and Administration") for h in holders
    ), [(h.doc_id, h.section) for h in holders]
