from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from ingest.chunking import chunk_document
from ingest.errors import IngestLockedError
from ingest.loaders import load_file
from ingest.model import StoreConfig
from ingest.pipeline import format_summary, run_ingest
from ingest.store import chunk_from_record, chunk_to_metadata, open_index

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def store(tmp_path: Path) -> StoreConfig:
    return StoreConfig(
        mode="embedded", path=str(tmp_path / "data" / "chroma"), collection="testidx"
    )


def _ingest(corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path, **kw: Any) -> Any:
    return run_ingest(
        [corpus], store, embedder, chunk_size=400, data_dir=tmp_path / "data", progress=False, **kw
    )


def _expected_chunks(corpus: Path) -> dict[str, list[str]]:
    out = {}
    for f in sorted(corpus.glob("*.md")):
        doc = load_file(f)
        out[doc.doc_id] = [c.id for c in chunk_document(doc, 400)]
    return out


def test_first_ingest_indexes_every_chunk_and_queries_find_the_right_document(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    expected = _expected_chunks(tiny_corpus)
    total = sum(len(v) for v in expected.values())
    assert (report.chunks_added, report.chunks_removed, report.skipped) == (total, 0, ())
    assert report.generation == "1"
    index = open_index(store, embedder)
    assert sorted(c.id for c in index.all_chunks()) == sorted(
        i for v in expected.values() for i in v
    )
    hits = index.query(
        embedder.encode_query("weekly methotrexate dose for rheumatoid arthritis"), k=3
    )
    assert hits[0][0].doc_id == "mtx-ra"
    assert hits == sorted(hits, key=lambda h: h[1])
    only_mp = index.query(
        embedder.encode_query("dose"), k=10, where={"drugs": {"$contains": "mercaptopurine"}}
    )
    assert only_mp and {c.doc_id for c, _ in only_mp} == {"mp-all"}
    stats = index.stats()
    assert (stats["documents"], stats["chunks"], stats["generation"]) == (3, total, 1)
    assert stats["per_drug"]["azathioprine"]["documents"] == 1
    assert "3 files" in format_summary(report) and "generation 1" in format_summary(report)


def test_reingest_of_an_unchanged_corpus_writes_nothing(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    first = _ingest(tiny_corpus, store, embedder, tmp_path)
    ids_before = sorted(c.id for c in open_index(store, embedder).all_chunks())
    chroma_files = {p: p.stat().st_mtime_ns for p in Path(store.path).rglob("*") if p.is_file()}
    second = _ingest(tiny_corpus, store, embedder, tmp_path)
    assert (second.chunks_added, second.chunks_updated, second.chunks_removed) == (0, 0, 0)
    assert second.chunks_unchanged == first.chunks_added
    assert second.generation == first.generation
    assert sorted(c.id for c in open_index(store, embedder).all_chunks()) == ids_before
    assert {
        p: p.stat().st_mtime_ns for p in Path(store.path).rglob("*") if p.is_file()
    } == chroma_files


def test_changed_file_replaces_exactly_its_own_chunks(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    _ingest(tiny_corpus, store, embedder, tmp_path)
    before = {c.id: c for c in open_index(store, embedder).all_chunks()}
    f = tiny_corpus / "mtx-ra.md"
    f.write_text(f.read_text().replace("Review liver tests", "Check liver tests"), encoding="utf-8")
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    assert (report.chunks_added, report.chunks_removed, report.chunks_updated) == (1, 1, 0)
    assert report.generation == "2"
    after = {c.id: c for c in open_index(store, embedder).all_chunks()}
    gone, new = set(before) - set(after), set(after) - set(before)
    assert [before[i].doc_id for i in gone] == ["mtx-ra"] and "Review liver" in before[
        gone.pop()
    ].text
    assert [after[i].doc_id for i in new] == ["mtx-ra"] and "Check liver" in after[new.pop()].text


def test_metadata_only_change_updates_chunks_in_place(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    _ingest(tiny_corpus, store, embedder, tmp_path)
    f = tiny_corpus / "aza-ibd.md"
    f.write_text(
        f.read_text().replace("review_status: draft", "review_status: approved"), encoding="utf-8"
    )
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    n = len(_expected_chunks(tiny_corpus)["aza-ibd"])
    assert (report.chunks_added, report.chunks_updated, report.chunks_removed) == (0, n, 0)
    statuses = {
        c.review_status for c in open_index(store, embedder).all_chunks() if c.doc_id == "aza-ibd"
    }
    assert statuses == {"approved"}


def test_deleted_file_chunks_go_away(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    _ingest(tiny_corpus, store, embedder, tmp_path)
    n = len(_expected_chunks(tiny_corpus)["mp-all"])
    (tiny_corpus / "mp-all.md").unlink()
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    assert (report.chunks_added, report.chunks_removed) == (0, n)
    index = open_index(store, embedder)
    assert "mp-all" not in {c.doc_id for c in index.all_chunks()}
    assert "mercaptopurine" not in index.stats()["per_drug"]


def test_file_that_turns_bad_is_reported_and_keeps_its_last_good_chunks(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    _ingest(tiny_corpus, store, embedder, tmp_path)
    f = tiny_corpus / "aza-ibd.md"
    f.write_text(
        f.read_text().replace("audience: clinician", "audience: everyone"), encoding="utf-8"
    )
    (tiny_corpus / "new-bad.md").write_bytes(b"\xff\xfe junk")
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "audience" in reasons["aza-ibd.md"] and "not UTF-8" in reasons["new-bad.md"]
    assert report.chunks_removed == 0
    assert any("aza-ibd.md" in w and "kept" in w for w in report.warnings)
    assert "aza-ibd" in {c.doc_id for c in open_index(store, embedder).all_chunks()}


def test_second_concurrent_ingest_waits_then_exits_with_a_clear_message(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    holder = FileLock(str(tmp_path / "data" / "ingest.lock"))
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            _ingest(tiny_corpus, store, embedder, tmp_path, lock_timeout_s=0.5)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what was raised
            errors.append(exc)

    with holder:
        t = threading.Thread(target=other_writer)
        t.start()
        t.join(timeout=60)
    assert len(errors) == 1 and isinstance(errors[0], IngestLockedError)
    assert "another ingest is running" in str(errors[0])
    assert open_index(store, embedder).generation == 0  # the locked-out writer wrote nothing
    assert _ingest(tiny_corpus, store, embedder, tmp_path).generation == "1"


def test_chunk_survives_the_chroma_metadata_round_trip(tiny_corpus: Path) -> None:
    chunk = chunk_document(load_file(tiny_corpus / "aza-ibd.md"), 400)[2]
    assert chunk.sources
    assert chunk_from_record(chunk.id, chunk.text, chunk_to_metadata(chunk)) == chunk


# The killed writer embeds with a stub (no torch import, no model load): what is under test is
# the store's generation swap, and the stub keeps each subprocess to a few seconds.
_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import ingest.store as store
    from ingest.embeddings import Embedder
    from ingest.model import StoreConfig
    from ingest.pipeline import run_ingest

    class StubEmbedder(Embedder):
        def encode(self, texts):
            return [[(len(t) % 7 + 1) / 100.0] * 384 for t in texts]

    corpus, data, stage, marker, model = sys.argv[1:6]
    def hook(at):
        if at == stage:
            Path(marker).write_text(at)
            time.sleep(600)
    store._test_hook = hook
    cfg = StoreConfig(path=data + "/chroma", collection="testidx")
    run_ingest([corpus], cfg, StubEmbedder(model), chunk_size=400, data_dir=data, progress=False)
    """
)


@pytest.mark.slow  # two killed ingest processes
@pytest.mark.parametrize("stage", ["batch", "before_flip"])
def test_kill_9_during_ingest_leaves_the_old_index_queryable_and_the_next_ingest_completes(
    stage: str,
    tiny_corpus: Path,
    store: StoreConfig,
    embedder: Any,
    tmp_path: Path,
    model_path: str,
) -> None:
    _ingest(tiny_corpus, store, embedder, tmp_path)
    old_ids = sorted(c.id for c in open_index(store, embedder).all_chunks())
    f = tiny_corpus / "mtx-ra.md"
    f.write_text(
        f.read_text().replace("Avoid in pregnancy.", "Stop before conception."), encoding="utf-8"
    )
    (tiny_corpus / "mp-all.md").unlink()

    marker = tmp_path / "reached"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILL_SCRIPT,
            str(tiny_corpus),
            str(tmp_path / "data"),
            stage,
            str(marker),
            model_path,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "writer never reached the kill point"
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    index = open_index(store, embedder)
    assert index.generation == 1
    assert sorted(c.id for c in index.all_chunks()) == old_ids
    hits = index.query(embedder.encode_query("mercaptopurine TPMT"), k=2)
    assert hits[0][0].doc_id == "mp-all"  # the deleted file is still there: the swap never happened

    report = _ingest(tiny_corpus, store, embedder, tmp_path, lock_timeout_s=10)
    index = open_index(store, embedder)
    assert index.generation > 1 and report.generation == str(index.generation)
    assert "mp-all" not in {c.doc_id for c in index.all_chunks()}
    assert any("Stop before conception." in c.text for c in index.all_chunks())
    generations = [c.name for c in index._client.list_collections() if "__g" in c.name]
    assert generations == [index.collection_name]  # the half-built one was cleaned up


def test_ingest_and_query_make_no_network_access(
    no_network: list[str], tiny_corpus: Path, store: StoreConfig, tmp_path: Path, model_path: str
) -> None:
    from ingest.embeddings import Embedder

    fresh = Embedder(model_path)  # loads the model again, under the guard
    report = _ingest(tiny_corpus, store, fresh, tmp_path)
    assert report.chunks_added > 0
    index = open_index(store, fresh)
    assert index.query(fresh.encode_query("azathioprine"), k=2)
    assert index.langchain_vectorstore().similarity_search("methotrexate weekly", k=1)
    assert no_network == []


def test_network_guard_blocks_non_loopback_connects_and_lookups(no_network: list[str]) -> None:
    import socket

    try:
        with socket.socket() as s, pytest.raises(OSError, match="blocked by the test guard"):
            s.connect(("192.0.2.1", 80))
        with pytest.raises(OSError, match="blocked by the test guard"):
            socket.getaddrinfo("example.org", 443)
        with socket.socket() as s:  # loopback stays allowed (refused, not blocked)
            with pytest.raises(ConnectionRefusedError):
                s.connect(("127.0.0.1", 9))
        assert no_network == ["socket.connect '192.0.2.1'", "socket.getaddrinfo 'example.org'"]
    finally:
        no_network.clear()  # the violations were the point of this test


def test_corpus_dose_outside_the_guard_limits_is_a_warning(
    tiny_corpus: Path, store: StoreConfig, embedder: Any, tmp_path: Path
) -> None:
    guardrails = pytest.importorskip("guardrails")
    if "azathioprine" not in getattr(guardrails.load_limits(), "drugs", ()):
        pytest.skip("the guard's limit table has no azathioprine row")
    f = tiny_corpus / "aza-ibd.md"
    f.write_text(f.read_text().replace("2 to 2.5 mg/kg/day", "25 mg/kg/day"), encoding="utf-8")
    report = _ingest(tiny_corpus, store, embedder, tmp_path)
    flagged = [w for w in report.warnings if "aza-ibd.md" in w]
    assert len(flagged) == 1 and "'25 mg/kg/day'" in flagged[0] and "outside" in flagged[0]
    assert report.chunks_added > 0  # a warning, not a refusal: the document is still indexed
