from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from cli import app


@pytest.fixture
def env(tmp_path: Path, tiny_corpus: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray dosewise.toml from the repo
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOSEWISE_CORPUS_DIR", str(tiny_corpus))
    monkeypatch.setenv("DOSEWISE_COLLECTION", "clitest")
    monkeypatch.setenv("DOSEWISE_CHROMA_MODE", "embedded")
    monkeypatch.setenv("DOSEWISE_EMBEDDING_MODEL_PATH", embedder.model_path)
    return tiny_corpus


def test_ingest_defaults_to_the_corpus_dir_and_stats_shows_it(env: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "ingest: 3 files" in result.output and "0 skipped" in result.output
    stats = runner.invoke(app, ["stats"])
    assert stats.exit_code == 0, stats.output
    assert "documents: 3" in stats.output and "generation 1" in stats.output
    assert "methotrexate: 1 documents" in stats.output
    as_json = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert as_json["documents"] == 3 and as_json["per_drug"]["mercaptopurine"]["documents"] == 1


def test_ingest_lists_skipped_files_and_exits_1(env: Path) -> None:
    (env / "broken.md").write_text("---\nid: broken\n---\n# x\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", str(env)])
    assert result.exit_code == 1
    assert f"skipped {env / 'broken.md'}: invalid front matter" in result.output
    assert "1 skipped" in result.output


def test_ingest_exits_2_when_another_ingest_holds_the_lock(env: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with FileLock(str(tmp_path / "data" / "ingest.lock")):
        result = CliRunner().invoke(app, ["ingest", "--lock-timeout", "0.2"])
    assert result.exit_code == 2
    assert "another ingest is running" in result.output


def test_stats_on_a_never_ingested_index(env: Path) -> None:
    result = CliRunner().invoke(app, ["stats"])
    assert result.exit_code == 0
    assert "never ingested" in result.output and "chunks: 0" in result.output
