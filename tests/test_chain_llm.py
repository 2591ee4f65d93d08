"""The optional LLM path with LangChain fake chat models: a grounded draft passes the guard, an
invented dose is withheld and replaced by the deterministic answer, failures fall back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage
from test_chain_tiny_index import LUPUS_Q, build_index

from assistant.chain import Assistant
from assistant.model import AnswerResult
from guardrails import load_limits


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[Any, Path]:
    return build_index(tmp_path_factory.mktemp("tiny-llm"), embedder)


def _assistant(tiny: tuple[Any, Path], embedder: Any, llm: Any, **kw: Any) -> Assistant:
    index, data = tiny
    return Assistant(index, embedder, load_limits(), llm=llm, data_dir=data, **kw)


def _passage_with(tiny: tuple[Any, Path], embedder: Any, needle: str) -> int:
    """The [n] the LLM prompt gives to the chunk containing ``needle`` (retrieval is
    deterministic, so a fresh assistant numbers passages the same way)."""
    probe = _assistant(tiny, embedder, None)
    state = probe._retrieve(probe._prepare(_state(LUPUS_Q)))
    for p in probe._llm_passages(state):
        if needle in p.text:
            return p.n
    raise AssertionError(f"{needle!r} not among the passages")


def _state(question: str) -> Any:
    import time

    from assistant.chain import _State

    return _State(question, (), None, "clinician", {}, time.perf_counter())


def test_grounded_llm_answer_passes_the_guard(tiny: tuple[Any, Path], embedder: Any) -> None:
    n = _passage_with(tiny, embedder, "maintenance: 2 mg/kg/day")
    draft = f"**Azathioprine lupus nephritis maintenance: 2 mg/kg/day [{n}].**"
    result = _assistant(tiny, embedder, FakeListChatModel(responses=[draft])).ask(LUPUS_Q)
    assert result.status == "verified"
    assert result.backend == "FakeListChatModel"
    assert result.answer.startswith(draft)
    assert [c.status for c in result.claims] == ["supported"]
    assert [c.n for c in result.citations] == [n]
    assert not result.note


def test_llm_that_invents_a_dose_is_withheld_and_replaced(
    tiny: tuple[Any, Path], embedder: Any
) -> None:
    draft = "**Azathioprine for lupus: 7 mg/kg/day [1], usually 500 mg/day [1].**"
    result = _assistant(tiny, embedder, FakeListChatModel(responses=[draft])).ask(LUPUS_Q)
    assert result.status == "verified"
    assert result.backend == "composer"
    assert "withheld" in result.note
    assert "7 mg/kg/day" in result.note and "500 mg/day" in result.note
    body = result.answer.split("\n\n", 1)[1]  # after the visible note
    assert "7 mg/kg/day" not in body and "500" not in body
    assert "2 mg/kg/day" in body
    assert all(c.status in ("supported", "derived") for c in result.claims)


def test_llm_methotrexate_daily_style_mistake_is_blocked(
    tiny: tuple[Any, Path], embedder: Any
) -> None:
    # Right numbers, wrong frequency: the weekly source does not support a daily dose.
    n = _passage_with_question(tiny, embedder, "What is the methotrexate dose in RA?", "7.5–20 mg")
    draft = f"Methotrexate for RA: 7.5–20 mg daily [{n}]."
    asst = _assistant(tiny, embedder, FakeListChatModel(responses=[draft]))
    result = asst.ask("What is the methotrexate dose in RA?")
    assert result.backend == "composer"
    assert "withheld" in result.note
    assert "daily" not in result.answer.split("\n\n", 1)[1]


def _passage_with_question(tiny: tuple[Any, Path], embedder: Any, q: str, needle: str) -> int:
    probe = _assistant(tiny, embedder, None)
    state = probe._retrieve(probe._prepare(_state(q)))
    return next(p.n for p in probe._llm_passages(state) if needle in p.text)


def test_llm_answer_without_citations_falls_back(tiny: tuple[Any, Path], embedder: Any) -> None:
    llm = FakeListChatModel(responses=["Sure! Azathioprine is a great drug."])
    result = _assistant(tiny, embedder, llm).ask(LUPUS_Q)
    assert result.backend == "composer" and result.status == "verified"
    assert "not usable" in result.note


def test_llm_timeout_falls_back_to_the_deterministic_answer(
    tiny: tuple[Any, Path], embedder: Any
) -> None:
    llm = FakeListChatModel(responses=["too late [1]."], sleep=3)
    result = _assistant(tiny, embedder, llm, llm_timeout_s=0.3).ask(LUPUS_Q)
    assert result.backend == "composer" and result.status == "verified"
    assert "did not answer within" in result.note


def test_llm_error_falls_back_to_the_deterministic_answer(
    tiny: tuple[Any, Path], embedder: Any
) -> None:
    llm = GenericFakeChatModel(messages=iter([]))  # exhausted: raises on first call
    result = _assistant(tiny, embedder, llm).ask(LUPUS_Q)
    assert result.backend == "composer" and result.status == "verified"
    assert "model failed" in result.note


def test_stream_yields_only_verified_sentences_then_the_result(
    tiny: tuple[Any, Path], embedder: Any
) -> None:
    n = _passage_with(tiny, embedder, "maintenance: 2 mg/kg/day")
    text = f"Azathioprine lupus nephritis maintenance: 2 mg/kg/day [{n}]. It is taken once a day [{n}]."
    llm = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))
    parts = list(_assistant(tiny, embedder, llm).stream(LUPUS_Q))
    final = parts[-1]
    assert isinstance(final, AnswerResult) and final.status == "verified"
    pieces = [p for p in parts[:-1] if isinstance(p, str)]
    assert "".join(pieces).startswith("Azathioprine lupus nephritis maintenance: 2 mg/kg/day")


def test_stream_stops_before_an_invented_number(tiny: tuple[Any, Path], embedder: Any) -> None:
    n = _passage_with(tiny, embedder, "maintenance: 2 mg/kg/day")
    text = f"Maintenance: 2 mg/kg/day [{n}]. Some use 9 mg/kg/day [{n}]. Fine [{n}]."
    llm = GenericFakeChatModel(messages=iter([AIMessage(content=text)]))
    parts = list(_assistant(tiny, embedder, llm).stream(LUPUS_Q))
    streamed = "".join(p for p in parts[:-1] if isinstance(p, str))
    assert "9 mg/kg/day" not in streamed
    final = parts[-1]
    assert isinstance(final, AnswerResult) and final.backend == "composer"
    assert "9 mg/kg/day" in final.note
    assert not re.search(r"9 mg/kg/day", final.answer.split("\n\n", 1)[1])
