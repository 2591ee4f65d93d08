"""The hybrid retriever as a LangChain ``BaseRetriever``, for LangChain callers
(``Assistant.as_retriever``, evals). Apart from :mod:`assistant.retrieval` because importing
LangChain's retriever base costs ~0.5 s (its runnables, tracers and langsmith's schemas), which
an ``ask`` without LangChain never needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.vocabulary import Vocabulary

__all__ = ["LangChainHybridRetriever"]


class LangChainHybridRetriever(BaseRetriever):
    """The hybrid retriever as a LangChain ``BaseRetriever`` (documents carry the
    ``RetrievedChunk`` in ``metadata['retrieved']``)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    hybrid: Any
    vocabulary: Callable[[], Vocabulary]
    k: int = 8

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        vocabulary = self.vocabulary()
        retrieval = self.hybrid.retrieve(query, vocabulary.facets(query), vocabulary, k=self.k)
        return [
            LCDocument(
                page_content=rc.text,
                id=rc.chunk_id,
                metadata={
                    "chunk_id": rc.chunk_id,
                    "doc_id": rc.doc_id,
                    "title": rc.title,
                    "section": rc.section,
                    "score": rc.score,
                    "retrieved": rc,
                },
            )
            for rc in retrieval.chunks
        ]
