"""The imported-documents bench section measures what it says: a synthetic folder of every format
is read (each document's drug found), chunked, its statements extracted and ingested, and every
throughput is a finite number. No timing thresholds (speed targets are reported, never asserted)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.imported import imported_section, main, table, write_synthetic_folder


def test_synthetic_folder_holds_every_format(tmp_path: Path) -> None:
    written = write_synthetic_folder(tmp_path / "docs", 3)
    assert written["txt"] == written["html"] == written["pdf"] == 1
    assert written.get("xml", 0) >= 1  # the repository's invented SPL labels
    html = next((tmp_path / "docs").glob("*.html")).read_text(encoding="utf-8")
    assert "<table>" in html and "<th>" in html


def test_imported_section_reports_throughput_and_statement_cost(
    tmp_path: Path, embedder: Any
) -> None:
    folder = tmp_path / "docs"
    write_synthetic_folder(folder, 3)
    out = imported_section(embedder, folder, tmp_path / "work", collection="benchimported")
    assert out["skipped"] == 0
    assert out["documents"] == out["documents_with_a_drug"] == len(list(folder.iterdir()))
    assert set(out["documents_by_kind"]) == {"text", "html", "pdf", "label"}
    assert out["ingest_chunks_written"] == out["chunks"] > 0
    assert out["statements"] > 0 and out["statements_per_role"]
    for key in (
        "load_docs_per_s",
        "ingest_docs_per_s",
        "ingest_chunks_per_s",
        "statement_ms_per_chunk",
        "statement_share_of_ingest",
    ):
        assert isinstance(out[key], float) and math.isfinite(out[key]) and out[key] > 0, key
    assert out["statement_share_of_ingest"] < 1  # a part of the ingest, never more than all of it
    assert len(table(out)) == 4 and table({}) == []


def test_command_refuses_a_missing_folder(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "r.json"
    assert main(["--docs", str(tmp_path / "absent"), "--out", str(out)]) == 2
    assert "not a folder" in capsys.readouterr().err and not out.exists()
