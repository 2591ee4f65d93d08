"""Concurrent API requests share fsyncs (group commit) without weakening the audit promise:
a record is acknowledged only once it is on disk, a failed write fails every record in it,
and nothing acknowledged is missing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import assistant.audit as audit_module
from assistant.audit import AuditLog
from assistant.errors import AuditWriteError
from assistant.model import AnswerResult

RESULT = AnswerResult(status="verified", answer="2 mg/kg/day [1]", summary="s")


def _slow_fsync(monkeypatch: pytest.MonkeyPatch, calls: list[int], fail_first: int = 0) -> None:
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(fd)
        time.sleep(0.005)  # a disk under load: long enough for other threads to queue up
        if len(calls) <= fail_first:
            raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(audit_module.os, "fsync", fsync)


def test_concurrent_records_share_fsyncs_and_keep_each_writers_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    _slow_fsync(monkeypatch, calls)
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    ids: dict[int, list[str]] = {i: [] for i in range(8)}

    def write(i: int) -> None:
        for j in range(25):
            ids[i].append(log.record(f"t{i}-{j}", None, RESULT, user=f"user-{i}"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    records = log.read()
    assert len(records) == 200 and len({r["id"] for r in records}) == 200
    for i in range(8):
        mine = [r["question"] for r in records if r["user"] == f"user-{i}"]
        assert mine == [f"t{i}-{j}" for j in range(25)]
    assert len(calls) < 200, "concurrent records should go out in shared writes"


def test_a_failed_write_fails_its_records_and_every_acknowledged_one_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    _slow_fsync(monkeypatch, calls, fail_first=2)
    log = AuditLog(tmp_path / "audit.jsonl")
    acknowledged: list[str] = []
    failed: list[str] = []
    lock = threading.Lock()

    def write(i: int) -> None:
        for j in range(10):
            try:
                rid = log.record(f"t{i}-{j}", None, RESULT)
            except AuditWriteError as exc:
                assert "No space left" in str(exc)
                with lock:
                    failed.append(f"t{i}-{j}")
            else:
                with lock:
                    acknowledged.append(rid)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert failed, "the first writes failed and said so"
    assert len(acknowledged) + len(failed) == 60
    on_disk = {r["id"] for r in log.read()}
    assert set(acknowledged) <= on_disk
    assert log.record("after", None, RESULT) in {r["id"] for r in log.read()}
