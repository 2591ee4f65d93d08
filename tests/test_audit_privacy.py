"""The audit log protects patients: private file modes, a retention period that `dosewise
audit prune` enforces without losing a concurrent write, a redacted export without patient
fields, and the user named on every answer."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.audit import AuditLog, redact_record
from assistant.model import AnswerResult, ClaimView
from settings import Settings

PATIENT = {
    "weight_kg": "72.5",
    "tpmt": "intermediate",
    "nudt15": None,
    "comedications": ["allopurinol"],
}


def _result(derived: bool = False) -> AnswerResult:
    claims = [ClaimView("2 mg/kg/day", "supported", 1, (0, 11))]
    if derived:
        claims.append(
            ClaimView("145 mg/day", "derived", 1, (20, 30), derivation="2 mg/kg/day × 72.5 kg")
        )
    answer = "**2 mg/kg/day [1]**" + (" — for 72.5 kg: 145 mg/day [1]." if derived else "")
    return AnswerResult(status="verified", answer=answer, summary=answer, claims=tuple(claims))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_log_is_created_0600_in_a_0700_folder(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would give 0644/0755
    try:
        log = AuditLog(tmp_path / "data" / "audit" / "audit.jsonl")
        log.record("q", PATIENT, _result())
    finally:
        os.umask(old)
    assert _mode(log.path) == 0o600
    assert _mode(log.path.parent) == 0o700
    assert _mode(Path(str(log.path) + ".lock")) == 0o600
    assert log.exposure() == []


def test_a_world_readable_log_from_an_older_version_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_text('{"type": "answer", "id": "old", "ts": 1}\n', encoding="utf-8")
    path.chmod(0o644)
    log = AuditLog(path)
    assert any("0644" in p for p in log.exposure())
    log.record("q", None, _result())
    assert _mode(path) == 0o600
    assert [r["id"] for r in log.read()][0] == "old"


def test_settings_put_the_log_in_its_own_folder_but_keep_an_existing_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.audit_path == tmp_path / "audit" / "audit.jsonl"
    (tmp_path / "audit.jsonl").write_text("", encoding="utf-8")
    assert settings.audit_path == tmp_path / "audit.jsonl"  # history is not split in two
    assert (
        Settings(data_dir=tmp_path, audit_log=tmp_path / "x.jsonl").audit_path
        == tmp_path / "x.jsonl"
    )
    assert Settings(data_dir=tmp_path, audit_retention_days=30).audit_retention_s == 30 * 86400


def test_every_answer_names_its_user(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    a = log.record("q1", None, _result(), user="pharmacy-ehr")
    b = log.record("q2", None, _result())
    assert log.get(a)["user"] == "pharmacy-ehr"  # type: ignore[index]
    assert "user" in log.get(b) and log.get(b)["user"] is None  # type: ignore[index,operator]


def _aged(log: AuditLog, ages_days: dict[str, float]) -> dict[str, str]:
    """Answers with the given ages (ts rewritten), plus feedback on each; returns name → id."""
    ids = {name: log.record(name, PATIENT, _result()) for name in ages_days}
    for name in ages_days:
        log.feedback(ids[name], helpful=True, comment=f"about {name}")
    now = time.time()
    by_id = {v: k for k, v in ids.items()}
    lines = []
    for rec in log.read():
        name = by_id.get(rec.get("id")) or by_id.get(rec.get("record_id"))
        rec["ts"] = now - ages_days[name] * 86400
        lines.append(json.dumps(rec))
    log.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ids


def test_prune_drops_records_older_than_the_retention_and_their_feedback(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    ids = _aged(log, {"ancient": 400, "old": 31, "recent": 29, "today": 0})
    with open(log.path, "a", encoding="utf-8") as fh:
        fh.write('{"type": "answer", "id": "torn", "question": "Mrs')  # a crash mid-write
    report = log.prune(30 * 86400)
    assert (report.removed, report.kept, report.unreadable) == (4, 4, 1)
    left = log.read()
    assert {r.get("question") for r in left if r["type"] == "answer"} == {"recent", "today"}
    assert {r["record_id"] for r in left if r["type"] == "feedback"} == {
        ids["recent"],
        ids["today"],
    }
    assert "Mrs" not in log.path.read_text(encoding="utf-8")
    assert _mode(log.path) == 0o600
    assert log.prune(30 * 86400).removed == 0  # idempotent
    with pytest.raises(ValueError):
        log.prune(0)


def test_prune_while_other_threads_write_loses_no_new_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    _aged(log, {f"old-{i}": 90 for i in range(50)})
    writer = AuditLog(log.path)  # another instance, as another worker would hold
    written: list[str] = []
    stop = threading.Event()

    def write() -> None:
        i = 0
        while not stop.is_set() and i < 400:
            written.append(writer.record(f"new-{i}", None, _result()))
            i += 1

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    removed = 0
    for _ in range(20):
        removed += log.prune(30 * 86400).removed
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert removed == 100  # 50 answers and their 50 feedback records
    assert {r["id"] for r in log.read()} == set(written)


def test_redacted_export_drops_patient_fields_and_what_is_computed_from_them(
    tmp_path: Path,
) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with_patient = log.record("aza dose in RA?", PATIENT, _result(derived=True), user="ward-7")
    without = log.record("aza dose in lupus?", None, _result())
    log.feedback(with_patient, helpful=False, comment="patient is 72.5 kg, on allopurinol")
    log.auth_failure(method="POST", path="/v1/ask", client="10.0.0.9", reason="missing token")
    records = {r["id"]: r for r in log.read()}

    red = {r["id"]: r for r in (redact_record(x) for x in records.values())}
    text = json.dumps(list(red.values()))
    for leak in ("72.5", "intermediate", "allopurinol", "145 mg/day"):
        assert leak not in text, leak
    assert red[with_patient]["patient_given"] is True and "patient" not in red[with_patient]
    assert (
        red[with_patient]["user"] == "ward-7" and red[with_patient]["question"] == "aza dose in RA?"
    )
    assert [c.get("status") for c in red[with_patient]["result"]["claims"]] == [
        "supported",
        "derived",
    ]
    # An answer with no patient is kept whole: nothing in it is about a patient.
    assert (
        red[without]["result"] == records[without]["result"]
        and red[without]["patient_given"] is False
    )
    assert records[with_patient]["patient"] == PATIENT  # the log itself is untouched


def test_audit_commands_export_redacted_and_prune(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    path = tmp_path / "audit" / "audit.jsonl"
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(path))
    monkeypatch.delenv("DOSEWISE_AUDIT_RETENTION_DAYS", raising=False)
    log = AuditLog(path)
    _aged(log, {"old": 40, "new": 1})
    runner = CliRunner()

    full = runner.invoke(app, ["audit", "export"])
    assert full.exit_code == 0 and "72.5" in full.stdout
    out = tmp_path / "review.jsonl"
    red = runner.invoke(app, ["audit", "export", "--redact", "--out", str(out)])
    assert red.exit_code == 0, red.output
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 4 and "72.5" not in out.read_text(encoding="utf-8")
    assert all("patient" not in r for r in lines) and _mode(out) == 0o600

    assert runner.invoke(app, ["audit", "prune"]).exit_code == 2  # no period set: says so
    monkeypatch.setenv("DOSEWISE_AUDIT_RETENTION_DAYS", "30")
    pruned = runner.invoke(app, ["audit", "prune"])
    assert pruned.exit_code == 0, pruned.output
    assert "removed 2" in pruned.stdout
    assert {r.get("question") for r in log.read() if r["type"] == "answer"} == {"new"}
    assert (
        "removed 2" in runner.invoke(app, ["audit", "prune", "--days", "1"]).stdout
    )  # a day old, with its feedback
