"""The LLM backend registry: lookup by name, clear errors for unknown or missing backends."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from assistant.backends import BACKENDS, LlamaCppChat, get_backend
from assistant.errors import BackendUnavailableError, UnknownBackendError


def test_unknown_backend_name_lists_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError) as err:
        get_backend("gpt-magic")
    assert "gpt-magic" in str(err.value)
    for name in ("ollama", "openai", "llamacpp"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("name", "module", "extra"),
    [
        ("ollama", "langchain_ollama", "ollama"),
        ("openai", "langchain_openai", "openai"),
        ("llamacpp", "llama_cpp", "llamacpp"),
    ],
)
def test_missing_optional_package_names_the_pip_extra(name: str, module: str, extra: str) -> None:
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    with pytest.raises(BackendUnavailableError) as err:
        get_backend(name, model="m", model_path="/nonexistent.gguf")
    assert f"dosewise[{extra}]" in str(err.value)


def test_registry_names_are_case_insensitive() -> None:
    with pytest.raises((BackendUnavailableError, UnknownBackendError)) as err:
        get_backend(" OLLAMA ")
    assert not isinstance(err.value, UnknownBackendError)
    assert set(BACKENDS) == {"ollama", "openai", "llamacpp"}


class _FakeLlama:
    """Stands in for llama_cpp.Llama: records the messages, answers from a script."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if kwargs.get("stream"):
            return iter(
                [
                    {"choices": [{"delta": {"role": "assistant"}}]},
                    {"choices": [{"delta": {"content": "2 mg/kg/day "}}]},
                    {"choices": [{"delta": {"content": "[1]."}}]},
                ]
            )
        return {"choices": [{"message": {"content": "2 mg/kg/day [1]."}}]}


def test_llamacpp_adapter_maps_roles_and_returns_the_completion() -> None:
    fake = _FakeLlama()
    chat = LlamaCppChat(llama=fake, max_tokens=64)
    reply = chat.invoke([("system", "rules"), ("human", "question")])
    assert reply.content == "2 mg/kg/day [1]."
    assert [m["role"] for m in fake.calls[0]["messages"]] == ["system", "user"]
    assert fake.calls[0]["max_tokens"] == 64


def test_llamacpp_adapter_streams_tokens() -> None:
    chat = LlamaCppChat(llama=_FakeLlama())
    assert "".join(str(c.content) for c in chat.stream("q")) == "2 mg/kg/day [1]."


class _FakeLlamaModule:
    """Stands in for the llama_cpp module: records what the backend builds Llama with."""

    def __init__(self) -> None:
        self.kwargs: list[dict[str, Any]] = []

    def Llama(self, **kwargs: Any) -> _FakeLlama:  # noqa: N802 - the real class's name
        self.kwargs.append(kwargs)
        return _FakeLlama()


@pytest.mark.parametrize(("given", "expected"), [("gemma", "gemma"), (" chatml ", "chatml")])
def test_llamacpp_chat_format_reaches_the_model_constructor(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    import assistant.backends as backends

    fake = _FakeLlamaModule()
    monkeypatch.setattr(backends, "_import", lambda *a: fake)
    chat = get_backend("llamacpp", model_path="/models/gemma.gguf", chat_format=given)
    assert fake.kwargs[0]["chat_format"] == expected
    assert fake.kwargs[0]["model_path"] == "/models/gemma.gguf"
    assert isinstance(chat, LlamaCppChat)


@pytest.mark.parametrize("given", [None, "", "  "])
def test_llamacpp_without_chat_format_keeps_the_files_own_template(
    monkeypatch: pytest.MonkeyPatch, given: str | None
) -> None:
    import assistant.backends as backends

    fake = _FakeLlamaModule()
    monkeypatch.setattr(backends, "_import", lambda *a: fake)
    get_backend("llamacpp", model_path="/models/m.gguf", chat_format=given)
    # Left out, llama-cpp reads the template stored in the GGUF file.
    assert "chat_format" not in fake.kwargs[0]


def test_settings_pass_the_chat_format_down_as_a_plain_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from settings import Settings

    monkeypatch.setenv("DOSEWISE_LLAMACPP_CHAT_FORMAT", "gemma")
    assert Settings().llamacpp_chat_format == "gemma"
