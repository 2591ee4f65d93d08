"""The comparison system: a plain LangChain RAG chain as most tutorials build it.

Raw corpus files (front matter and all) → ``RecursiveCharacterTextSplitter`` (1000/200) → a
separate Chroma collection embedded with the *same* model as Dosewise → ``similarity_search``
k=4 → the answer is the top passages concatenated. No metadata filters, no hybrid retrieval, no
composer, no guard: what it shows is whatever the passages say.
"""

from __future__ import annotations

import os

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import hashlib  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import chromadb  # noqa: E402
from langchain_chroma import Chroma  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_text_splitters import RecursiveCharacterTextSplitter  # noqa: E402

__all__ = ["Baseline", "BaselineAnswer", "doc_id_from_file"]

_FRONT_MATTER_ID = re.compile(r"\A---\s*\n(?:.*\n)*?id:\s*['\"]?([A-Za-z0-9_.-]+)", re.MULTILINE)


def doc_id_from_file(path: Path, text: str) -> str:
    """The corpus document id of a raw file: its front-matter ``id``, else the file stem, so the
    baseline's hits are scored against the same ids as ours."""
    m = _FRONT_MATTER_ID.match(text)
    return m.group(1) if m else path.stem


@dataclass(frozen=True)
class BaselineAnswer:
    answer: str
    doc_ids: tuple[str, ...]  # one per passage, rank order
    passages: tuple[str, ...]
    latency_ms: float


class Baseline:
    """Build once (``Baseline.build``), then ``ask`` per question."""

    def __init__(self, store: Chroma, *, k: int = 4) -> None:
        self.store = store
        self.k = k

    @classmethod
    def build(
        cls,
        corpus_files: Sequence[Path],
        embeddings: Embeddings,
        persist_dir: Path,
        *,
        k: int = 4,
        chunk_size: int = 1000,
        chunk_overlap: int = 200,
        collection: str = "baseline",
    ) -> Baseline:
        files = sorted(Path(p) for p in corpus_files)
        texts = [p.read_text(encoding="utf-8", errors="replace") for p in files]
        # Reuse a collection built from identical files with identical settings: re-embedding
        # the corpus is most of the baseline's cost and tells nothing new.
        digest = hashlib.sha256(
            json.dumps(
                [
                    chunk_size,
                    chunk_overlap,
                    [[str(p), t] for p, t in zip(files, texts, strict=True)],
                ]
            ).encode()
        ).hexdigest()
        persist_dir.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(
            path=str(persist_dir),
            settings=chromadb.config.Settings(anonymized_telemetry=False),
        )
        try:
            existing = client.get_collection(collection)
            if (existing.metadata or {}).get("corpus_sha256") == digest and existing.count():
                return cls(
                    Chroma(
                        collection_name=collection, embedding_function=embeddings, client=client
                    ),
                    k=k,
                )
        except Exception:  # noqa: BLE001 - absent collection raises a version-dependent error
            pass
        docs: list[Document] = []
        for path, text in zip(files, texts, strict=True):
            docs.append(
                Document(
                    page_content=text,
                    metadata={"source": str(path), "doc_id": doc_id_from_file(path, text)},
                )
            )
        splitter = RecursiveCharacterTextSplitter(
            chunk_size=chunk_size, chunk_overlap=chunk_overlap
        )
        chunks = splitter.split_documents(docs)
        # A fresh collection per build: the baseline never sees a stale corpus.
        try:
            client.delete_collection(collection)
        except Exception:  # noqa: BLE001 - absent collection raises a version-dependent error
            pass
        store = Chroma(
            collection_name=collection,
            embedding_function=embeddings,
            client=client,
            collection_metadata={"corpus_sha256": digest},
        )
        if chunks:
            store.add_documents(chunks, ids=[f"b{i}" for i in range(len(chunks))])
        return cls(store, k=k)

    def ask(self, question: str) -> BaselineAnswer:
        t0 = time.perf_counter()
        hits = self.store.similarity_search(question, k=self.k)
        passages = tuple(h.page_content for h in hits)
        answer = "\n\n".join(passages)
        elapsed = (time.perf_counter() - t0) * 1000.0
        doc_ids = tuple(str(h.metadata.get("doc_id", "")) for h in hits)
        return BaselineAnswer(answer, doc_ids, passages, elapsed)
