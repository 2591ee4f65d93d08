"""The retrieval chain: cited, structured, guard-verified answers to dosing questions.

Public surface (imported lazily, so ``import assistant.model`` stays light)::

    Assistant(index, embedder, limits, *, llm=None, k=8, data_dir=None)
        .ask(question, *, history=(), patient=None, audience="clinician") -> AnswerResult
        .stream(...) -> Iterator[str | AnswerResult]
    get_backend(name, **opts) -> BaseChatModel
    AuditLog(path).record(question, patient, result) / .feedback(...) / .read() / .export_markdown(id)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AnswerResult",
    "Assistant",
    "AssistantError",
    "AuditLog",
    "AuditWriteError",
    "BackendUnavailableError",
    "Citation",
    "ClaimView",
    "HybridRetriever",
    "LangChainHybridRetriever",
    "QueryFacets",
    "RetrievedChunk",
    "Turn",
    "UnknownBackendError",
    "Vocabulary",
    "get_backend",
]

_WHERE = {
    "AnswerResult": "assistant.model",
    "Citation": "assistant.model",
    "ClaimView": "assistant.model",
    "RetrievedChunk": "assistant.model",
    "Assistant": "assistant.chain",
    "Turn": "assistant.chain",
    "AuditLog": "assistant.audit",
    "AssistantError": "assistant.errors",
    "AuditWriteError": "assistant.errors",
    "BackendUnavailableError": "assistant.errors",
    "UnknownBackendError": "assistant.errors",
    "get_backend": "assistant.backends",
    "HybridRetriever": "assistant.retrieval",
    "LangChainHybridRetriever": "assistant.langchain_retriever",
    "QueryFacets": "assistant.vocabulary",
    "Vocabulary": "assistant.vocabulary",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'assistant' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
