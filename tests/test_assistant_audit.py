"""The audit log: append-only JSONL that survives crashes mid-write and reports write failures."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from assistant.audit import AuditLog
from assistant.errors import AuditWriteError
from assistant.model import AnswerResult, ClaimView


def _result(text: str = "**2 mg/kg/day [1].**") -> AnswerResult:
    return AnswerResult(
        status="verified",
        answer=text,
        summary=text,
        claims=(ClaimView("2 mg/kg/day", "supported", 1, (2, 13)),),
    )


def test_records_are_read_back_in_order_with_feedback(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    first = log.record("q1", {"weight_kg": "72"}, _result())
    second = log.record("q2", None, _result("other"))
    log.feedback(first, helpful=False, comment="too long")
    records = log.read()
    assert [r["type"] for r in records] == ["answer", "answer", "feedback"]
    assert [r.get("question") for r in records[:2]] == ["q1", "q2"]
    assert records[0]["id"] == first and records[1]["id"] == second
    assert records[2]["record_id"] == first and records[2]["helpful"] is False


def test_truncated_last_line_is_skipped_and_earlier_records_kept(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    kept = log.record("q1", None, _result())
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"type": "answer", "id": "torn", "question": "hal')  # crash mid-write
    assert [r["id"] for r in log.read()] == [kept]
    after = log.record("q2", None, _result())
    assert [r["id"] for r in log.read()] == [kept, after]


def test_write_failure_raises_audit_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    log = AuditLog(blocker / "audit.jsonl")
    with pytest.raises(AuditWriteError):
        log.record("q", None, _result())


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")

    def write(i: int) -> None:
        for j in range(10):
            log.record(f"q{i}-{j}", None, _result())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40
    assert all(json.loads(line)["type"] == "answer" for line in lines)


def test_markdown_export_has_question_answer_checks_and_feedback(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    rid = log.record("What dose?", {"weight_kg": "72"}, _result())
    log.feedback(rid, helpful=True, comment="clear")
    md = log.export_markdown(rid)
    assert "What dose?" in md and "**2 mg/kg/day [1].**" in md
    assert "`2 mg/kg/day`: supported [1]" in md
    assert "helpful: clear" in md
    with pytest.raises(KeyError):
        log.export_markdown("missing")
