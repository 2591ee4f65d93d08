"""The Streamlit app asks for a token when it listens beyond loopback (or when
DOSEWISE_REQUIRE_SIGN_IN is set for a reverse proxy): nothing is answered before sign-in, a bad
token is audited without its text, and the signed-in user is named in every audit record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from settings import Settings
from tokens import TokenStore

APP = Path(__file__).resolve().parents[1] / "app.py"
FIXTURE_CORPUS = APP.parent / "tests" / "fixtures" / "corpus"
TIMEOUT = 120


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    from ingest import run_ingest

    data = tmp_path_factory.mktemp("signin") / "data"
    settings = Settings(data_dir=data)
    run_ingest(
        sorted(FIXTURE_CORPUS.glob("*.md")),
        settings.store,
        embedder,
        chunk_size=settings.chunk_size,
        data_dir=data,
        progress=False,
    )
    return data


@pytest.fixture
def env(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, Path]]:
    paths = {"tokens": tmp_path / "tokens.json", "audit": tmp_path / "audit" / "audit.jsonl"}
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_TOKEN_FILE", str(paths["tokens"]))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(paths["audit"]))
    monkeypatch.setenv("DOSEWISE_LLM_BACKEND", "none")
    monkeypatch.setenv("DOSEWISE_REQUIRE_SIGN_IN", "true")
    yield paths


def _run() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x]


def test_without_any_token_the_app_says_how_to_create_one(env: dict[str, Path]) -> None:
    at = _run()
    assert any("dosewise token create" in e.value for e in at.error)
    assert not at.chat_input and not at.text_input


def test_nothing_is_answered_before_sign_in_and_a_bad_token_is_audited(
    env: dict[str, Path],
) -> None:
    token = TokenStore(env["tokens"]).create("dr.jones")
    at = _run()
    assert not at.chat_input, "no question box before sign-in"
    at.text_input[0].set_value(token[:-3] + "xyz")
    at.button[0].click().run()
    assert any("not valid" in e.value for e in at.error)
    assert not at.chat_input
    (failure,) = _records(env["audit"])
    assert failure["type"] == "auth_failure" and failure["reason"] == "wrong secret"
    assert token[-20:] not in env["audit"].read_text(encoding="utf-8")


def test_signed_in_user_is_named_in_the_audit_and_revocation_signs_out(
    env: dict[str, Path],
) -> None:
    store = TokenStore(env["tokens"])
    token = store.create("dr.jones")
    at = _run()
    at.text_input[0].set_value(token)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert at.chat_input, "signed in: the question box is there"
    at.chat_input[0].set_value("What is the methotrexate dose in rheumatoid arthritis?").run()
    assert not at.exception, at.exception
    answers = [r for r in _records(env["audit"]) if r["type"] == "answer"]
    assert len(answers) == 1 and answers[0]["user"] == "dr.jones"
    store.create("dr.smith")  # someone else can still sign in, so the form is shown
    store.revoke("dr.jones")
    at.run()
    assert not at.chat_input and at.text_input, "a revoked token ends the session"


def test_listening_on_every_interface_requires_sign_in_without_the_setting(
    env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSEWISE_REQUIRE_SIGN_IN", "false")
    TokenStore(env["tokens"]).create("dr.jones")
    assert _run().chat_input, "on loopback (the repository's config) no sign-in is asked"
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    try:
        at = _run()
    finally:
        st_config.set_option("server.address", before)
    assert not at.chat_input and at.text_input
