"""The composer's answer shape: one direct sentence naming drug and indication, no source names
in the text, an evidence tag per citation, one [n] per passage, a reason for every line; and the
eval's focus and per-answer measures."""

from __future__ import annotations

import re

from assistant.compose import compose_answer
from assistant.model import RetrievedChunk
from assistant.vocabulary import Vocabulary
from assistant.wording import excerpt_view, plain_wording
from evals.metrics import ItemOutcome, _summarise, match_numbers
from ingest.model import SourceRef

SOURCES = (
    SourceRef(id="g1", reference="A guideline.", kind="guideline"),
    SourceRef(id="r1", reference="A secondary summary.", kind="review"),
)
TEXT = (
    "- Azathioprine LN maintenance, secondary summary: 2 mg/kg/day, typically 100–200 mg/day "
    "in adults [@r1].\n"
    "- Azathioprine LN maintenance after induction, KDIGO: 2 mg/kg/day [@g1; @r1].\n"
)


def chunk(chunk_id: str, text: str, group: str = "Lupus nephritis maintenance") -> RetrievedChunk:
    path = ("Azathioprine in lupus", "Dosing", group)
    return RetrievedChunk(
        chunk_id=chunk_id, doc_id="aza", title=path[0], section=" > ".join(path[1:]), text=text,
        score=1.0,
        metadata={"drugs": ("azathioprine",), "indications": ("lupus nephritis",),
                  "sources": SOURCES, "section_path": path, "review_status": "draft"},
    )  # fmt: skip


def _compose(question: str = "Azathioprine dose for lupus nephritis?") -> object:
    vocab = Vocabulary.from_names(["azathioprine"], ["lupus nephritis"])
    comp = compose_answer(question, vocab.facets(question), [chunk("a", TEXT)], vocab)
    assert comp is not None
    return comp


def test_direct_sentence_is_one_bold_sentence_naming_drug_indication_and_citation() -> None:
    comp = _compose()
    first = comp.body.split("\n", 1)[0]  # type: ignore[attr-defined]
    assert first.startswith("**") and first.endswith("**")
    assert "Azathioprine" in first and "lupus nephritis" in first and "maintenance" in first
    assert re.search(r"\[\d+\]", first)


def test_source_names_are_dropped_and_abbreviations_spelled_out_once() -> None:
    body = _compose().body  # type: ignore[attr-defined]
    assert "secondary summary:" not in body and "KDIGO" not in body
    assert body.count("lupus nephritis (LN)") <= 1
    assert "(LN)" in body or "LN" not in body


def test_every_citation_has_an_evidence_tag_with_review_status() -> None:
    body = _compose().body  # type: ignore[attr-defined]
    for m in re.finditer(r"\[\d+\](?! \[)", body):
        raise AssertionError(f"citation without a tag at {m.start()}: {body}")
    assert "[secondary summary · draft]" in body


def test_one_number_per_passage_and_reasons_for_every_line() -> None:
    comp = _compose()
    assert [c.n for c in comp.cited] == [1]  # type: ignore[attr-defined]
    assert set(re.findall(r"\[(\d+)\]", comp.body)) == {"1"}  # type: ignore[attr-defined]
    assert comp.explanations  # type: ignore[attr-defined]
    assert all(e.why and e.text for e in comp.explanations)  # type: ignore[attr-defined]
    assert comp.explanations[0].place == "direct answer"  # type: ignore[attr-defined]
    assert any("indication match" in r for r in comp.explanations[0].reasons)  # type: ignore[attr-defined]


def test_plain_wording_keeps_topic_words_and_figures() -> None:
    assert plain_wording("Methotrexate for RA, US label alternative: 7.5 mg weekly") == (
        "Methotrexate for RA, alternative: 7.5 mg weekly"
    )
    assert plain_wording("KDIGO: total therapy of 36 months") == "Total therapy of 36 months"
    assert plain_wording("No lead here: 5 mg") == "No lead here: 5 mg"


def test_excerpt_view_drops_markers_and_moves_spans() -> None:
    text = "Dose 2 mg/kg/day [@g1]. Then 5 mg [@r1]."
    clean, (spans,) = excerpt_view(text, [(5, 16), (29, 33)])
    assert "[@" not in clean
    assert [clean[a:b] for a, b in spans] == ["2 mg/kg/day", "5 mg"]


def _item(answer: str, expected: tuple[str, ...], **kw: object) -> ItemOutcome:
    nums = match_numbers(expected, answer)
    return ItemOutcome(
        id="x", system="dosewise", tags=(), question="q", status="verified", answer=answer,
        latency_ms=1.0, expected_numbers=expected, numbers_found=nums.found,
        numbers_missing=nums.missing, numbers_shown=nums.shown, numbers_on_target=nums.on_target,
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_focus_is_the_share_of_shown_numbers_the_question_needed() -> None:
    a = _item("2 mg/kg/day [1], and 50 mg [2], and 3 years [3].", ("2 mg/kg/day",),
              sources_shown=3, words_shown=9)  # fmt: skip
    b = _item("1–3 mg/kg/day [1].", ("1–3 mg/kg/day",), sources_shown=1, words_shown=2)
    summary = _summarise([a, b])
    assert summary["key_number_focus"] == 2 / 4
    assert summary["key_number_recall"] == 1.0
    assert summary["sources_per_answer"] == 2.0
    assert summary["words_per_answer"] == 5.5


# -- only what was asked: a question naming a role or a population gets the scoped layout --------
RA_SOURCES = (SourceRef(id="l1", reference="A label.", kind="label"),)
RA_TEXT = (
    "- Azathioprine for RA, starting dose: 1 mg/kg/day, once daily [@l1].\n"
    "- Azathioprine RA ceiling: do not exceed 2.5 mg/kg/day [@l1].\n"
    "- Azathioprine RA maintenance: taper in steps of 0.5 mg/kg/day every 4 weeks [@l1].\n"
    "- Azathioprine for RA in children: 3 mg/kg/day [@l1].\n"
    "- RA monotherapy alternative: prednisone 7.5 mg/day [@l1].\n"
)
SAFETY_TEXT = (
    "- Azathioprine with allopurinol: reduce azathioprine to 25% of the usual dose [@l1].\n"
    "- Azathioprine with allopurinol: reduce the azathioprine dose and watch blood counts [@l1].\n"
)

KIDNEY_TEXT = (
    "- Azathioprine in renal impairment: give half the usual dose when creatinine clearance is "
    "below 50 mL/min [@l1].\n"
)


def _ra_compose(question: str) -> str:
    def ra_chunk(chunk_id: str, text: str, section: str) -> RetrievedChunk:
        path = ("Azathioprine in RA", section)
        return RetrievedChunk(
            chunk_id=chunk_id, doc_id="aza-ra", title=path[0], section=section, text=text,
            score=1.0,
            metadata={"drugs": ("azathioprine", "prednisone"),
                      "indications": ("rheumatoid arthritis",), "sources": RA_SOURCES,
                      "section_path": path, "review_status": "draft"},
        )  # fmt: skip

    vocab = Vocabulary.from_names(["azathioprine", "prednisone"], ["rheumatoid arthritis"])
    chunks = [
        ra_chunk("d", RA_TEXT, "Dosing"),
        ra_chunk("i", SAFETY_TEXT, "Interactions"),
        ra_chunk("k", KIDNEY_TEXT, "Special populations"),
    ]
    comp = compose_answer(question, vocab.facets(question), chunks, vocab)
    assert comp is not None
    return comp.body


def test_a_ceiling_question_shows_the_ceiling_not_the_other_roles() -> None:
    body = _ra_compose("What is the maximum azathioprine dose for RA?")
    assert "2.5 mg/kg/day" in body.split("\n", 1)[0]  # the direct sentence is the ceiling
    for other in ("1 mg/kg/day", "0.5 mg/kg/day", "3 mg/kg/day", "7.5 mg/day"):
        assert other not in body, body


def test_a_starting_dose_question_leaves_out_other_populations_and_drugs() -> None:
    body = _ra_compose("azathioprine starting dose for RA")
    assert "1 mg/kg/day" in body.split("\n", 1)[0]
    assert "3 mg/kg/day" not in body  # children: a population the question did not name
    assert "7.5 mg/day" not in body  # prednisone: another drug's dose


def test_a_population_question_gets_that_populations_line() -> None:
    body = _ra_compose("azathioprine dose for RA in children")
    assert "3 mg/kg/day" in body.split("\n", 1)[0]
    assert "2.5 mg/kg/day" not in body


def test_a_broad_question_keeps_the_regimen_of_every_role() -> None:
    body = _ra_compose("azathioprine dose for RA")
    for figure in ("1 mg/kg/day", "2.5 mg/kg/day", "0.5 mg/kg/day"):
        assert figure in body, body


def test_a_narrow_question_gets_the_safety_topic_without_another_figure() -> None:
    narrow = _ra_compose("What is the maximum azathioprine dose for RA?")
    assert "### Safety" in narrow and "allopurinol" in narrow and "25%" not in narrow
    broad = _ra_compose("azathioprine dose for RA")
    assert "### Safety" in broad and "allopurinol" in broad


def test_a_population_question_leads_with_its_rule_even_without_a_mg_figure() -> None:
    body = _ra_compose("azathioprine dose for RA in renal impairment")
    first = body.split("\n", 1)[0]
    assert "half the usual dose" in first and "50 mL/min" in first
    assert "2.5 mg/kg/day" not in body and "0.5 mg/kg/day" not in body
