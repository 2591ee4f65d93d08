"""The labelled real-LLM draft set (evals/llm_drafts.jsonl) and how evals/drafts.py scores it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.drafts import (
    DEFAULT_DRAFTS,
    DEFAULT_PARAPHRASES,
    load_drafts,
    score_drafts,
    strip_citations,
    summarise,
)
from evals.run import _drafts
from guardrails import load_limits

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
PASSAGE = {
    "n": 1,
    "doc_id": "aza-lupus",
    "section": "Dosing",
    "text": "Azathioprine LN maintenance after induction: 2 mg/kg/day.",
    "drugs": ["azathioprine"],
}


def _row(draft: str, numbers: list[tuple[str, str, str]], rid: str = "q|m|0.0") -> dict:
    """A set line; ``numbers`` are (text, label, category), found in the marker-free draft."""
    answer = strip_citations(draft)
    out, pos = [], 0
    for text, label, category in numbers:
        start = answer.index(text, pos)
        pos = start + len(text)
        out.append({"start": start, "end": pos, "text": text, "label": label,
                    "category": category, "why": ""})  # fmt: skip
    return {"id": rid, "question_id": "q", "question": "aza LN maintenance dose?",
            "drug": "azathioprine", "model": "m", "temperature": 0.0, "passages": [PASSAGE],
            "draft": draft, "numbers": out}  # fmt: skip


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "drafts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_scores_false_blocks_and_catches(tmp_path: Path) -> None:
    rows = [
        _row("Maintenance is 2 mg/kg/day [1].", [("2 mg/kg/day", "pass", "correct")], "ok|m|0"),
        _row("Maintenance is 5 mg/kg/day [1].", [("5 mg/kg/day", "block", "wrong")], "bad|m|0"),
        # Labelled correct, but the guard cannot find 2 mg/kg/week: a false block by definition.
        _row("Maintenance is 2 mg/kg/week.", [("2 mg/kg/week", "pass", "correct")], "fb|m|0"),
    ]
    s = summarise(score_drafts(load_drafts(_write(tmp_path, rows)), load_limits()))
    assert (s["drafts"], s["numbers"], s["correct_drafts"], s["false_blocks"]) == (3, 3, 2, 1)
    assert s["catch_rate"] == 1.0 and s["by_category"]["wrong"]["caught"] == 1
    assert [e["id"] for e in s["false_block_examples"]] == ["fb|m|0"]


def test_citation_markers_are_removed_before_the_guard_reads_the_draft() -> None:
    assert strip_citations("2 mg/kg/day [1]. Then [2, 3] 5 mg [1–2].") == "2 mg/kg/day. Then 5 mg."


def test_a_label_off_its_span_is_refused(tmp_path: Path) -> None:
    row = _row("Maintenance is 2 mg/kg/day [1].", [("2 mg/kg/day", "pass", "correct")])
    row["numbers"][0]["start"] += 1
    with pytest.raises(ValueError, match="does not match"):
        load_drafts(_write(tmp_path, [row]))


def test_eval_reports_a_broken_set_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "drafts.jsonl"
    path.write_text("{not json\n", encoding="utf-8")
    got = _drafts(path, load_limits())
    assert got is not None and "drafts.jsonl:1" in got["error"]
    assert _drafts(tmp_path / "absent.jsonl", load_limits()) is None


def test_packaged_set_has_the_size_the_issue_asks_for() -> None:
    drafts = load_drafts(DEFAULT_DRAFTS)
    assert len(drafts) >= 200
    assert len({d.model for d in drafts}) >= 2
    assert len({d.temperature for d in drafts}) >= 2
    assert len({d.question_id for d in drafts}) >= 40
    labels = [n for d in drafts for n in d.numbers]
    assert {n.label for n in labels} == {"pass", "block"}
    assert all(n.why for n in labels if n.label == "block")


def test_packaged_passages_are_our_corpus_text() -> None:
    """Stored passages are chunks of corpus/ as it stood when the drafts were written (our own
    words: articles edited since keep their id), never text from ../shared."""
    from corpus_lint import SHARED_DIR, shared_ngrams, word_ngrams

    corpus = {p.stem for p in CORPUS.glob("*.md")}
    grams = shared_ngrams(SHARED_DIR) if SHARED_DIR.is_dir() else {}
    for d in load_drafts(DEFAULT_DRAFTS):
        for p in d.passages:
            assert p.doc_id in corpus, p.doc_id
            copied = word_ngrams(p.text) & grams.keys()
            assert not copied, (d.id, p.n, sorted(copied)[:1])


def test_hand_written_paraphrases_pass_and_their_wrong_figures_are_blocked() -> None:
    outcomes = score_drafts(load_drafts(DEFAULT_PARAPHRASES), load_limits())
    assert len(outcomes) >= 20
    for o in outcomes:
        if o.draft.correct:
            assert o.passed, (o.draft.id, o.wrongly_failed, o.unlabelled_failed)
        else:
            assert all(o.caught), o.draft.id


def test_report_rows_name_the_set_and_its_rates(tmp_path: Path) -> None:
    from evals.report import _draft_rows

    rows = [
        _row("Maintenance is 2 mg/kg/day [1].", [("2 mg/kg/day", "pass", "correct")], "ok|m|0"),
        _row("Maintenance is 5 mg/kg/day [1].", [("5 mg/kg/day", "block", "wrong")], "bad|m|0"),
    ]
    summary = _drafts(_write(tmp_path, rows), load_limits())
    got = {label: value for label, value, _ in _draft_rows(summary)}
    assert (
        got["Guard false-block rate, real LLM drafts (1 correct of 2 drafts, 1 models)"] == "0.0 %"
    )
    assert got["Guard catch rate, real LLM drafts (1 wrong numbers)"] == "100.0 %"
    assert _draft_rows(None) == []
