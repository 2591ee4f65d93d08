"""Bearer tokens for the HTTP API and the app's sign-in: created and revoked with ``dosewise
token``, stored hashed in one JSON file (mode 0600) that every API worker and app replica reads.

A token reads ``dw_<id>_<secret>``: the id finds its record without trying every hash, the
secret (256 random bits from :mod:`secrets`) is never stored, only an HMAC-SHA256 of it keyed
with a per-token random salt. A random 256-bit secret cannot be guessed, so a slow password
hash would only add latency to every request; the salt keeps two stores from sharing hashes.

The file is re-read whenever it changes on disk (checked with one ``stat`` per lookup), so a
token revoked by the CLI stops working in running workers without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import re
import secrets
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

__all__ = [
    "TokenError",
    "TokenInfo",
    "TokenStore",
    "Verification",
    "is_loopback_host",
    "sign_in_required",
]

_PREFIX = "dw"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_ID_RE = re.compile(r"^[0-9a-f]{8}$")


class TokenError(Exception):
    """A token command that cannot be done (bad name, unknown name, unreadable store); the
    message is user-facing."""


@dataclass(frozen=True)
class TokenInfo:
    """What ``dosewise token list`` shows: never the secret, never the hash."""

    id: str
    name: str
    created: float
    revoked: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass(frozen=True)
class Verification:
    """``user`` is the token's name when the token is valid; otherwise ``reason`` says why
    (for the audit log only: a client is told nothing beyond 401)."""

    user: str | None
    reason: str = ""
    token_id: str = ""


def is_loopback_host(host: str | None) -> bool:
    """True only for addresses that cannot be reached from another machine. An empty host or
    ``0.0.0.0``/``::`` means every interface, so it is not loopback."""
    if not host:
        return False
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def sign_in_required(host: str | None, force: bool = False) -> bool:
    """Tokens are needed whenever the listener is reachable beyond this machine, and also on
    loopback when ``force`` is set (a reverse proxy on the same host makes loopback public)."""
    return force or not is_loopback_host(host)


def _digest(salt: str, secret: str) -> str:
    return hmac.new(bytes.fromhex(salt), secret.encode("utf-8"), hashlib.sha256).hexdigest()


class TokenStore:
    """``TokenStore(path)``: ``create(name) -> token`` (shown once), ``list_tokens()``,
    ``revoke(name)``, ``verify(token) -> Verification``. Safe across threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file_lock = FileLock(str(self.path) + ".lock", timeout=10, mode=0o600)
        self._stamp: tuple[int, int, int] | None = None
        self._records: list[dict[str, Any]] = []

    # -- reading ------------------------------------------------------------------------------
    def _load(self) -> list[dict[str, Any]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            with self._lock:
                self._stamp, self._records = None, []
            return []
        except OSError as exc:
            raise TokenError(f"Cannot read the token file {self.path}: {exc}") from exc
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        with self._lock:
            if stamp != self._stamp:
                self._records = self._parse()
                self._stamp = stamp
            return self._records

    def _parse(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            # Fail closed: an unreadable store lets nobody in, and says so.
            raise TokenError(f"The token file {self.path} is unreadable: {exc}") from exc
        tokens = data.get("tokens") if isinstance(data, dict) else None
        if not isinstance(tokens, list):
            raise TokenError(f"The token file {self.path} has no 'tokens' list.")
        return [
            t for t in tokens if isinstance(t, dict) and {"id", "name", "salt", "hash"} <= t.keys()
        ]

    def list_tokens(self) -> list[TokenInfo]:
        return [
            TokenInfo(
                id=str(t["id"]),
                name=str(t["name"]),
                created=float(t.get("created") or 0.0),
                revoked=None if t.get("revoked") is None else float(t["revoked"]),
            )
            for t in self._load()
        ]

    def has_active(self) -> bool:
        return any(info.active for info in self.list_tokens())

    def is_active(self, token_id: str) -> bool:
        """Whether the token with this id is still valid (a signed-in session asks on every
        page, so a revoked token ends its sessions too)."""
        return any(info.active and info.id == token_id for info in self.list_tokens())

    def verify(self, token: str | None) -> Verification:
        if not token:
            return Verification(None, "missing token")
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != _PREFIX or not _ID_RE.match(parts[1]) or not parts[2]:
            return Verification(None, "malformed token")
        records = self._load()
        for rec in records:
            if rec["id"] != parts[1]:
                continue
            if not hmac.compare_digest(_digest(str(rec["salt"]), parts[2]), str(rec["hash"])):
                return Verification(None, "wrong secret")
            if rec.get("revoked") is not None:
                return Verification(None, f"revoked token {rec['name']!r}")
            return Verification(str(rec["name"]), token_id=str(rec["id"]))
        return Verification(None, "unknown token")

    # -- writing ------------------------------------------------------------------------------
    def create(self, name: str) -> str:
        """A new token for ``name`` (a person, a system: it names the user in the audit log).
        The returned string is the only copy of the secret."""
        if not _NAME_RE.match(name or ""):
            raise TokenError(
                "A token name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
                f"letter or digit; got {name!r}."
            )
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        made = ""

        def add(records: list[dict[str, Any]]) -> None:
            if any(r["name"] == name and r.get("revoked") is None for r in records):
                raise TokenError(f"An active token named {name!r} exists; revoke it first.")
            ids = {r["id"] for r in records}
            token_id = secrets.token_hex(4)
            while token_id in ids:
                token_id = secrets.token_hex(4)
            records.append(
                {
                    "id": token_id,
                    "name": name,
                    "salt": salt,
                    "hash": _digest(salt, secret),
                    "created": time.time(),
                    "revoked": None,
                }
            )
            nonlocal made
            made = f"{_PREFIX}_{token_id}_{secret}"

        self._update(add)
        return made

    def revoke(self, name_or_id: str) -> int:
        """Revoke every active token with this name (or this id); returns how many. The record
        stays, so the audit log's user names keep their meaning."""
        count = 0

        def mark(records: list[dict[str, Any]]) -> None:
            nonlocal count
            for r in records:
                if r.get("revoked") is None and name_or_id in (r["name"], r["id"]):
                    r["revoked"] = time.time()
                    count += 1
            if not count:
                raise TokenError(f"No active token named {name_or_id!r}.")

        self._update(mark)
        return count

    def _update(self, change: Any) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._file_lock:
                records = [dict(r) for r in self._parse()]
                change(records)
                self._write(records)
        except Timeout as exc:
            raise TokenError(f"The token file {self.path} is locked by another process.") from exc
        except OSError as exc:
            raise TokenError(f"Cannot write the token file {self.path}: {exc}") from exc
        with self._lock:
            self._stamp = None  # re-read on the next lookup

    def _write(self, records: list[dict[str, Any]]) -> None:
        # Written beside the target and renamed over it: a reader sees the old or the new file,
        # never half of one. mkstemp creates the file 0600.
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"version": 1, "tokens": records}, fh, indent=1, sort_keys=True)
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
