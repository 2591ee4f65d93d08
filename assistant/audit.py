"""Append-only audit log of questions and answers (JSONL, one record per line).

Every record is flushed and fsync'ed before ``record`` returns, under a thread lock and a file
lock (several app processes may share one log). A crash mid-write leaves at most one truncated
last line, which ``read`` skips: earlier records are never lost. Feedback is appended as its own
record referring to the answer, never by rewriting the file.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from assistant.errors import AuditWriteError
from assistant.model import AnswerResult

__all__ = ["AuditLog"]


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    return str(value)  # Decimal and friends: exact text, never a float


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=10)

    def _append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock, self._file_lock:
                self._heal_tail()
                # backslashreplace: a lone surrogate (a broken client) becomes a JSON \uXXXX
                # escape instead of an exception that would lose the whole record.
                with open(self.path, "a", encoding="utf-8", errors="backslashreplace") as fh:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
        except (OSError, Timeout) as exc:
            raise AuditWriteError(f"Could not write the audit log at {self.path}: {exc}") from exc

    def _heal_tail(self) -> None:
        # After a crash mid-write the file may end without a newline; start the next record
        # on its own line so the torn one stays the only casualty.
        try:
            with open(self.path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() == 0:
                    return
                fh.seek(-1, os.SEEK_END)
                last = fh.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            with open(self.path, "ab") as out:
                out.write(b"\n")

    def record(self, question: str, patient: Any, result: AnswerResult | Mapping[str, Any]) -> str:
        record_id = uuid.uuid4().hex
        payload = result.to_json() if isinstance(result, AnswerResult) else _plain(result)
        self._append(
            {
                "type": "answer",
                "id": record_id,
                "ts": time.time(),
                "question": question,
                "patient": _plain(patient),
                "result": payload,
            }
        )
        return record_id

    def feedback(self, record_id: str, helpful: bool, comment: str = "") -> str:
        feedback_id = uuid.uuid4().hex
        self._append(
            {
                "type": "feedback",
                "id": feedback_id,
                "ts": time.time(),
                "record_id": record_id,
                "helpful": bool(helpful),
                "comment": comment,
            }
        )
        return feedback_id

    def read(self) -> list[dict[str, Any]]:
        """Every intact record in order; a torn or corrupt line is skipped, not fatal."""
        if not self.path.exists():
            return []
        records: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    records.append(value)
        return records

    def get(self, record_id: str) -> dict[str, Any] | None:
        for rec in self.read():
            if rec.get("id") == record_id and rec.get("type") == "answer":
                return rec
        return None

    def export_markdown(self, record_id: str) -> str:
        rec = self.get(record_id)
        if rec is None:
            raise KeyError(record_id)
        result = rec.get("result") or {}
        lines = [
            "# Dosewise answer (audit export)",
            "",
            f"- Record: `{record_id}`",
            f"- Time: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(rec.get('ts', 0)))}",
            f"- Status: {result.get('status', '')}",
            f"- Backend: {result.get('backend', '')}",
        ]
        if rec.get("patient"):
            lines.append(f"- Patient context: `{json.dumps(rec['patient'], sort_keys=True)}`")
        lines += ["", "## Question", "", str(rec.get("question", "")), "", "## Answer", ""]
        lines.append(str(result.get("answer", "")))
        claims = result.get("claims") or []
        if claims:
            lines += ["", "## Number checks", ""]
            for c in claims:
                ref = f" [{c['citation_n']}]" if c.get("citation_n") else ""
                lines.append(
                    f"- `{c.get('text')}`: {c.get('status')}{ref} {c.get('derivation', '')}".rstrip()
                )
        feedback = [
            r
            for r in self.read()
            if r.get("type") == "feedback" and r.get("record_id") == record_id
        ]
        if feedback:
            lines += ["", "## Feedback", ""]
            for f in feedback:
                verdict = "helpful" if f.get("helpful") else "not helpful"
                lines.append(f"- {verdict}: {f.get('comment', '')}".rstrip(": "))
        return "\n".join(lines) + "\n"

    # The contract in ARCHITECTURE.md names it ``export``.
    export = export_markdown
