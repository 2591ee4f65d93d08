"""Optional LLM backends, looked up by name: ``get_backend(name, **opts) -> BaseChatModel``.

Each backend's package is an optional extra and is imported only when that backend is asked
for, so the default install (no LLM) never needs it.

- ``ollama``: ``langchain_ollama.ChatOllama`` (opts: model, base_url, temperature, timeout_s)
- ``openai``: ``langchain_openai.ChatOpenAI`` against any OpenAI-compatible server (vLLM,
  llama.cpp's server...) (opts: model, base_url, api_key, temperature, timeout_s)
- ``llamacpp``: a local GGUF file through ``llama_cpp.Llama`` (opts: model_path, n_ctx,
  max_tokens, temperature, n_threads, chat_format). ``chat_format`` names llama-cpp's prompt
  format ("gemma", "chatml", ...) for a GGUF that carries no chat template: without one
  llama-cpp falls back to llama-2's, which a Gemma model answers with "<<SYS>>" and nothing else.
  Empty: the template in the GGUF file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict

from assistant.errors import BackendUnavailableError, UnknownBackendError

__all__ = ["BACKENDS", "LlamaCppChat", "get_backend"]


def _import(backend: str, module: str, package: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(backend, package, extra) from exc


def _ollama(**opts: Any) -> BaseChatModel:
    mod = _import("ollama", "langchain_ollama", "langchain-ollama", "ollama")
    kwargs: dict[str, Any] = {
        "model": opts.get("model") or "llama3.2",
        "temperature": opts.get("temperature", 0),
    }
    if opts.get("base_url"):
        kwargs["base_url"] = opts["base_url"]
    if opts.get("timeout_s"):
        kwargs["client_kwargs"] = {"timeout": opts["timeout_s"]}
    model: BaseChatModel = mod.ChatOllama(**kwargs)
    return model


def _openai(**opts: Any) -> BaseChatModel:
    mod = _import("openai", "langchain_openai", "langchain-openai", "openai")
    kwargs: dict[str, Any] = {
        "model": opts.get("model") or "local-model",
        "temperature": opts.get("temperature", 0),
        # Local OpenAI-compatible servers accept any key; the client insists on one.
        "api_key": opts.get("api_key") or "not-needed",
    }
    if opts.get("base_url"):
        kwargs["base_url"] = opts["base_url"]
    if opts.get("timeout_s"):
        kwargs["timeout"] = opts["timeout_s"]
    model: BaseChatModel = mod.ChatOpenAI(**kwargs)
    return model


def _llamacpp(**opts: Any) -> BaseChatModel:
    mod = _import("llamacpp", "llama_cpp", "llama-cpp-python", "llamacpp")
    path = opts.get("model_path") or ""
    if not path:
        raise BackendUnavailableError("llamacpp", "a GGUF model file (model_path)", "llamacpp")
    kwargs: dict[str, Any] = {
        "model_path": str(path),
        "n_ctx": int(opts.get("n_ctx", 4096)),
        "n_threads": opts.get("n_threads"),
        "verbose": False,
    }
    chat_format = str(opts.get("chat_format") or "").strip()
    if chat_format:
        kwargs["chat_format"] = chat_format
    llama = mod.Llama(**kwargs)
    return LlamaCppChat(
        llama=llama,
        max_tokens=int(opts.get("max_tokens", 512)),
        temperature=float(opts.get("temperature", 0.0)),
    )


BACKENDS: dict[str, Callable[..., BaseChatModel]] = {
    "ollama": _ollama,
    "openai": _openai,
    "llamacpp": _llamacpp,
}


def get_backend(name: str, **opts: Any) -> BaseChatModel:
    """The chat model registered under ``name``; raises ``UnknownBackendError`` or
    ``BackendUnavailableError`` (with the pip extra to install)."""
    factory = BACKENDS.get((name or "").strip().lower())
    if factory is None:
        raise UnknownBackendError(name, tuple(BACKENDS))
    return factory(**opts)


_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


class LlamaCppChat(BaseChatModel):
    """A small chat adapter over ``llama_cpp.Llama`` (langchain-community is not a dependency)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llama: Any
    max_tokens: int = 512
    temperature: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    def _messages(self, messages: list[BaseMessage]) -> list[dict[str, str]]:
        return [{"role": _ROLES.get(m.type, "user"), "content": str(m.content)} for m in messages]

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        out = self.llama.create_chat_completion(
            messages=self._messages(messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=stop,
        )
        text = out["choices"][0]["message"].get("content") or ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for part in self.llama.create_chat_completion(
            messages=self._messages(messages),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            stop=stop,
            stream=True,
        ):
            delta = part["choices"][0].get("delta", {}).get("content") or ""
            if delta:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta))
                if run_manager is not None:
                    run_manager.on_llm_new_token(delta, chunk=chunk)
                yield chunk
