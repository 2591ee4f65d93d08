"""Dose statements of every chunk, extracted at ingest and kept beside the vectors in SQLite.

SQLite because it is embedded, transactional and in the standard library. Rows are keyed by the
chunk's fingerprint (text + metadata), so a chunk's statements never change under it. An ingest
writes the statements of its new chunks *before* the Chroma generation flips, then records the
new generation's chunks as the live set and drops rows no live chunk holds; a crash between the
two leaves the previous live set intact, and every chunk the vectors can return has its rows.

``dosewise stats`` reads statements per role and the share with an unknown role from here; the
assistant asks which drugs have statements at all.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from guardrails.model import DoseStatement
from guardrails.statements import default_evidence, extract_statements
from ingest.model import Chunk

__all__ = ["StatementStore", "statements_for_chunk"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS statements (
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    drug TEXT,
    drugs TEXT NOT NULL,
    role TEXT NOT NULL,
    quantity TEXT NOT NULL,
    kind TEXT NOT NULL,
    indications TEXT NOT NULL,
    population TEXT NOT NULL,
    route TEXT NOT NULL,
    frequency TEXT,
    conditions TEXT NOT NULL,
    section TEXT NOT NULL,
    span_start INTEGER NOT NULL,
    span_end INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    citation TEXT NOT NULL,
    PRIMARY KEY (fingerprint, seq)
);
CREATE TABLE IF NOT EXISTS extracted (fingerprint TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS live (fingerprint TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS statements_drug ON statements (drug);
"""


def statements_for_chunk(chunk: Chunk) -> tuple[DoseStatement, ...]:
    """The chunk's statements, read with its document's drugs, indications and source kinds."""
    return extract_statements(
        chunk.text,
        doc_id=chunk.doc_id,
        section=chunk.section,
        drugs=tuple(chunk.drugs),
        indications=tuple(chunk.indications),
        evidence={s.id: s.kind for s in chunk.sources},
        default_evidence=default_evidence(chunk.doc_kind),
    )


class StatementStore:
    """``data_dir/statements.sqlite``: one connection per call, so threads may share it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._schema_ready = False
        # drug_counts is asked once per question: kept until the file changes (any write does).
        self._counts: tuple[tuple[int, int], dict[str, int]] | None = None

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> StatementStore:
        return cls(Path(data_dir) / "statements.sqlite")

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=30)
        if not self._schema_ready:
            con.executescript(_SCHEMA)
            self._schema_ready = True
        return con

    # -- writing (the ingest lock is held) -------------------------------------------------
    def missing(self, fingerprints: Iterable[str]) -> set[str]:
        """The fingerprints whose statements were never extracted."""
        wanted = set(fingerprints)
        with self._lock, self._connect() as con:
            have = {r[0] for r in con.execute("SELECT fingerprint FROM extracted")}
        return wanted - have

    def add(self, items: Sequence[tuple[str, Sequence[DoseStatement]]]) -> int:
        """Store each (fingerprint, statements) in one transaction; returns the rows written."""
        rows = [
            (fp, seq, st.id, st.source_id, st.drug, json.dumps(st.drugs), st.role.value,
             st.quantity.text, st.quantity.kind, json.dumps(st.indications), st.population,
             st.route, st.frequency, json.dumps(st.conditions), st.section, st.span[0], st.span[1],
             st.evidence, st.citation)
            for fp, statements in items
            for seq, st in enumerate(statements)
        ]  # fmt: skip
        with self._lock, self._connect() as con:
            con.executemany(
                "DELETE FROM statements WHERE fingerprint = ?", [(fp,) for fp, _ in items]
            )
            con.executemany(
                "INSERT INTO statements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
            )
            con.executemany(
                "INSERT OR IGNORE INTO extracted VALUES (?)", [(fp,) for fp, _ in items]
            )
        return len(rows)

    def set_live(self, generation: int | str, fingerprints: Iterable[str]) -> None:
        """The statements of exactly these chunks are the index's now; the rest are dropped."""
        with self._lock, self._connect() as con:
            con.execute("DELETE FROM live")
            con.executemany("INSERT OR IGNORE INTO live VALUES (?)", [(f,) for f in fingerprints])
            con.execute(
                "DELETE FROM statements WHERE fingerprint NOT IN (SELECT fingerprint FROM live)"
            )
            con.execute(
                "DELETE FROM extracted WHERE fingerprint NOT IN (SELECT fingerprint FROM live)"
            )
            con.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(generation),))

    # -- reading -----------------------------------------------------------------------------
    def _live_rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.path.exists():
            return []
        with self._lock, self._connect() as con:
            return list(con.execute(sql, args))

    def generation(self) -> str | None:
        rows = self._live_rows("SELECT value FROM meta WHERE key = 'generation'")
        return str(rows[0][0]) if rows else None

    def role_counts(self) -> dict[str, int]:
        rows = self._live_rows(
            "SELECT role, COUNT(*) FROM statements JOIN live USING (fingerprint) GROUP BY role"
        )
        return dict(sorted(((str(r), int(n)) for r, n in rows), key=lambda x: -x[1]))

    def drug_counts(self) -> dict[str, int]:
        """Statements per dosed drug (live chunks only)."""
        try:
            st = self.path.stat()
        except OSError:
            return {}
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._counts
        if cached is not None and cached[0] == stamp:
            return dict(cached[1])
        rows = self._live_rows(
            "SELECT drug, COUNT(*) FROM statements JOIN live USING (fingerprint) "
            "WHERE drug IS NOT NULL GROUP BY drug"
        )
        counts = {str(d): int(n) for d, n in rows}
        self._counts = (stamp, counts)
        return dict(counts)

    def stats(self) -> dict[str, Any]:
        roles = self.role_counts()
        total = sum(roles.values())
        return {
            "statements": total,
            "by_role": roles,
            "unknown_share": round(roles.get("unknown", 0) / total, 4) if total else 0.0,
            "dose_statements": sum(
                n
                for (role, n) in roles.items()
                if role in ("initial", "maintenance", "usual", "maximum")
            ),
            "drugs_with_statements": len(self.drug_counts()),
            "generation": self.generation(),
        }
