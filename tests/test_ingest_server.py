from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.errors import StoreUnavailableError
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest
from ingest.store import open_index

CHROMA = Path(__file__).resolve().parents[1] / ".venv" / "bin" / "chroma"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[StoreConfig]:
    if not CHROMA.exists():
        pytest.skip(f"{CHROMA} not installed")
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [
            str(CHROMA),
            "run",
            "--path",
            str(tmp_path / "server"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "chroma.log").read_text(errors="replace")
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "chroma server did not come up in 60 s"
            time.sleep(0.3)
        yield StoreConfig(
            mode="server", host="127.0.0.1", port=port, collection="srvidx", timeout_s=5
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.server
def test_server_mode_round_trip_ingest_query_reingest(
    chroma_server: StoreConfig,
    tiny_corpus: Path,
    embedder: Any,
    tmp_path: Path,
    no_network: list[str],
) -> None:
    report = run_ingest(
        [tiny_corpus],
        chroma_server,
        embedder,
        chunk_size=400,
        data_dir=tmp_path / "d",
        progress=False,
    )
    assert report.chunks_added > 0 and report.generation == "1"
    index = open_index(chroma_server, embedder)
    hits = index.query(embedder.encode_query("thiopurine dose for a TPMT poor metabolizer"), k=3)
    assert hits[0][0].doc_id == "mp-all" and hits[0][0].sources
    assert index.stats()["chunks"] == report.chunks_added
    (tiny_corpus / "mtx-ra.md").unlink()
    again = run_ingest(
        [tiny_corpus],
        chroma_server,
        embedder,
        chunk_size=400,
        data_dir=tmp_path / "d",
        progress=False,
    )
    assert again.chunks_removed > 0 and again.generation == "2"
    index.refresh()
    assert "mtx-ra" not in {c.doc_id for c in index.all_chunks()}


def test_unreachable_server_fails_fast_with_a_clear_message(embedder: Any) -> None:
    config = StoreConfig(mode="server", host="127.0.0.1", port=_free_port(), timeout_s=2)
    with pytest.raises(StoreUnavailableError, match=r"not reachable within 2 s.*chroma run"):
        open_index(config, embedder)
