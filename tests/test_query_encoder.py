"""The ONNX query path gives torch's vectors: exported locally from the packaged model, checked
against torch before use, and any failure leaves queries on torch (never a wrong vector)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.embeddings import Embedder, OnnxQueryEncoder, export_onnx, onnx_model_file

TEXTS = [
    "What is the azathioprine maintenance dose in lupus nephritis?",
    "aza dose LN maint?",
    "6-MP 1.5 mg/kg/day — NUDT15 poor metabolizer; TPMT*3A/*3C",
    "Dosis de azatioprina en el embarazo (μg/kg)",
    "x",
    # Longer than the model's 256-token window: both runtimes must truncate alike.
    "Monitor complete blood counts weekly for eight weeks then monthly. " * 60,
]


@pytest.fixture(scope="module")
def onnx_embedder(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """An embedder sharing the loaded torch model, exporting into a temporary folder."""
    emb = Embedder(embedder.model_path, onnx_dir=tmp_path_factory.mktemp("onnx"))
    emb._model = embedder.model  # the export reads the loaded model instead of loading it again
    return emb


def test_onnx_query_vectors_match_torch(onnx_embedder: Embedder) -> None:
    torch_vectors = np.asarray(onnx_embedder.encode(TEXTS))
    onnx_vectors = np.asarray([onnx_embedder.encode_query(t) for t in TEXTS])
    assert onnx_embedder.query_runtime == "onnx"
    assert onnx_model_file(onnx_embedder.model_path, onnx_embedder.onnx_dir).is_file()
    assert onnx_vectors.shape == torch_vectors.shape == (len(TEXTS), 384)
    cosine = (onnx_vectors * torch_vectors).sum(axis=1)
    assert float((1.0 - cosine).max()) < 1e-5
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


def test_a_second_embedder_loads_the_export_without_the_torch_model(
    onnx_embedder: Embedder,
) -> None:
    onnx_embedder.export_query_model()
    fresh = Embedder(onnx_embedder.model_path, onnx_dir=onnx_embedder.onnx_dir)
    vector = fresh.encode_query(TEXTS[0])
    assert fresh.query_runtime == "onnx"
    assert fresh._model is None  # answered without loading sentence-transformers
    expected = onnx_embedder.encode([TEXTS[0]])[0]
    assert float(np.dot(vector, expected)) > 1 - 1e-5


def test_torch_backend_never_exports(embedder: Any, tmp_path: Path) -> None:
    emb = Embedder(embedder.model_path, query_backend="torch", onnx_dir=tmp_path)
    emb._model = embedder.model
    emb.encode_query("aza dose?")
    assert emb.query_runtime == "torch"
    assert not any(tmp_path.iterdir())


def test_a_damaged_export_is_made_again(embedder: Any, tmp_path: Path) -> None:
    target = onnx_model_file(embedder.model_path, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not an onnx graph")
    emb = Embedder(embedder.model_path, onnx_dir=tmp_path)
    emb._model = embedder.model
    vector = emb.encode_query(TEXTS[1])
    assert emb.query_runtime == "onnx"
    assert target.stat().st_size > 1_000_000
    assert float(np.dot(vector, embedder.encode([TEXTS[1]])[0])) > 1 - 1e-5


def test_when_no_export_can_be_made_queries_stay_on_torch(
    embedder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.embeddings as embeddings

    def broken_export(*_args: Any, **_kwargs: Any) -> Path:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(embeddings, "export_onnx", broken_export)
    emb = Embedder(embedder.model_path, onnx_dir=tmp_path)
    emb._model = embedder.model
    vector = emb.encode_query(TEXTS[1])
    assert emb.query_runtime == "torch"
    assert float(np.dot(vector, embedder.encode([TEXTS[1]])[0])) > 1 - 1e-6
    assert emb.query_encoder() is None  # not retried on every question


def test_a_pipeline_it_does_not_reproduce_is_refused(embedder: Any, tmp_path: Path) -> None:
    """CLS pooling instead of mean pooling: the export refuses rather than pool differently."""
    model_dir = tmp_path / "model"
    shutil.copytree(embedder.model_path, model_dir, copy_function=_link)
    pooling = model_dir / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text(encoding="utf-8"))
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.unlink()  # a link to the packaged file: replaced, never written through
    pooling.write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ValueError, match="pooling"):
        export_onnx(str(model_dir), tmp_path / "out" / "model.onnx", model=embedder.model)
    assert not (tmp_path / "out" / "model.onnx").exists()
    emb = Embedder(str(model_dir), onnx_dir=tmp_path / "cache")
    emb._model = embedder.model
    emb.encode_query("aza dose?")
    assert emb.query_runtime == "torch"


def test_the_export_is_named_after_the_model_files(embedder: Any, tmp_path: Path) -> None:
    """A changed model (here its config) gets a new export, never the old one's vectors."""
    model_dir = tmp_path / "model"
    shutil.copytree(embedder.model_path, model_dir, copy_function=_link)
    before = onnx_model_file(str(model_dir), tmp_path / "cache")
    config = model_dir / "sentence_bert_config.json"
    text = config.read_text(encoding="utf-8")
    config.unlink()
    config.write_text(text.replace("256", "128"), encoding="utf-8")
    assert onnx_model_file(str(model_dir), tmp_path / "cache") != before


def test_onnx_encoder_batches_like_single_texts(onnx_embedder: Embedder) -> None:
    encoder = onnx_embedder.query_encoder()
    assert isinstance(encoder, OnnxQueryEncoder)
    batch = encoder.encode(TEXTS)  # padded to the longest: the mask keeps padding out of the mean
    singles = np.asarray([encoder.encode([t])[0] for t in TEXTS])
    assert float((1.0 - (batch * singles).sum(axis=1)).max()) < 1e-5


def _link(src: str, dst: str) -> None:
    Path(dst).symlink_to(src)


@pytest.mark.parametrize("threads", [1, 2])
def test_query_threads_reach_the_session_and_keep_the_vectors(
    onnx_embedder: Embedder, threads: int
) -> None:
    onnx_embedder.export_query_model()
    emb = Embedder(onnx_embedder.model_path, onnx_dir=onnx_embedder.onnx_dir, query_threads=threads)
    encoder = emb.query_encoder()
    assert isinstance(encoder, OnnxQueryEncoder)
    assert encoder.session.get_session_options().intra_op_num_threads == threads
    got = np.asarray([emb.encode_query(t) for t in TEXTS])
    expected = np.asarray([onnx_embedder.encode_query(t) for t in TEXTS])
    assert float((1.0 - (got * expected).sum(axis=1)).max()) < 1e-5


def test_shared_embedder_takes_the_query_threads_setting(model_path: str) -> None:
    emb = Embedder.shared(model_path)
    before = emb.query_threads
    try:
        assert Embedder.shared(model_path, query_threads=1).query_threads == 1
        assert Embedder.shared(model_path) is emb and emb.query_threads == 1  # unset: kept
    finally:
        emb.query_threads = before


@pytest.mark.parametrize(
    ("setting", "workers", "expected"),
    [(None, 1, None), (None, 4, 1), (2, 4, 2), (3, 1, 3)],
)
def test_several_api_workers_encode_on_one_thread_each_unless_set(
    setting: int | None, workers: int, expected: int | None
) -> None:
    from cli import query_threads
    from settings import Settings

    assert query_threads(Settings(query_threads=setting), workers=workers) == expected


def test_a_query_threads_setting_below_one_is_refused() -> None:
    from pydantic import ValidationError

    from settings import Settings

    with pytest.raises(ValidationError, match="query_threads"):
        Settings(query_threads=0)
