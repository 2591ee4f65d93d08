"""Ranking remembers what it reads of each sentence per asked drug and indication: a later
question must still see its own drug, its own indication and the document as it is now."""

from __future__ import annotations

from assistant.compose import clear_memos, compose_answer, extract_statements, rank
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from ingest.model import SourceRef

SOURCE = SourceRef(id="src-1", reference="Source 1, Dosing", kind="guideline")


def chunk(
    text: str, *, drugs: tuple[str, ...], indications: tuple[str, ...] = ()
) -> RetrievedChunk:
    title = "Dosing article"
    return RetrievedChunk(
        chunk_id="c1",
        doc_id="article-1",
        title=title,
        section="Dosing",
        text=text,
        score=1.0,
        metadata={
            "doc_kind": "article",
            "drugs": drugs,
            "indications": indications,
            "sources": (SOURCE,),
            "source_ids": (SOURCE.id,),
            "section_path": (title, "Dosing"),
        },
    )


def ranked_texts(question: str, doc: RetrievedChunk, vocab: Vocabulary) -> list[str]:
    facets = vocab.facets(question)
    return [s.statement.text for s in rank(extract_statements([doc]), facets, vocab, question)]


VOCAB = Vocabulary.from_names(["placebrinol", "dummexin"])
LINE = "Placebrinol 20 mg twice daily [@src-1]."
TEXT = "Placebrinol 20 mg twice daily."


def test_a_sentence_about_one_drug_is_not_ranked_for_the_other_asked_after_it() -> None:
    doc = chunk(LINE, drugs=("placebrinol", "dummexin"))
    assert ranked_texts("dose of dummexin?", doc, VOCAB) == []
    assert ranked_texts("dose of placebrinol?", doc, VOCAB) == [TEXT]
    assert ranked_texts("dose of dummexin?", doc, VOCAB) == []


def test_a_document_whose_drugs_changed_is_read_again() -> None:
    # The same chunk id and sentence, re-imported as another drug's document.
    imported = {"doc_kind": "text", "sources": (SOURCE,)}
    ours = chunk("Take 20 mg twice daily [@src-1].", drugs=("placebrinol",))
    ours.metadata.update(imported)
    theirs = chunk("Take 20 mg twice daily [@src-1].", drugs=("dummexin",))
    theirs.metadata.update(imported)
    assert ranked_texts("dose of placebrinol?", ours, VOCAB) == ["Take 20 mg twice daily."]
    assert ranked_texts("dose of placebrinol?", theirs, VOCAB) == []


def test_each_indication_asked_gets_its_own_fit() -> None:
    vocab = Vocabulary.from_names(["placebrinol"], indications=["gout", "lupus"])
    doc = chunk(LINE, drugs=("placebrinol",), indications=("gout",))
    lupus = rank(extract_statements([doc]), vocab.facets("placebrinol for lupus?"), vocab)
    gout = rank(extract_statements([doc]), vocab.facets("placebrinol for gout?"), vocab)
    assert [s.indication_fit for s in gout] == ["match"]
    assert [s.indication_fit for s in lupus] == ["weak"]


def test_a_chunk_read_again_with_new_text_gets_its_own_doses() -> None:
    # The same chunk id after an edit of its document: nothing of the old text carries over.
    before = extract_statements(
        [chunk("Placebrinol 20 mg twice daily [@src-1].", drugs=("placebrinol",))]
    )
    after = extract_statements(
        [chunk("Placebrinol 40 mg once daily [@src-1].", drugs=("placebrinol",))]
    )
    assert [q.quantity.low for st in before for q in st.typed()] == [20]
    assert [q.quantity.low for st in after for q in st.typed()] == [40]
    assert before[0].dose_facts != after[0].dose_facts


def test_forgetting_the_memos_changes_no_answer() -> None:
    doc = chunk(LINE, drugs=("placebrinol", "dummexin"))
    question = "dose of placebrinol?"
    warm = compose_answer(question, VOCAB.facets(question), [doc], VOCAB)
    clear_memos()
    cold = compose_answer(question, VOCAB.facets(question), [doc], VOCAB)
    assert warm is not None and cold is not None
    assert (warm.body, warm.references) == (cold.body, cold.references)


def test_another_vocabulary_reads_the_sentences_again() -> None:
    # After an ingest the vocabulary may know a drug it did not: "Dummexin 20 mg" in a
    # placebrinol document is then another drug's line.
    doc = chunk("Dummexin 20 mg twice daily [@src-1].", drugs=("placebrinol",))
    knows = Vocabulary.from_names(["placebrinol", "dummexin"])
    not_yet = Vocabulary.from_names(["placebrinol"])
    question = "dose of placebrinol?"
    for _ in range(2):
        assert ranked_texts(question, doc, not_yet) == ["Dummexin 20 mg twice daily."]
        assert ranked_texts(question, doc, knows) == []
