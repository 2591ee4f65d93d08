"""A frequency question ("How common is TPMT deficiency?") gets the lines under a frequency
heading, even one whose own words name no frequency ("roughly 0.3% ... and 10% ...")."""

from __future__ import annotations

from assistant.compose import compose_answer
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from ingest.model import SourceRef

TITLE = "Thiopurine pharmacogenomics"
SOURCE = SourceRef(id="s1", reference="A guideline")


def chunk(chunk_id: str, path: tuple[str, ...], text: str) -> RetrievedChunk:
    return RetrievedChunk(
        chunk_id=chunk_id,
        doc_id="pgx",
        title=TITLE,
        section=" > ".join(path[1:]),
        text=text,
        score=1.0,
        metadata={"drugs": ("azathioprine",), "sources": (SOURCE,), "section_path": path},
    )


def test_line_under_a_population_frequencies_heading_answers_how_common() -> None:
    # Eight dosing-by-genotype lines that share the question's words outrank it otherwise.
    genotype = "\n".join(
        f"- Azathioprine, TPMT deficiency case {i}: start at {10 * i}% of the normal dose [@s1]."
        for i in range(1, 9)
    )
    chunks = [
        chunk("a", (TITLE, "Genotype-guided dosing"), genotype),
        chunk(
            "b",
            (TITLE, "Population frequencies"),
            "- TPMT, summary: roughly 0.3% homozygous deficient and 11% intermediate [@s1].",
        ),
    ]
    vocab = Vocabulary.from_names(["azathioprine"])
    question = "How common is TPMT deficiency with azathioprine?"
    composition = compose_answer(question, vocab.facets(question), chunks, vocab)
    assert composition is not None
    assert "roughly 0.3% homozygous deficient and 11% intermediate" in composition.body


def test_a_special_populations_heading_is_not_a_frequency_heading() -> None:
    chunks = [
        chunk(
            "a",
            (TITLE, "Dosing", "Intermediate metabolizer"),
            "\n".join(
                f"- Azathioprine, TPMT deficiency case {i}: start at {10 * i}% of the dose [@s1]."
                for i in range(1, 9)
            ),
        ),
        chunk(
            "b",
            (TITLE, "Special populations"),
            "- Azathioprine in renal impairment: lower doses may be needed [@s1].",
        ),
    ]
    vocab = Vocabulary.from_names(["azathioprine"])
    question = "How common is TPMT deficiency with azathioprine?"
    composition = compose_answer(question, vocab.facets(question), chunks, vocab)
    assert composition is not None
    first = composition.body.split("\n", 1)[0]
    assert "renal impairment" not in first
