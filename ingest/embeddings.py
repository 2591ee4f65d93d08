"""Sentence-transformers embeddings from a local model path, and adapters for LangChain and Chroma.

The model loads lazily on first use (an unchanged re-ingest or ``dosewise stats`` never pays for
it). Chroma only ever sees :class:`ChromaEmbeddingFunction`, so its default embedding function,
which would try to download an ONNX model, never runs.

Queries and batches take different runtimes. A batch (ingest) runs the sentence-transformers
model in torch. A single query runs the same weights exported to ONNX (``export_onnx``) in
onnxruntime with the model's own ``tokenizer.json``: the same vectors (cosine distance under
1e-6) in about half torch's time per question on this 2-core CPU (bench/), and a process that
only answers questions never imports torch (~7 s of a cold start). The export is made locally from the
packaged model, once per model, into ``onnx_dir`` (default ``~/.cache/dosewise/onnx``), at
ingest or at the first query; nothing is downloaded. When the export cannot be made or does not
reproduce torch's vectors, queries stay on torch.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch's OpenMP workers otherwise spin-wait after every encode; on a shared 2-core machine that
# starved Chroma's threads and made one query embedding ~10x slower (bench/: 500 ms vs 55 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hashlib  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any, Literal  # noqa: E402

from chromadb.api.types import Documents, EmbeddingFunction  # noqa: E402
from chromadb.api.types import Embeddings as ChromaEmbeddings  # noqa: E402
from chromadb.utils.embedding_functions import register_embedding_function  # noqa: E402

from ingest.errors import EmbeddingModelError  # noqa: E402

if TYPE_CHECKING:
    from ingest.langchain_embeddings import LangChainEmbeddings

__all__ = [
    "ChromaEmbeddingFunction",
    "DEFAULT_ONNX_DIR",
    "Embedder",
    "LangChainEmbeddings",
    "OnnxQueryEncoder",
    "export_onnx",
    "onnx_model_file",
]

_BATCH_SIZE = 32
DEFAULT_ONNX_DIR = Path.home() / ".cache" / "dosewise" / "onnx"
# Bumped whenever export_onnx writes a different graph, so an older export is never loaded.
_EXPORT_FORMAT = "1"
# The exported graph must give torch's vectors: cosine distance above this on the probe texts
# and the export is discarded (queries stay on torch).
_EXPORT_TOLERANCE = 1e-4
_PROBES = (
    "What is the azathioprine maintenance dose in lupus nephritis?",
    "TPMT",
    "Monitor full blood counts weekly for the first 8 weeks, then monthly; " * 12,
)
QueryBackend = Literal["auto", "torch"]
# Two threads per question encode: on this 2-core VM one new question's encode 6.4 -> 4.1 ms and
# an ask 12.4 -> 9.7 ms p50 (the plain LangChain chain's torch uses every core too), the same
# vectors (cosine distance 2e-7). Several questions at once lose ~10 % throughput to it: an API
# with several workers encodes on one thread each (cli.query_threads).
QUERY_THREADS = min(2, os.cpu_count() or 1)


class Embedder:
    """Normalised sentence embeddings on CPU from ``model_path`` (a local directory)."""

    _shared: dict[str, Embedder] = {}
    _shared_lock = threading.Lock()

    def __init__(
        self,
        model_path: str,
        *,
        batch_size: int = _BATCH_SIZE,
        query_backend: QueryBackend = "auto",
        onnx_dir: str | Path | None = None,
        query_threads: int | None = None,
    ) -> None:
        """``query_backend="auto"``: single queries run on the ONNX export of this model when
        it can be made or found in ``onnx_dir``; ``"torch"``: always the torch model.
        ``query_threads``: threads per ONNX query encode (default ``QUERY_THREADS``)."""
        self.model_path = str(model_path)
        self.query_threads = query_threads or QUERY_THREADS
        self.batch_size = batch_size
        self.query_backend: QueryBackend = query_backend
        self.onnx_dir = Path(onnx_dir) if onnx_dir is not None else DEFAULT_ONNX_DIR
        self._model: Any = None
        self._lock = threading.Lock()
        self._query_encoder: OnnxQueryEncoder | None = None
        self._query_encoder_failed = query_backend == "torch"
        self._query_lock = threading.Lock()

    @classmethod
    def shared(cls, model_path: str, *, query_threads: int | None = None) -> Embedder:
        """One Embedder per path per process (used when Chroma rebuilds our function from
        config). ``query_threads`` applies until the query encoder has loaded."""
        with cls._shared_lock:
            if model_path not in cls._shared:
                cls._shared[model_path] = cls(model_path)
            got = cls._shared[model_path]
            if query_threads:
                got.query_threads = query_threads
            return got

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                if not os.path.isdir(self.model_path):
                    raise EmbeddingModelError(
                        f"embedding model not found at {self.model_path!r} (a local directory is "
                        "required; nothing is downloaded)"
                    )
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar in CLI output

                try:
                    self._model = SentenceTransformer(
                        self.model_path, device="cpu", local_files_only=True
                    )
                except Exception as exc:
                    raise EmbeddingModelError(
                        f"cannot load embedding model from {self.model_path!r}: {exc}"
                    ) from exc
            return self._model

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise EmbeddingModelError(
                f"model at {self.model_path!r} reports no embedding dimension"
            )
        return int(dim)

    def encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        # tolist(): the same Python floats as float() of each element, without a Python call per
        # element (384 of them per vector).
        if hasattr(vectors, "tolist"):
            return list(vectors.tolist())
        return [[float(x) for x in row] for row in vectors]

    def encode_query(self, text: str) -> list[float]:
        """One question's vector: the ONNX export when available (same vectors, no torch)."""
        encoder = self.query_encoder()
        if encoder is not None:
            return list(encoder.encode([text])[0].tolist())
        return self.encode([text])[0]

    @property
    def query_runtime(self) -> str:
        """Which runtime answers ``encode_query`` now: "onnx" or "torch"."""
        return "onnx" if self._query_encoder is not None else "torch"

    def query_encoder(self, *, export: bool = True) -> OnnxQueryEncoder | None:
        """The ONNX query encoder (loaded from ``onnx_dir``, exported there first when missing
        and ``export``), or None when queries stay on torch."""
        if self._query_encoder is not None or self._query_encoder_failed:
            return self._query_encoder
        if not export and not onnx_model_file(self.model_path, self.onnx_dir).is_file():
            return None  # a pre-load only: the first query exports, in the foreground
        with self._query_lock:
            if self._query_encoder is None and not self._query_encoder_failed:
                self._query_encoder = self._load_query_encoder()
                self._query_encoder_failed = self._query_encoder is None
        return self._query_encoder

    def _load_query_encoder(self) -> OnnxQueryEncoder | None:
        # An export that no longer loads (a truncated file, another onnxruntime) is made again
        # once; any other failure leaves queries on torch, with the same vectors.
        for _attempt in range(2):
            try:
                return OnnxQueryEncoder(
                    self.export_query_model(), self.model_path, threads=self.query_threads
                )
            except Exception:  # noqa: BLE001
                target = onnx_model_file(self.model_path, self.onnx_dir)
                if not target.is_file():
                    return None
                target.unlink(missing_ok=True)
        return None

    def export_query_model(self, *, quantize: bool = False) -> Path:
        """The ONNX export of this model in ``onnx_dir``, made now from the local files when
        it is not there yet (needs torch; done at ingest so a question never waits for it)."""
        target = onnx_model_file(self.model_path, self.onnx_dir, quantize=quantize)
        if target.is_file():
            return target
        if not quantize:
            return export_onnx(self.model_path, target, model=self.model)
        return export_onnx(
            self.model_path, target, model=self.model, fp32=self.export_query_model()
        )

    def as_langchain(self) -> LangChainEmbeddings:
        from ingest.langchain_embeddings import LangChainEmbeddings

        return LangChainEmbeddings(self)

    def as_chroma(self) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(self)


def _model_key(model_path: str) -> str:
    """Names the export after the model it came from (its config, weight files' sizes and
    times, the export format and onnxruntime's version), so a changed model is re-exported."""
    digest = hashlib.sha256(f"{_EXPORT_FORMAT}\n{Path(model_path).resolve()}\n".encode())
    try:
        import onnxruntime

        digest.update(onnxruntime.__version__.encode())
    except ImportError:
        pass
    root = Path(model_path)
    for name in ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json"):
        try:
            digest.update((root / name).read_bytes())
        except OSError:
            digest.update(b"-")
    for weights in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        st = weights.stat()
        digest.update(f"{weights.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def onnx_model_file(model_path: str, onnx_dir: str | Path, *, quantize: bool = False) -> Path:
    """Where the export of ``model_path`` lives (or will) under ``onnx_dir``."""
    name = "model_qint8.onnx" if quantize else "model.onnx"
    return Path(onnx_dir) / _model_key(model_path) / name


def _pipeline_config(model_path: str) -> int:
    """The sentence-transformers pipeline the ONNX path reproduces: Transformer, mean pooling,
    Normalize. Returns the maximum sequence length; raises ValueError for anything else."""
    root = Path(model_path)
    modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds != ["Transformer", "Pooling", "Normalize"]:
        raise ValueError(f"unsupported sentence-transformers modules {kinds}")
    pooling_dir = next(m["path"] for m in modules if m.get("type", "").endswith("Pooling"))
    pooling = json.loads((root / pooling_dir / "config.json").read_text(encoding="utf-8"))
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ValueError(f"unsupported pooling {modes}")
    config = json.loads((root / "sentence_bert_config.json").read_text(encoding="utf-8"))
    return int(config.get("max_seq_length") or 512)


class OnnxQueryEncoder:
    """The exported transformer in onnxruntime, with the model's tokenizer, mean pooling and
    normalisation in numpy: what sentence-transformers computes, without importing torch."""

    def __init__(self, onnx_path: str | Path, model_path: str, *, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        max_length = _pipeline_config(model_path)
        tokenizer = Tokenizer.from_file(str(Path(model_path) / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding()
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        # ``threads`` (default 1 here; the Embedder passes QUERY_THREADS): the second thread
        # gains by spinning between operators, which is why it costs throughput under load.
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.path = Path(onnx_path)
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> Any:
        """A float32 array, one normalised row per text."""
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def export_onnx(
    model_path: str, target: str | Path, *, model: Any = None, fp32: str | Path | None = None
) -> Path:
    """Export the sentence-transformers model at ``model_path`` (a loaded ``model`` may be
    passed) to ONNX at ``target``; with ``fp32`` (an existing export), write its dynamically
    int8-quantised copy instead. The result is checked against torch's vectors on probe texts
    before it is moved into place, atomically; ValueError when it does not match."""
    import numpy as np

    _pipeline_config(model_path)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if model is None:
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fp32 is not None:
            import logging

            from onnxruntime.quantization import QuantType, quantize_dynamic

            logging.disable(logging.WARNING)  # its advice to pre-process, printed on every run
            try:
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
            finally:
                logging.disable(logging.NOTSET)
            tolerance = 0.2  # int8 weights move vectors; the bench measures what that costs
        else:
            _torch_export(model, tmp)
            tolerance = _EXPORT_TOLERANCE
        expected = np.asarray(
            model.encode(
                list(_PROBES),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        )
        got = OnnxQueryEncoder(tmp, model_path).encode(list(_PROBES))
        worst = float((1.0 - (expected * got).sum(axis=1)).max())
        if not worst <= tolerance:
            raise ValueError(f"ONNX export differs from torch (cosine distance {worst:.2e})")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _torch_export(model: Any, path: Path) -> None:
    import torch

    transformer = model[0].auto_model.eval()
    tokenizer = model.tokenizer

    class _Hidden(torch.nn.Module):
        # Keyword arguments: the model's positional order changed between transformers versions.
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["a dose question", "TPMT"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dynamic = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    import warnings

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on opset details, not for users
        torch.onnx.export(
            _Hidden(transformer),
            tuple(sample[n] for n in names),
            str(path),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )


@register_embedding_function
class ChromaEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function; registered so a collection re-opened from its persisted
    configuration rebuilds this (from the model path), never Chroma's default."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def __call__(self, input: Documents) -> ChromaEmbeddings:
        import numpy as np

        return [np.asarray(v, dtype=np.float32) for v in self.embedder.encode(list(input))]

    @staticmethod
    def name() -> str:
        return "dosewise-sentence-transformer"

    def get_config(self) -> dict[str, Any]:
        return {"model_path": self.embedder.model_path}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(Embedder.shared(str(config["model_path"])))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"


def __getattr__(name: str) -> Any:
    # LangChain's Embeddings base imports its runnable config and callback manager (~0.2 s of
    # a cold start), which only LangChain callers need: the adapter lives in its own module.
    if name == "LangChainEmbeddings":
        from ingest.langchain_embeddings import LangChainEmbeddings

        return LangChainEmbeddings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
