"""A frequency question ("How common is TPMT deficiency?") gets the lines under a frequency
heading, even one whose own words name no frequency ("roughly 0.3% ... and 10% ...")."""

from __future__ import annotations

from typing import Any

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


QUESTION = "How common is TPMT deficiency with azathioprine?"


def _genotype_lines(dose: str = "the dose") -> str:
    # Eight dosing-by-genotype lines that share the question's words: they outrank a frequency
    # line unless its heading counts.
    return "\n".join(
        f"- Azathioprine, TPMT deficiency case {i}: start at {10 * i}% of {dose} [@s1]."
        for i in range(1, 9)
    )


def _compose(chunks: list[Any]) -> Any:
    vocab = Vocabulary.from_names(["azathioprine"])
    composition = compose_answer(QUESTION, vocab.facets(QUESTION), chunks, vocab)
    assert composition is not None
    return composition


def test_line_under_a_population_frequencies_heading_answers_how_common() -> None:
    chunks = [
        chunk("a", (TITLE, "Genotype-guided dosing"), _genotype_lines("the normal dose")),
        chunk(
            "b",
            (TITLE, "Population frequencies"),
            "- TPMT, summary: roughly 0.3% homozygous deficient and 11% intermediate [@s1].",
        ),
    ]
    composition = _compose(chunks)
    assert "roughly 0.3% homozygous deficient and 11% intermediate" in composition.body


def test_a_special_populations_heading_is_not_a_frequency_heading() -> None:
    chunks = [
        chunk("a", (TITLE, "Dosing", "Intermediate metabolizer"), _genotype_lines()),
        chunk(
            "b",
            (TITLE, "Special populations"),
            "- Azathioprine in renal impairment: lower doses may be needed [@s1].",
        ),
    ]
    composition = _compose(chunks)
    first = composition.body.split("\n", 1)[0]
    assert "renal impairment" not in first
