"""Bad documents and failures at ingest, against an index that already holds a good corpus: every
bad file is reported by path and reason, the good ones stay indexed, and the existing generation
is untouched (same number, same chunks, still queryable) after a partial or failed run.

(Each bad file type on its own is in test_ingest_loaders.py; kill -9 mid-ingest in
test_ingest_pipeline.py. Here they are all at once, through run_ingest, on a live index.)"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ingest import open_index
from ingest.loaders import DEFAULT_MAX_BYTES
from ingest.model import IngestReport, StoreConfig
from ingest.pipeline import run_ingest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "corpus"

GOOD_FRONT = """---
id: {id}
title: {title}
drugs: [azathioprine]
indications: [crohn disease]
audience: clinician
last_reviewed: 2026-01-01
review_status: draft
sources:
  - id: src-a
    kind: guideline
    reference: "A reference."
---
"""


def _md(
    doc_id: str,
    body: str = "# T\n\n## Dosing\n\nGive 2 mg/kg/day [@src-a].\n",
    title: str = "Test document",
) -> str:
    return GOOD_FRONT.format(id=doc_id, title=title) + body


@pytest.fixture
def live(tmp_path: Path, embedder: Any) -> tuple[Path, StoreConfig, Path, IngestReport]:
    corpus = tmp_path / "corpus"
    shutil.copytree(FIXTURES, corpus)
    data = tmp_path / "data"
    cfg = StoreConfig(mode="embedded", path=str(data / "chroma"), collection="faults")
    first = run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    assert first.skipped == () and first.chunks_added > 0
    return corpus, cfg, data, first


def _snapshot(cfg: StoreConfig, embedder: Any) -> tuple[int, list[tuple[str, str]]]:
    index = open_index(cfg, embedder)
    return index.generation, sorted((c.id, c.text) for c in index.all_chunks())


def _plant_bad_files(corpus: Path, outside: Path) -> dict[str, str]:
    """Every kind of bad file next to the good ones; returns {file name: expected reason}."""
    (corpus / "yaml-broken.md").write_text(
        "---\nid: [unclosed\ntitle: x\n---\n# T\n", encoding="utf-8"
    )
    (corpus / "schema-bad.md").write_text(
        _md("schema-bad").replace("audience: clinician", "audience: everyone"), encoding="utf-8"
    )
    (corpus / "no-front.md").write_text("# Heading only\n\n2 mg/kg/day\n", encoding="utf-8")
    (corpus / "binary.md").write_bytes(b"---\nid: x\n---\n\x00\x01\x02\xff" * 100)
    (corpus / "latin1.md").write_bytes(
        _md("latin").encode() + "posologie: 2 mg/kg/j, b\xe9b\xe9".encode("latin-1")
    )
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "zz-duplicate.md").write_text(
        _md("mtx-ra", "# Hijack\n\n## Dosing\n\nMethotrexate 50 mg daily [@src-a].\n"),
        encoding="utf-8",
    )
    giant = corpus / "giant.txt"
    with open(giant, "wb") as fh:  # 50 MB, sparse: costs no disk and must not be read
        fh.truncate(50 * 1024 * 1024)
    os.symlink(corpus, corpus / "loop")
    os.symlink("/etc/passwd", corpus / "passwd.txt")
    os.symlink(outside, corpus / "escape")
    os.symlink("../outside/secret.md", corpus / "dotdot.md")
    return {
        "yaml-broken.md": "YAML error",
        "schema-bad.md": "audience",
        "no-front.md": "missing YAML front matter",
        "binary.md": "binary",
        "latin1.md": "not UTF-8",
        "empty.md": "empty",
        "zz-duplicate.md": "duplicate document id 'mtx-ra'",
        # Both claimants of a shared id are refused; the indexed one keeps its last good chunks.
        "mtx-ra.md": "duplicate document id 'mtx-ra'",
        "giant.txt": "too large",
        "loop": "loop",
        "passwd.txt": "outside the corpus root",
        "escape": "outside the corpus root",
        "dotdot.md": "outside the corpus root",
    }


def test_every_bad_file_is_reported_and_the_existing_index_is_untouched(
    live: tuple[Path, StoreConfig, Path, IngestReport], embedder: Any, tmp_path: Path
) -> None:
    corpus, cfg, data, first = live
    before = _snapshot(cfg, embedder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(_md("secret"), encoding="utf-8")
    expected = _plant_bad_files(corpus, outside)

    report = run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)

    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == set(expected), reasons
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
        assert any(Path(s.path) == corpus / name for s in report.skipped)  # reported by full path
    assert "52.4 MB > limit" in reasons["giant.txt"]  # the size is named, not just "bad"
    assert report.chunks_added == report.chunks_updated == report.chunks_removed == 0
    assert report.generation == first.generation
    assert _snapshot(cfg, embedder) == before
    index = open_index(cfg, embedder)
    assert {c.doc_id for c in index.all_chunks()} == {"aza-ibd", "mp-all", "mtx-ra"}
    assert not any("50 mg daily" in c.text or "root:" in c.text for c in index.all_chunks())
    hits = index.query(embedder.encode_query("methotrexate weekly rheumatoid arthritis"), k=1)
    assert hits[0][0].doc_id == "mtx-ra"


def test_a_new_good_file_among_bad_ones_is_ingested_and_nothing_else_changes(
    live: tuple[Path, StoreConfig, Path, IngestReport], embedder: Any, tmp_path: Path
) -> None:
    corpus, cfg, data, first = live
    _gen, before = _snapshot(cfg, embedder)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(_md("secret"), encoding="utf-8")
    _plant_bad_files(corpus, outside)
    (corpus / "new-good.md").write_text(
        _md("new-good", title="New good document"), encoding="utf-8"
    )

    report = run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)

    assert report.chunks_added > 0 and report.chunks_removed == 0 and report.chunks_updated == 0
    assert int(report.generation) == int(first.generation) + 1
    _gen2, after = _snapshot(cfg, embedder)
    assert set(before) < set(after)
    assert {c.doc_id for c in open_index(cfg, embedder).all_chunks()} == {
        "aza-ibd",
        "mp-all",
        "mtx-ra",
        "new-good",
    }


def test_an_ingest_that_fails_midway_leaves_the_index_as_it_was_and_the_next_one_completes(
    live: tuple[Path, StoreConfig, Path, IngestReport],
    embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus, cfg, data, first = live
    before = _snapshot(cfg, embedder)
    (corpus / "new-good.md").write_text(
        _md("new-good", title="New good document"), encoding="utf-8"
    )
    (corpus / "mp-all.md").unlink()

    def broken_encode(_texts: Any) -> Any:
        raise MemoryError("embedding ran out of memory")

    monkeypatch.setattr(embedder, "encode", broken_encode)
    with pytest.raises(MemoryError):
        run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    monkeypatch.undo()

    assert _snapshot(cfg, embedder) == before  # the failed run changed nothing readers see
    report = run_ingest(
        [corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False, lock_timeout_s=5
    )  # and it released the writer lock
    assert int(report.generation) > int(first.generation)
    assert {c.doc_id for c in open_index(cfg, embedder).all_chunks()} == {
        "aza-ibd",
        "mtx-ra",
        "new-good",
    }


def test_giant_file_is_rejected_from_its_size_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import loaders

    giant = tmp_path / "giant.md"
    with open(giant, "wb") as fh:
        fh.truncate(DEFAULT_MAX_BYTES * 3)
    read: list[Path] = []
    real = Path.read_bytes

    def spy(self: Path) -> bytes:
        read.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    docs, skipped = loaders.load_corpus([tmp_path])
    assert docs == [] and [Path(s.path).name for s in skipped] == ["giant.md"]
    assert "too large" in skipped[0].reason and read == []


def test_a_duplicate_id_that_sorts_first_does_not_hijack_an_indexed_document(
    live: tuple[Path, StoreConfig, Path, IngestReport], embedder: Any
) -> None:
    corpus, cfg, data, _first = live
    before = _snapshot(cfg, embedder)
    (corpus / "aa-impostor.md").write_text(
        _md("mtx-ra", "# Hijack\n\n## Dosing\n\nMethotrexate 50 mg daily [@src-a].\n"),
        encoding="utf-8",
    )
    report = run_ingest([corpus], cfg, embedder, chunk_size=400, data_dir=data, progress=False)
    assert any("duplicate document id 'mtx-ra'" in s.reason for s in report.skipped), report.skipped
    chunks = open_index(cfg, embedder).all_chunks()
    assert not any("50 mg daily" in c.text for c in chunks)
    assert _snapshot(cfg, embedder) == before
