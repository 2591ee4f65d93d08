"""Append-only audit log of questions and answers (JSONL, one record per line).

Every record is flushed and fsync'ed before ``record`` returns, under a thread lock and a file
lock (several app processes may share one log). A crash mid-write leaves at most one truncated
last line, which ``read`` skips: earlier records are never lost. Feedback is appended as its own
record referring to the answer, never by rewriting the file.

The log holds questions and patient context, so it is created 0600 in a folder created 0700
(an existing wider file is narrowed on first write). ``prune`` is the one deliberate rewrite:
it drops records older than the retention period, atomically, under the same locks.
``export_jsonl(redact=True)`` writes a copy without patient fields for review outside the team.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import IO, Any

from filelock import FileLock, Timeout

from assistant.errors import AuditWriteError
from assistant.model import AnswerResult

__all__ = ["AuditLog", "PruneReport", "redact_record"]

_PRIVATE_DIR = 0o700
_PRIVATE_FILE = 0o600


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


@dataclass(frozen=True)
class PruneReport:
    """``removed`` answer/check/auth records older than the cutoff (with their feedback),
    ``unreadable`` torn or corrupt lines dropped with them, ``kept`` everything else."""

    kept: int
    removed: int
    unreadable: int
    cutoff: float


# What a redacted export drops: the patient context itself, and every text computed from it
# (a derived dose such as "144 mg/day" with "2 mg/kg/day x 72 kg" gives the weight away).
_DERIVED = "derived"


def redact_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without patient fields: ``patient`` becomes ``patient_given``; when a patient was
    given, the answer text, summary and derived numbers (which restate the patient's weight or
    genotype) are dropped; feedback comments (free text) are dropped. The question, status,
    user and the verdict of every corpus-supported number stay."""
    out = {k: v for k, v in record.items() if k != "patient"}
    if "patient" in record:
        out["patient_given"] = bool(record.get("patient"))
    if record.get("type") == "feedback":
        out.pop("comment", None)
        return out
    if not out.get("patient_given"):
        return out
    result = dict(record.get("result") or {})
    for key in ("answer", "summary", "note"):
        if key in result:
            result[key] = "[redacted: patient-specific]"
    claims = []
    for claim in result.get("claims") or []:
        if isinstance(claim, Mapping) and claim.get("status") == _DERIVED:
            claims.append({"status": _DERIVED, "redacted": True})
        elif isinstance(claim, Mapping):
            claims.append({k: v for k, v in claim.items() if k != "derivation"})
    if "claims" in result:
        result["claims"] = claims
    if "result" in out:
        out["result"] = result
    return out


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # held for any I/O on the log (append batch, prune)
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=10, mode=_PRIVATE_FILE)
        self._narrowed = False
        # Group commit: records waiting for a write, numbered in arrival order.
        self._cv = threading.Condition()
        self._queue: list[str] = []
        self._enqueued = 0
        self._committed = 0
        self._writing = False
        self._failed: deque[tuple[int, int, BaseException]] = deque(maxlen=256)

    def _ensure_private_dir(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            parent.parent.mkdir(parents=True, exist_ok=True)
            # mode= is masked by the umask, which can only narrow 0700 further.
            parent.mkdir(mode=_PRIVATE_DIR, exist_ok=True)

    def _open_append(self) -> IO[str]:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _PRIVATE_FILE)
        if not self._narrowed:
            # A log created by an older version (0644) is narrowed once; a file owned by
            # someone else cannot be, and that is reported by ``exposure``.
            try:
                if stat.S_IMODE(os.fstat(fd).st_mode) & 0o077:
                    os.fchmod(fd, _PRIVATE_FILE)
            except OSError:
                pass
            self._narrowed = True
        # backslashreplace: a lone surrogate (a broken client) becomes a JSON \uXXXX
        # escape instead of an exception that would lose the whole record.
        return os.fdopen(fd, "a", encoding="utf-8", errors="backslashreplace")

    def _append(self, record: dict[str, Any]) -> None:
        """Returns once the record is on disk (fsync'ed). Records arriving while another
        thread writes wait and go out together in the next write, under one fsync: with
        many concurrent requests the fsync, not the answer, would otherwise set the pace."""
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        with self._cv:
            self._queue.append(line)
            self._enqueued += 1
            mine = self._enqueued
            while self._writing and self._committed < mine:
                self._cv.wait()
            leader = self._committed < mine  # nobody writing and ours not out: write the batch
            if leader:
                self._writing = True
                batch, self._queue = self._queue, []
                first, last = self._committed + 1, self._enqueued
        if leader:
            error: BaseException | None = None
            try:
                self._write_lines(batch)
            except BaseException as exc:  # whatever it was, the waiters must not hang on it
                error = exc
            with self._cv:
                if error is not None:
                    self._failed.append((first, last, error))
                self._committed = last
                self._writing = False
                self._cv.notify_all()
            if error is not None and not isinstance(error, (OSError, Timeout)):
                raise error
        with self._cv:
            for start, end, failure in self._failed:
                if start <= mine <= end:
                    raise AuditWriteError(
                        f"Could not write the audit log at {self.path}: {failure}"
                    ) from failure

    def _write_lines(self, lines: list[str]) -> None:
        self._ensure_private_dir()
        with self._lock, self._file_lock:
            self._heal_tail()
            with self._open_append() as fh:
                fh.write("".join(lines))
                fh.flush()
                os.fsync(fh.fileno())

    def exposure(self) -> list[str]:
        """Why the log may be readable by other local users (empty when it is private)."""
        problems: list[str] = []
        for path, what in ((self.path.parent, "folder"), (self.path, "file")):
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except OSError:
                continue
            if mode & 0o077:
                problems.append(
                    f"the audit {what} {path} has mode {mode:04o}; "
                    f"it holds patient context, use {(_PRIVATE_DIR if what == 'folder' else _PRIVATE_FILE):04o}"
                )
        return problems

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

    def record(
        self,
        question: str,
        patient: Any,
        result: AnswerResult | Mapping[str, Any],
        *,
        user: str | None = None,
    ) -> str:
        """``user`` names who asked (the API token's name, the app's signed-in user); None
        when nobody signed in (a local CLI or a loopback-only app)."""
        record_id = uuid.uuid4().hex
        payload = result.to_json() if isinstance(result, AnswerResult) else _plain(result)
        self._append(
            {
                "type": "answer",
                "id": record_id,
                "ts": time.time(),
                "user": user,
                "question": question,
                "patient": _plain(patient),
                "result": payload,
            }
        )
        return record_id

    def record_check(
        self, question: str, patient: Any, verdict: Mapping[str, Any], *, user: str | None = None
    ) -> str:
        """A guard check of an answer written elsewhere (``POST /v1/check``)."""
        record_id = uuid.uuid4().hex
        self._append(
            {
                "type": "check",
                "id": record_id,
                "ts": time.time(),
                "user": user,
                "question": question,
                "patient": _plain(patient),
                "result": _plain(verdict),
            }
        )
        return record_id

    def auth_failure(self, *, method: str, path: str, client: str, reason: str) -> str:
        """A refused request, without its content: no body, no token, no query string."""
        record_id = uuid.uuid4().hex
        self._append(
            {
                "type": "auth_failure",
                "id": record_id,
                "ts": time.time(),
                "method": method,
                "path": path,
                "client": client,
                "reason": reason,
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
        return [rec for rec in self._lines() if rec is not None]

    def _lines(self) -> Iterator[dict[str, Any] | None]:
        """Each non-empty line as its record, or None when torn or corrupt."""
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError:
                    yield None
                    continue
                yield value if isinstance(value, dict) else None

    def prune(self, max_age_s: float, *, now: float | None = None) -> PruneReport:
        """Drop records older than ``max_age_s`` (and feedback on dropped answers).

        The survivors are written to a private temporary file beside the log and renamed over
        it while the locks are held, so a writer in this or another process appends either
        before the prune (and is judged by its age) or after it (to the new file): nothing
        recent is lost, and a crash mid-prune leaves the old log whole."""
        if max_age_s <= 0:
            raise ValueError("the retention period must be positive")
        cutoff = (time.time() if now is None else now) - max_age_s
        kept = removed = unreadable = 0
        try:
            with self._lock, self._file_lock:
                if not self.path.exists():
                    return PruneReport(0, 0, 0, cutoff)
                dropped: set[str] = set()
                fd, tmp = tempfile.mkstemp(prefix=".audit-prune-", dir=self.path.parent)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as out:
                        for rec in self._lines():
                            if rec is None:
                                unreadable += 1
                                continue
                            ts = rec.get("ts")
                            old = isinstance(ts, (int, float)) and ts < cutoff
                            orphan = (
                                rec.get("type") == "feedback" and rec.get("record_id") in dropped
                            )
                            if old or orphan:
                                removed += 1
                                if rec.get("id"):
                                    dropped.add(str(rec["id"]))
                                continue
                            out.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")
                            kept += 1
                        out.flush()
                        os.fsync(out.fileno())
                    os.replace(tmp, self.path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                self._fsync_dir()
        except (OSError, Timeout) as exc:
            raise AuditWriteError(f"Could not prune the audit log at {self.path}: {exc}") from exc
        return PruneReport(kept, removed, unreadable, cutoff)

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def export_jsonl(self, out: IO[str], *, redact: bool = False) -> int:
        """Every intact record as JSON lines on ``out`` (``redact``: see :func:`redact_record`);
        returns how many were written."""
        n = 0
        for rec in self.read():
            value = redact_record(rec) if redact else rec
            line = json.dumps(value, ensure_ascii=False, sort_keys=True)
            # A lone surrogate read back from the log becomes its JSON escape text, so any
            # UTF-8 stream can take the line.
            out.write(line.encode("utf-8", "backslashreplace").decode("utf-8") + "\n")
            n += 1
        return n

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
