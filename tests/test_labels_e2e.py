"""End to end: an imported FDA SPL label is indexed with the corpus, its brand name joins the
question vocabulary, and a dosing question about its drug gets a verified answer that cites the
label's Dosage and Administration section. Real openFDA labels (when ../shared has them) are
retrieved by their Dosage and Administration chunk with no unverified number shown."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from assistant.model import AnswerResult
from evals.run import guard_passages
from guardrails import check_answer, load_limits, parse_quantities
from ingest import open_index
from ingest.loaders import load_corpus
from ingest.model import IngestReport, StoreConfig
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"
EXAMPLIX = REPO / "tests" / "fixtures" / "spl" / "examplix_plr.xml"
PLACEBRIN = REPO / "tests" / "fixtures" / "spl" / "placebrin_old.xml"
OPENFDA = REPO.parent / "shared" / "datasets" / "labels" / "spl_fixtures_openfda"
DOSING = "Dosage and Administration"
_REFERENCES_RE = re.compile(r"\n\n\*\*(?:Sources|Where this comes from)\*\*\n")


def shown_body(result: AnswerResult) -> str:
    """What the guard checked: no leading fallback note, no bibliographic reference list."""
    text = result.answer
    if result.note and text.startswith(f"_{result.note}_"):
        text = text[len(result.note) + 2 :].lstrip("\n")
    return _REFERENCES_RE.split(text, maxsplit=1)[0]


def assert_no_unverified_number(result: AnswerResult) -> None:
    if result.status != "verified":
        doses = [q.text for q in parse_quantities(result.answer) if q.kind == "dose"]
        assert doses == [], f"a {result.status} answer shows doses: {doses}"
        return
    assert result.claims and result.citations
    assert all(c.status in ("supported", "derived") for c in result.claims), result.claims
    # Re-check independently: what is shown, against exactly the excerpts shown as its sources,
    # each with the drugs its document is about (as the chain and `dosewise eval` give them to
    # the guard). Without them a label's brand ("therapy with LIPITOR should be limited to 20 mg"
    # after a list of co-medications) names no known drug, and its dose reads as another's.
    passages = guard_passages(result)
    verdict = check_answer(shown_body(result), passages, None, load_limits(), result.drug)
    assert verdict.passed, [(v.claim.text, v.status.value, v.reason) for v in verdict.failed]


@pytest.fixture(scope="module")
def label_store(
    embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[StoreConfig, Path, IngestReport]:
    data = tmp_path_factory.mktemp("labels-e2e")
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="labels")
    report = run_ingest(
        [FIXTURE_CORPUS],
        cfg,
        embedder,
        chunk_size=900,
        data_dir=data,
        progress=False,
        labels=[EXAMPLIX, PLACEBRIN],
    )
    return cfg, data, report


@pytest.fixture(scope="module")
def assistant(label_store: tuple[StoreConfig, Path, IngestReport], embedder: Any) -> Assistant:
    cfg, data, _ = label_store
    return Assistant(open_index(cfg, embedder), embedder, load_limits(), data_dir=data)


def test_labels_are_indexed_together_with_the_corpus_not_instead_of_it(
    label_store: tuple[StoreConfig, Path, IngestReport], embedder: Any
) -> None:
    cfg, _, report = label_store
    assert report.skipped == ()
    docs = {c.doc_id for c in open_index(cfg, embedder).all_chunks()}
    corpus_ids, _ = load_corpus([FIXTURE_CORPUS])
    assert {d.doc_id for d in corpus_ids} < docs
    assert sum(d.startswith("label-") for d in docs) == 2


def test_label_chunks_carry_kind_title_and_brand_names_through_the_store(
    label_store: tuple[StoreConfig, Path, IngestReport], embedder: Any
) -> None:
    cfg, _, _ = label_store
    every = open_index(cfg, embedder).all_chunks()
    chunks = [c for c in every if c.doc_kind == "label" and "examplinib" in c.drugs]
    assert chunks
    assert {c.brand_names for c in chunks} == {("examplix",)}
    assert all("examplinib" in c.drugs for c in chunks)
    assert all(c.title.startswith("Label: EXAMPLIX") for c in chunks)
    assert any(c.section_path[:1] == (DOSING,) for c in chunks)
    # Corpus articles stay brand-free, so their stored fingerprints did not change.
    assert all(c.brand_names == () for c in every if c.doc_kind != "label")


def test_brand_name_from_label_metadata_resolves_to_its_generic(assistant: Assistant) -> None:
    facets = assistant.vocabulary.facets("How much Examplix should a patient start on?")
    assert facets.drugs == ("examplinib",)
    assert "examplix" in assistant.vocabulary.aliases_of("examplinib")


@pytest.mark.parametrize(
    "question",
    [
        "What is the recommended dose of examplinib?",
        "What is the starting dose of Examplix?",
    ],
)
def test_dosing_question_about_a_label_drug_is_answered_from_its_dosing_section(
    assistant: Assistant, question: str
) -> None:
    result = assistant.ask(question)
    assert result.status == "verified", (result.status, result.answer)
    assert result.drug == "examplinib"
    dosing = [
        c for c in result.citations if c.doc_kind == "label" and c.section.split(" > ")[0] == DOSING
    ]
    assert dosing, [(c.title, c.section, c.doc_kind) for c in result.citations]
    assert all(c.title.startswith("Label: EXAMPLIX") for c in dosing)
    # The label's recommended dose is shown and the guard tied it to the dosing citation.
    dosing_ns = {c.n for c in dosing}
    recommended = [c for c in result.claims if "100 mg" in c.text and c.citation_n in dosing_ns]
    assert recommended and all(c.status == "supported" for c in recommended), result.claims
    assert_no_unverified_number(result)


def test_old_layout_label_question_retrieves_its_dosing_section_and_shows_no_unverified_number(
    assistant: Assistant,
) -> None:
    result = assistant.ask("What is the usual dose of Placebrin?")
    assert result.drug == "placebrinol"  # brand -> active moiety, not the salt name
    top = result.retrieved[0]
    assert top.metadata.get("doc_kind") == "label" and top.section == DOSING, top
    assert_no_unverified_number(result)


def test_old_layout_label_answer_cites_its_dosing_section(assistant: Assistant) -> None:
    result = assistant.ask("What is the usual dose of Placebrin?")
    assert result.status == "verified"
    dosing = {c.n for c in result.citations if c.doc_kind == "label" and c.section == DOSING}
    # The unmarked first sentence of the paragraph ("The usual dose is 10 mg ...") is shown,
    # cited by the label, and its figure went through the guard.
    assert "usual dose is 10 mg" in result.summary, result.answer
    assert any(
        "10 mg" in c.text and c.citation_n in dosing and c.status == "supported"
        for c in result.claims
    ), result.answer
    assert_no_unverified_number(result)


def test_a_zip_named_among_the_corpus_paths_is_read_as_labels(tmp_path: Path) -> None:
    archive = tmp_path / "formulary.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(EXAMPLIX, "spl/examplix.xml")
        zf.write(PLACEBRIN, "spl/placebrin.xml")
    docs, skipped = load_corpus([FIXTURE_CORPUS, archive])
    assert skipped == []
    labels = sorted(d.title for d in docs if d.doc_kind == "label")
    assert len(labels) == 2 and all(t.startswith("Label: ") for t in labels)
    assert any(d.path.endswith("formulary.zip!spl/examplix.xml") for d in docs)


def test_the_same_label_named_twice_is_indexed_once_but_a_different_clash_is_reported(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, corpus)
    shutil.copy(EXAMPLIX, corpus / "examplix.xml")
    docs, skipped = load_corpus([corpus], labels=[EXAMPLIX])
    assert skipped == []
    assert sum(d.doc_kind == "label" for d in docs) == 1

    changed = tmp_path / "changed.xml"
    original = EXAMPLIX.read_text(encoding="utf-8")
    changed.write_text(original.replace("100 mg orally", "90 mg orally"), encoding="utf-8")
    docs, skipped = load_corpus([corpus], labels=[changed])
    # Neither claimant of the shared id may silently win: both are reported, neither loaded.
    assert sorted(s.path for s in skipped) == sorted([str(changed), str(corpus / "examplix.xml")])
    assert all("duplicate document id" in s.reason for s in skipped)
    assert not any(d.doc_kind == "label" for d in docs)


# --- real openFDA labels ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lipitor_assistant(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    label = OPENFDA / "lipitor-orig.xml"
    if not label.is_file():
        pytest.skip("no shared openFDA labels")
    # Only the Lipitor label is embedded: all six real labels are ~650 chunks, minutes on 2 cores.
    data = tmp_path_factory.mktemp("openfda")
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="openfda")
    report = run_ingest(
        [FIXTURE_CORPUS],
        cfg,
        embedder,
        chunk_size=900,
        data_dir=data,
        progress=False,
        labels=[label],
    )
    assert report.skipped == ()
    return Assistant(open_index(cfg, embedder), embedder, load_limits(), data_dir=data)


@pytest.mark.slow
@pytest.mark.parametrize(
    "question",
    [
        "What is the recommended starting dose of atorvastatin?",
        "What is the recommended starting dose of Lipitor?",
    ],
)
def test_real_label_question_retrieves_its_dosage_and_administration_chunk(
    lipitor_assistant: Assistant, question: str
) -> None:
    result = lipitor_assistant.ask(question)
    assert result.drug == "atorvastatin"
    top = result.retrieved[:5]
    assert any(
        r.metadata.get("doc_kind") == "label"
        and r.section.split(" > ")[0] == DOSING
        and "starting dose" in r.text
        for r in top
    ), [(r.title, r.section) for r in top]
    assert_no_unverified_number(result)


@pytest.mark.slow
@pytest.mark.parametrize("question", ["What is the recommended starting dose of Lipitor?"])
def test_real_label_answer_shows_the_starting_dose_from_its_dosing_section(
    lipitor_assistant: Assistant, question: str
) -> None:
    # The label lists "atorvastatin calcium" before "atorvastatin", and marks only the end of
    # the paragraph whose first sentence gives the starting dose.
    result = lipitor_assistant.ask(question)
    assert result.status == "verified", result.answer
    dosing = {c.n for c in result.citations if c.section.split(" > ")[0] == DOSING}
    assert "starting dose" in result.summary and "10 or 20 mg" in result.summary, result.answer
    assert any(
        "20 mg" in c.text and c.citation_n in dosing and c.status == "supported"
        for c in result.claims
    ), result.claims
    assert_no_unverified_number(result)
