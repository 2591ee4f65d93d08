"""Bearer tokens: shown once, stored only as salted hashes in a 0600 file, revoked for every
reader of the file, and the rule for when they are required."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import ApiConfigError, require_token_for
from tokens import TokenError, TokenStore, is_loopback_host, sign_in_required


def test_a_created_token_verifies_to_its_name_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "auth" / "tokens.json")
    a = store.create("pharmacy-ehr")
    b = store.create("dr.jones@ward-7")
    assert a != b and a.startswith("dw_")
    assert store.verify(a).user == "pharmacy-ehr"
    assert store.verify(b).user == "dr.jones@ward-7"
    raw = store.path.read_text(encoding="utf-8")
    for token in (a, b):
        assert token.split("_", 2)[2] not in raw
    records = json.loads(raw)["tokens"]
    assert len({r["salt"] for r in records}) == 2 and len({r["hash"] for r in records}) == 2
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize("token", ["", "dw_", "dw_zzzzzzzz_abc", "Bearer x", "dw_0000000_abc"])
def test_malformed_tokens_are_refused(tmp_path: Path, token: str) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    good = store.create("ehr")
    assert store.verify(token).user is None
    assert store.verify(good + "x").user is None
    assert store.verify(good[:-1]).user is None


def test_revocation_is_seen_by_another_store_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    worker = TokenStore(path)  # a running API worker
    token = TokenStore(path).create("ehr")  # `dosewise token create` in another process
    assert worker.verify(token).user == "ehr"
    TokenStore(path).revoke("ehr")
    verdict = worker.verify(token)
    assert verdict.user is None and "revoked" in verdict.reason
    assert [(t.name, t.active) for t in worker.list_tokens()] == [("ehr", False)]
    again = worker.create("ehr")  # the name is free again once revoked
    assert worker.verify(again).user == "ehr" and worker.verify(token).user is None


@pytest.mark.parametrize("name", ["", "has space", "-leading", "x" * 65, "a/b", "ünïcode"])
def test_bad_names_are_refused_with_a_message(tmp_path: Path, name: str) -> None:
    with pytest.raises(TokenError, match="token name"):
        TokenStore(tmp_path / "tokens.json").create(name)


def test_duplicate_active_name_and_unknown_revoke_are_errors(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    store.create("ehr")
    with pytest.raises(TokenError, match="revoke it first"):
        store.create("ehr")
    with pytest.raises(TokenError, match="No active token"):
        store.revoke("nobody")


def test_a_corrupt_token_file_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    token = TokenStore(path).create("ehr")
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenError, match="unreadable"):
        TokenStore(path).verify(token)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        (None, False),
        ("10.1.2.3", False),
        ("dosewise.hospital.example", False),
    ],
)
def test_only_loopback_addresses_count_as_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback
    assert sign_in_required(host) is not loopback
    assert sign_in_required(host, force=True)


def test_tokens_are_required_beyond_loopback_and_there_must_be_one(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.json")
    assert require_token_for("127.0.0.1", force=False, tokens=store) is False
    with pytest.raises(ApiConfigError, match="dosewise token create"):
        require_token_for("0.0.0.0", force=False, tokens=store)
    with pytest.raises(ApiConfigError, match="reverse proxy"):
        require_token_for("127.0.0.1", force=True, tokens=store)
    store.create("ehr")
    assert require_token_for("0.0.0.0", force=False, tokens=store) is True
    store.revoke("ehr")
    with pytest.raises(ApiConfigError):
        require_token_for("10.0.0.5", force=False, tokens=store)


def test_token_commands_create_list_and_revoke(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app

    path = tmp_path / "tokens.json"
    monkeypatch.setenv("DOSEWISE_TOKEN_FILE", str(path))
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "pharmacy-ehr"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert TokenStore(path).verify(token).user == "pharmacy-ehr"
    listed = runner.invoke(app, ["token", "list"])
    assert (
        "pharmacy-ehr" in listed.stdout and "active" in listed.stdout and token not in listed.stdout
    )
    assert runner.invoke(app, ["token", "create", "bad name"]).exit_code == 2
    assert runner.invoke(app, ["token", "revoke", "pharmacy-ehr"]).exit_code == 0
    assert TokenStore(path).verify(token).user is None
    assert "revoked" in runner.invoke(app, ["token", "list"]).stdout
    assert runner.invoke(app, ["token", "revoke", "pharmacy-ehr"]).exit_code == 2
