"""LangChain ``Embeddings`` over our :class:`ingest.embeddings.Embedder`, for LangChain callers
(the store's ``langchain_vectorstore``, the plain baseline chain). Apart from
:mod:`ingest.embeddings` because LangChain's ``Embeddings`` base imports its runnable config and
callback manager (~0.2 s), which answering a question never needs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from ingest.embeddings import Embedder

__all__ = ["LangChainEmbeddings"]


class LangChainEmbeddings(Embeddings):
    """LangChain ``Embeddings`` backed by the same loaded model."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.encode(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.encode_query(text)
