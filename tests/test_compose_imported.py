"""The composer on imported documents (text, HTML, PDF without front matter): a label's dosing
section states each dose once, so a line is left out only when it repeats a fact already shown,
never because another line shares one of its figures."""

from __future__ import annotations

from assistant.compose import Composition, compose_answer, extract_statements, rank
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from guardrails import check_answer, load_limits
from ingest.model import SourceRef

DOC_SOURCE = SourceRef(
    id="placebrinol-1a2b3c4d",
    reference="placebrinol-1a2b3c4d.txt, local document",
    kind="local document",
)


def imported(
    text: str,
    *,
    section: str = "DOSAGE AND ADMINISTRATION",
    chunk_id: str = "c1",
    drugs: tuple[str, ...] = ("placebrinol",),
) -> RetrievedChunk:
    title = "placebrinol — prescribing information"
    return RetrievedChunk(
        chunk_id=chunk_id,
        doc_id="placebrinol-1a2b3c4d",
        title=title,
        section=section,
        text=text,
        score=1.0,
        metadata={
            "doc_kind": "text",
            "drugs": drugs,
            "sources": (DOC_SOURCE,),
            "section_path": (title, section),
        },
    )


def _compose(question: str, *chunks: RetrievedChunk) -> Composition:
    vocab = Vocabulary.from_names(["placebrinol"])
    composition = compose_answer(question, vocab.facets(question), list(chunks), vocab)
    assert composition is not None
    verdict = check_answer(
        composition.body, composition.passages, None, load_limits(), "placebrinol"
    )
    assert verdict.passed, [(v.claim.text, v.reason) for v in verdict.failed]
    return composition


def test_a_usual_and_a_renal_dose_of_the_same_strength_are_both_shown() -> None:
    # "20 mg once daily" for the kidneys is another fact than the usual "20 mg twice daily".
    text = (
        "The recommended dose of placebrinol is 20 mg twice daily.\n"
        "Take each dose at least one hour before a meal.\n"
        "Dose adjustment is advised in some patients.\n"
        "Swallow the tablets whole with water.\n"
        "For patients with severe renal impairment (creatinine clearance below 30 mL/min), "
        "the recommended dose is 20 mg once daily at bedtime.\n"
    )
    body = _compose("What is the dose of placebrinol?", imported(text)).body
    assert "20 mg twice daily" in body, body
    assert "20 mg once daily at bedtime" in body, body


def test_lines_worded_alike_for_two_indications_are_two_facts() -> None:
    # Each indication's line reads the same but for its figures: neither repeats the other.
    text = (
        "Placebrinol is supplied as 25 mg and 50 mg tablets.\n"
        "Osteoarthritis: the recommended dosage is 100 to 150 mg/day in divided doses.\n"
        "Rheumatoid arthritis: the recommended dosage is 150 to 200 mg/day in divided doses.\n"
        "Gout: the recommended dosage is 200 to 300 mg/day in divided doses.\n"
    )
    body = _compose("What is the dose of placebrinol?", imported(text)).body
    for dose in ("100 to 150 mg/day", "150 to 200 mg/day", "200 to 300 mg/day"):
        assert dose in body, body


def test_a_document_with_only_pharmacology_answers_from_all_of_it() -> None:
    # No dosing section at all: the section the answer comes from gives its lines, not one.
    text = (
        "Single oral doses of 30 to 120 mg of placebrinol reach peak plasma levels in 2 hours.\n"
        "As the daily dose of placebrinol rises from 120 mg to 240 mg, exposure rises more "
        "than in proportion.\n"
        "From 240 mg to 360 mg daily, exposure rises 1.8 times.\n"
    )
    doc = imported(text, section="CLINICAL PHARMACOLOGY")
    body = _compose("How strong is 360 mg of placebrinol?", doc).body
    for dose in ("30 to 120 mg", "120 mg to 240 mg", "240 mg to 360 mg daily"):
        assert dose in body, body


def test_a_combination_document_naming_one_ingredient_is_about_the_product() -> None:
    # A combination's label gives figures per ingredient; they answer for the product.
    text = (
        "Single doses of placebrinol/naloxone tablets reached a peak effect at 8 mg.\n"
        "Higher doses of placebrinol (8 to 32 mg) acted longer than the lower doses.\n"
    )
    doc = imported(
        text, section="DOSAGE AND ADMINISTRATION", drugs=("placebrinol/naloxone", "placebrinol")
    )
    vocab = Vocabulary.from_names(["placebrinol/naloxone", "placebrinol"])
    question = "What doses of placebrinol/naloxone are used?"
    facets = vocab.facets(question)
    assert facets.drug == "placebrinol/naloxone"
    composition = compose_answer(question, facets, [doc], vocab)
    assert composition is not None
    assert "8 to 32 mg" in composition.body, composition.body
    verdict = check_answer(
        composition.body, composition.passages, None, load_limits(), "placebrinol/naloxone"
    )
    assert verdict.passed, [(v.claim.text, v.reason) for v in verdict.failed]


def test_a_labels_general_doses_come_before_lines_without_a_dose() -> None:
    # The question names an indication: its own lines come first, but a label's doses for no
    # indication in particular still outrank the indication's lines that give no dose.
    guideline = imported(
        "Placebrinol in rheumatoid arthritis: start at 10 mg/week.\n"
        "Placebrinol in rheumatoid arthritis: give folic acid alongside.\n"
        "Placebrinol in rheumatoid arthritis: check blood counts before starting.\n"
        "Placebrinol in rheumatoid arthritis: avoid live vaccines during treatment.\n",
        chunk_id="g1",
    )
    label = imported(
        "The weekly dose is 10 to 25 mg per week until a response.\n"
        "Doses may be adjusted; 30 mg/week should not ordinarily be exceeded.\n",
        chunk_id="l1",
    )
    vocab = Vocabulary.from_names(["placebrinol"], ["rheumatoid arthritis"])
    question = "What is the placebrinol dose for rheumatoid arthritis?"
    facets = vocab.facets(question)
    assert facets.indications
    composition = compose_answer(question, facets, [guideline, label], vocab)
    assert composition is not None
    assert "10 to 25 mg per week" in composition.body, composition.body
    assert "30 mg/week" in composition.body, composition.body


def test_a_weight_band_does_not_make_a_dose_line_read_as_an_outcome() -> None:
    # "For patients 10 to 25 kg" says whom the dose is for; the line ranks as the dose it gives.
    banded = "For children 10 to 25 kg the recommended dose is 50 mg twice daily."
    plain = "For children the recommended dose is 50 mg twice daily."
    doc = imported(f"{banded}\n{plain}\n")
    vocab = Vocabulary.from_names(["placebrinol"])
    question = "What is the dose of placebrinol?"
    ranked = rank(extract_statements([doc]), vocab.facets(question), vocab, question)
    score = {s.statement.text: s for s in ranked}
    assert score[banded].score == score[plain].score, (score[banded].reasons, score[plain].reasons)


def test_a_labels_cross_references_are_not_shown_and_the_guard_still_passes() -> None:
    text = (
        "The recommended dose of placebrinol is 20 mg twice daily.\n"
        "For severe renal impairment the dose is 20 mg once daily at bedtime [see Use in "
        "Specific Populations (8.6) and Clinical Pharmacology (12.3)].\n"
    )
    body = _compose("What is the dose of placebrinol?", imported(text)).body
    assert "20 mg once daily at bedtime." in body, body
    assert "8.6" not in body and "12.3" not in body, body
