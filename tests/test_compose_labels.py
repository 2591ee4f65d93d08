"""The composer on imported label chunks: a label is its own source, so its unmarked sentences
are cited by it (and rendered with their [n], so the guard checks their figures), and a label that
lists a salt before its moiety is still about the moiety. Corpus chunks keep the strict rule."""

from __future__ import annotations

from typing import Any

from assistant.compose import compose_answer, extract_statements, is_label
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from guardrails import check_answer, load_limits
from ingest.model import SourceRef

LABEL_SOURCE = SourceRef(id="label", reference="FDA label: PLACEBRIN. Set ID x.", kind="label")
DOSING_TEXT = (
    "# Dosage and Administration\n\n"
    "Adults: The usual dose is 10 mg by mouth twice daily. The dose may be increased to 20 mg "
    "twice daily. Do not exceed 40 mg per day. [@label]\n\n"
    "Creatinine clearance | Dose\n"
    "10 to 50 mL/min | 10 mg once daily [@label]\n"
)


def chunk(
    text: str,
    *,
    kind: str = "label",
    drugs: tuple[str, ...] = ("placebrinol hydrochloride", "placebrinol"),
    sources: tuple[Any, ...] = (LABEL_SOURCE,),
    chunk_id: str = "c1",
) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=chunk_id,
        doc_id="label-x" if kind == "label" else "article-x",
        title="Label: PLACEBRIN" if kind == "label" else "Article",
        section="Dosage and Administration",
        text=text,
        score=1.0,
        metadata={
            "doc_kind": kind,
            "drugs": drugs,
            "sources": sources,
            "section_path": ("Dosage and Administration",),
        },
    )


def test_unmarked_label_sentences_are_cited_by_the_labels_own_source() -> None:
    statements = extract_statements([chunk(DOSING_TEXT)])
    texts = [s.text for s in statements]
    assert "Adults: The usual dose is 10 mg by mouth twice daily." in texts
    assert "The dose may be increased to 20 mg twice daily." in texts
    assert all(s.source_ids == ("label",) for s in statements)
    # The marker is written into the raw unit, so rendering gives it its [n].
    assert all(s.raw.endswith("[@label]") for s in statements)


def test_a_table_header_row_of_a_label_is_not_a_statement() -> None:
    texts = [s.text for s in extract_statements([chunk(DOSING_TEXT)])]
    assert "Creatinine clearance | Dose" not in texts
    assert "10 to 50 mL/min | 10 mg once daily" in texts


def test_unmarked_sentences_of_a_corpus_article_are_still_never_used() -> None:
    article = chunk(
        DOSING_TEXT.replace("[@label]", "[@kdigo2024]"),
        kind="article",
        sources=(SourceRef(id="kdigo2024", reference="KDIGO 2024"),),
    )
    assert not is_label(article)
    texts = [s.text for s in extract_statements([article])]
    assert "Adults: The usual dose is 10 mg by mouth twice daily." not in texts
    assert "Do not exceed 40 mg per day." in texts


def test_label_listing_the_salt_first_answers_a_question_about_the_moiety() -> None:
    vocab = Vocabulary.from_names(["placebrinol hydrochloride", "placebrinol"])
    facets = vocab.facets("What is the usual dose of placebrinol?")
    assert facets.drug == "placebrinol"
    composition = compose_answer(
        "What is the usual dose of placebrinol?",
        facets,
        [chunk(DOSING_TEXT)],
        vocab,
    )
    assert composition is not None
    assert "usual dose is 10 mg by mouth twice daily. [1]" in composition.body
    # Every figure shown is checked by the guard against the label passage it cites.
    verdict = check_answer(
        composition.body, composition.passages, None, load_limits(), "placebrinol"
    )
    assert verdict.passed, [(v.claim.text, v.reason) for v in verdict.failed]
    assert verdict.claims


def test_a_figure_not_in_the_label_passage_is_still_blocked_by_the_guard() -> None:
    vocab = Vocabulary.from_names(["placebrinol hydrochloride", "placebrinol"])
    question = "What is the usual dose of placebrinol?"
    composition = compose_answer(question, vocab.facets(question), [chunk(DOSING_TEXT)], vocab)
    assert composition is not None
    tampered = composition.body.replace("10 mg by mouth", "15 mg by mouth")
    assert tampered != composition.body
    verdict = check_answer(tampered, composition.passages, None, load_limits(), "placebrinol")
    assert not verdict.passed


def test_unnamed_sentence_of_a_combination_label_is_not_given_to_its_second_drug() -> None:
    combo = chunk(
        "# Dosage and Administration\n\nThe usual starting dose is 5 mg once daily. [@label]\n",
        drugs=("amlodipine besylate", "atorvastatin calcium", "amlodipine", "atorvastatin"),
    )
    vocab = Vocabulary.from_names(["amlodipine", "atorvastatin"])
    asked_second = "What is the usual dose of atorvastatin?"
    assert compose_answer(asked_second, vocab.facets(asked_second), [combo], vocab) is None
    asked_first = "What is the usual dose of amlodipine?"
    composition = compose_answer(asked_first, vocab.facets(asked_first), [combo], vocab)
    assert composition is not None and "5 mg once daily" in composition.body
