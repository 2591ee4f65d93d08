"""`dosewise ingest --labels` and `dosewise fetch-label` through the real CLI (CliRunner)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import guardrails
from cli import app

REPO = Path(__file__).resolve().parents[1]
SPL = REPO / "tests" / "fixtures" / "spl"
EXAMPLIX = SPL / "examplix_plr.xml"
SETID = "7d1e0c9a-3b52-4f7e-9a61-2c8e5d4b1a01"


@pytest.fixture
def env(tmp_path: Path, tiny_corpus: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray dosewise.toml from the repo
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DOSEWISE_CORPUS_DIR", str(tiny_corpus))
    monkeypatch.setenv("DOSEWISE_COLLECTION", "clilabels")
    monkeypatch.setenv("DOSEWISE_CHROMA_MODE", "embedded")
    monkeypatch.setenv("DOSEWISE_EMBEDDING_MODEL_PATH", embedder.model_path)
    return tmp_path


def _hot_label(tmp_path: Path) -> Path:
    """An azathioprine label (a drug with dose limits) whose recommended dose is far too high."""
    text = EXAMPLIX.read_text(encoding="utf-8")
    text = text.replace(SETID.upper(), SETID.upper()[:-2] + "99")
    text = text.replace("examplinib", "azathioprine").replace("EXAMPLINIB", "AZATHIOPRINE")
    text = text.replace("Examplix", "Azaplex").replace("EXAMPLIX", "AZAPLEX")
    text = text.replace("is 100 mg orally once daily", "is 40 mg/kg/day orally")
    out = tmp_path / "azaplex.xml"
    out.write_text(text, encoding="utf-8")
    return out


def _zip(tmp_path: Path, *members: Path) -> Path:
    archive = tmp_path / "labels.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for m in members:
            zf.write(m, f"labels/{m.name}")
    return archive


def _limits_fingerprint() -> tuple[str, tuple[str, ...]]:
    packaged = Path(guardrails.__file__).with_name("limits.toml")
    drugs = tuple(sorted(guardrails.load_limits().drugs))
    return hashlib.sha256(packaged.read_bytes()).hexdigest(), drugs


def test_ingest_labels_zip_adds_labels_to_the_corpus_and_stats_shows_them(env: Path) -> None:
    runner = CliRunner()
    archive = _zip(env, EXAMPLIX)
    result = runner.invoke(app, ["ingest", "--no-progress", "--labels", str(archive)])
    assert result.exit_code == 0, result.output
    assert "ingest: 4 files" in result.output and "0 skipped" in result.output

    stats = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert stats["documents"] == 4  # the three corpus documents and the label
    assert stats["per_drug"]["examplinib"]["documents"] == 1
    text = runner.invoke(app, ["stats"]).output
    assert "examplinib: 1 documents" in text and "azathioprine" in text


def test_a_later_ingest_without_labels_removes_them_because_the_index_mirrors_its_inputs(
    env: Path,
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["ingest", "--no-progress", "--labels", str(EXAMPLIX)]).exit_code == 0
    again = runner.invoke(app, ["ingest", "--no-progress"])
    assert again.exit_code == 0, again.output
    removed = re.search(r"(\d+) removed", again.output)
    assert removed and int(removed.group(1)) > 0, again.output
    stats = json.loads(runner.invoke(app, ["stats", "--json"]).output)
    assert stats["documents"] == 3 and "examplinib" not in stats["per_drug"]


def test_label_dose_outside_the_limits_is_warned_with_drug_dose_and_section(env: Path) -> None:
    before = _limits_fingerprint()
    archive = _zip(env, EXAMPLIX, _hot_label(env))
    result = CliRunner().invoke(app, ["ingest", "--no-progress", "--labels", str(archive)])
    assert result.exit_code == 0, result.output  # a warning, not a refusal
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    hot = [w for w in warnings if "azaplex.xml" in w and "'40 mg/kg/day'" in w]
    assert len(hot) == 1, warnings
    assert "azathioprine" in hot[0] and "outside" in hot[0]
    assert "section 'Dosage and Administration > 2.1 Recommended Dosage'" in hot[0]
    assert not any("examplix" in w for w in warnings)  # no limit row, nothing to warn about
    assert _limits_fingerprint() == before  # importing a label never edits the limit table


def test_ingest_labels_reports_a_bad_label_and_exits_1(env: Path) -> None:
    bad = env / "broken.xml"
    bad.write_text('<document xmlns="urn:hl7-org:v3"><title>x</title>', encoding="utf-8")
    result = CliRunner().invoke(app, ["ingest", "--no-progress", "--labels", str(bad)])
    assert result.exit_code == 1
    assert f"skipped {bad}: malformed XML" in result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_fetch_label_offline_exits_2_with_a_clear_message_and_writes_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    monkeypatch.setattr(
        "ingest.spl.DAILYMED_SPL_URL", f"http://127.0.0.1:{_closed_port()}/spls/{{setid}}.xml"
    )
    dest = env / "fetched"
    result = CliRunner().invoke(app, ["fetch-label", SETID, "--dest", str(dest), "--timeout", "2"])
    assert result.exit_code == 2, result.output
    assert "error: cannot reach" in result.output
    assert "dosewise ingest --labels" in result.output  # tells the user the offline route
    assert not dest.exists()  # nothing is written before a label has fully arrived


def test_fetch_label_rejects_a_malformed_set_id_without_any_network(
    env: Path, no_network: list[str]
) -> None:
    result = CliRunner().invoke(app, ["fetch-label", "not-a-setid"])
    assert result.exit_code == 2
    assert "not a DailyMed set id" in result.output
