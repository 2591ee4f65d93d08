"""The composer remembers what it reads per sentence and per chunk text (units, figures, wording,
drug and topic matches) across answers: an answer must not depend on what was composed before it.
Each test composes in one order, forgets every remembered value, and composes again in another."""

from __future__ import annotations

from typing import Any

import assistant.compose as compose
import assistant.vocabulary as vocabulary
from assistant.compose import compose_answer
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from ingest.model import SourceRef

SOURCES = (SourceRef(id="g1", reference="A guideline.", kind="guideline"),)
AZA = (
    "- Azathioprine LN maintenance: 2 mg/kg/day, typically 100–200 mg/day in adults [@g1].\n"
    "- Mycophenolate may replace it at 1–2 g/day [@g1].\n"
    "- Check blood counts weekly for the first month of azathioprine [@g1].\n"
)
MMF = (
    "- Mycophenolate mofetil LN induction: 2–3 g/day in two doses [@g1].\n"
    "- Azathioprine is the alternative for maintenance at 2 mg/kg/day [@g1].\n"
)
LABEL = "Give 50 mg once daily by mouth. Do not exceed 150 mg per day."
QUESTIONS = (
    ("Azathioprine dose for lupus nephritis?", "azathioprine"),
    ("Mycophenolate dose for lupus nephritis induction?", "mycophenolate"),
    ("How often are blood counts checked on azathioprine?", "azathioprine"),
)


def _chunk(chunk_id: str, text: str, drug: str, *, kind: str = "article") -> RetrievedChunk:
    path = (f"{drug.capitalize()} in lupus", "Dosing", "Lupus nephritis")
    return RetrievedChunk(
        chunk_id=chunk_id, doc_id=chunk_id, title=path[0], section=" > ".join(path[1:]),
        text=text, score=1.0,
        metadata={"drugs": (drug,), "indications": ("lupus nephritis",), "sources": SOURCES,
                  "section_path": path, "review_status": "draft", "doc_kind": kind},
    )  # fmt: skip


CHUNKS = [_chunk("aza", AZA, "azathioprine"), _chunk("mmf", MMF, "mycophenolate")]


def _forget() -> None:
    for module in (compose, vocabulary):
        for value in vars(module).values():
            for fn in (value, getattr(value, "indication_matches", None)):
                if callable(getattr(fn, "cache_clear", None)):
                    fn.cache_clear()  # type: ignore[union-attr]
    vocabulary.clinical.cache_clear()


def _view(comp: Any) -> Any:
    if comp is None:
        return None
    return (
        comp.body,
        comp.references,
        [(c.n, c.chunk.chunk_id, c.source_id, c.sentences) for c in comp.cited],
        [(e.place, e.text, e.reasons) for e in comp.explanations],
    )


def _answers(order: list[int], chunks: list[RetrievedChunk]) -> dict[int, Any]:
    vocab = Vocabulary.from_names(["azathioprine", "mycophenolate"], ["lupus nephritis"])
    out = {}
    for i in order:
        question, _drug = QUESTIONS[i]
        out[i] = _view(compose_answer(question, vocab.facets(question), chunks, vocab))
    return out


def test_an_answer_does_not_depend_on_the_answers_composed_before_it() -> None:
    _forget()
    forward = _answers([0, 1, 2], CHUNKS)
    _forget()
    backward = _answers([2, 1, 0], CHUNKS)
    assert forward == backward
    # Each drug's answer leads with that drug: nothing remembered for one drug leaks.
    assert forward[0][0].startswith("**Azathioprine") and "2 mg/kg/day" in forward[0][0]
    assert forward[1][0].startswith("**Mycophenolate")


def test_the_same_text_reads_by_its_own_chunk_kind() -> None:
    """A label's unmarked sentence is cited by the label itself; the same words in a curated
    article without a marker are uncited, and unusable, whichever was read first."""
    label = _chunk("lbl", LABEL, "azathioprine", kind="label")
    article = _chunk("art", LABEL, "azathioprine")
    for first, second in ((label, article), (article, label)):
        _forget()
        seen = [compose.extract_statements([c]) for c in (first, second)]
        from_label, from_article = seen if first is label else seen[::-1]
        assert [s.text for s in from_label] == [
            "Give 50 mg once daily by mouth.",
            "Do not exceed 150 mg per day.",
        ]
        assert all(s.source_ids == ("g1",) for s in from_label)
        assert from_article == []
