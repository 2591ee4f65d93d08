"""The HTTP API through a real uvicorn server on a loopback port (httpx client): answers equal
to the in-process ones and to `dosewise ask --json`, checks equal to `dosewise check --json`,
sign-in, bad JSON, oversized bodies, concurrent requests and a complete audit log."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api import AUDIT_HEADER, create_app, serve_in_thread
from assistant import Assistant
from assistant.audit import AuditLog
from assistant.model import AnswerResult
from guardrails import load_limits
from ingest.model import StoreConfig
from tokens import TokenStore

REPO = Path(__file__).resolve().parents[1]
LUPUS = "What is the azathioprine maintenance dose in lupus nephritis?"
MAX_BODY = 16_384

# (question, patient, audience): verified, patient-derived, pharmacogenomic, patient wording,
# out of corpus, empty and bad patient input (rejected).
CASES: list[tuple[str, dict[str, Any] | None, str]] = [
    (LUPUS, None, "clinician"),
    ("azathioprine dosing in rheumatoid arthritis mg/kg", {"weight_kg": 72}, "clinician"),
    ("How should azathioprine be dosed in a TPMT poor metabolizer?", {"tpmt": "poor"}, "clinician"),
    ("Methotrexate weekly dose in rheumatoid arthritis?", None, "patient"),
    ("What is the dose of pembrolizumab for melanoma?", None, "clinician"),
    ("", None, "clinician"),
    (LUPUS, {"weight_kg": "heavy"}, "clinician"),
]


@pytest.fixture(scope="module")
def data_dir(corpus_index: tuple[StoreConfig, Path]) -> Path:
    """The shared real-corpus index (collection "dosewise", where Settings looks), so the CLI
    run with DOSEWISE_DATA_DIR answers from the same index as the served app."""
    return corpus_index[1]


@pytest.fixture(scope="module")
def assistant(corpus_assistant: Assistant) -> Assistant:
    return corpus_assistant


@dataclass
class Server:
    url: str
    audit: AuditLog
    tokens: TokenStore
    token: str

    def post(
        self, path: str, body: Any = None, *, token: str | None = "default", **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {self.token if token == 'default' else token}"
        if body is not None:
            kw["json"] = body
        return httpx.post(self.url + path, headers=headers, timeout=60, **kw)


@pytest.fixture
def serve(assistant: Assistant, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``serve(require_token=True)`` starts the API on a free loopback port; all are stopped
    at teardown."""
    stack: list[Any] = []

    def start(*, require_token: bool = True, max_body: int = MAX_BODY) -> Server:
        n = len(stack)
        audit = AuditLog(tmp_path / f"audit-{n}" / "audit.jsonl")
        tokens = TokenStore(tmp_path / f"tokens-{n}.json")
        token = tokens.create("pharmacy-ehr")
        app = create_app(
            assistant,
            limits=load_limits(),
            audit=audit,
            tokens=tokens,
            require_token=require_token,
            max_body_bytes=max_body,
        )
        ctx = serve_in_thread(app)
        url = ctx.__enter__()
        stack.append(ctx)
        return Server(url, audit, tokens, token)

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def _comparable(data: dict[str, Any]) -> dict[str, Any]:
    """The answer without its timings (they differ between any two runs)."""
    out = json.loads(json.dumps(data, ensure_ascii=False))
    out.pop("timings_ms", None)
    return out


def _patient_arg(patient: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the API hands the assistant for this JSON patient (numbers as text, as the CLI)."""
    if patient is None:
        return None
    values = {"weight_kg": None, "tpmt": None, "nudt15": None, "comedications": ()}
    values.update(patient)
    if values["weight_kg"] is not None and not isinstance(values["weight_kg"], str):
        values["weight_kg"] = str(float(values["weight_kg"]))
    return values


def _in_process(
    assistant: Assistant, question: str, patient: dict[str, Any] | None, audience: str
) -> AnswerResult:
    return assistant.ask(question, patient=_patient_arg(patient), audience=audience)


def _body(question: str, patient: dict[str, Any] | None, audience: str) -> dict[str, Any]:
    body: dict[str, Any] = {"question": question, "audience": audience}
    if patient is not None:
        body["patient"] = patient
    return body


# --- answers ----------------------------------------------------------------------------------


def test_served_answers_equal_in_process_answers_and_are_audited(
    serve: Callable[..., Server], assistant: Assistant
) -> None:
    srv = serve()
    statuses = set()
    for question, patient, audience in CASES:
        res = srv.post("/v1/ask", _body(question, patient, audience))
        assert res.status_code == 200, res.text
        expected = _in_process(assistant, question, patient, audience)
        assert _comparable(res.json()) == _comparable(expected.to_json()), question
        statuses.add(expected.status)
        rec = srv.audit.get(res.headers[AUDIT_HEADER])
        assert rec is not None and rec["question"] == question
        assert rec["user"] == "pharmacy-ehr"
        assert rec["result"]["answer"] == expected.answer
        assert rec["patient"] == json.loads(json.dumps(_patient_arg(patient)))
    assert {"verified", "abstained", "rejected"} <= statuses
    derived = srv.post("/v1/ask", _body(*CASES[1])).json()
    assert any(c["status"] == "derived" for c in derived["claims"]), "the weight must be used"


def test_served_answer_is_the_json_of_dosewise_ask(
    serve: Callable[..., Server], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli import app as cli_app

    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(tmp_path / "cli-audit.jsonl"))
    monkeypatch.setenv("DOSEWISE_LLM_BACKEND", "none")
    srv = serve()
    res = CliRunner().invoke(
        cli_app, ["ask", CASES[1][0], "--weight-kg", "72", "--tpmt", "intermediate", "--json"]
    )
    assert res.exit_code == 0, res.output
    served = srv.post(
        "/v1/ask", {"question": CASES[1][0], "patient": {"weight_kg": 72, "tpmt": "intermediate"}}
    )
    assert _comparable(served.json()) == _comparable(json.loads(res.output))


def test_follow_up_history_inherits_the_drug_like_the_app(
    serve: Callable[..., Server], assistant: Assistant
) -> None:
    srv = serve()
    mtx = "Methotrexate weekly dose in rheumatoid arthritis?"
    first = assistant.ask(mtx)
    expected = assistant.ask("and in pregnancy?", history=[(mtx, first)])
    assert expected.drug == "methotrexate"
    for history in (
        [mtx],
        [{"question": mtx}],
        [{"question": "and then?", "drug": "methotrexate"}],
    ):
        res = srv.post("/v1/ask", {"question": "and in pregnancy?", "history": history})
        assert res.status_code == 200, res.text
        assert _comparable(res.json()) == _comparable(expected.to_json()), history
    alone = srv.post("/v1/ask", {"question": "and in pregnancy?"}).json()
    assert _comparable(alone) != _comparable(res.json()), (
        "without history the follow-up has no drug"
    )


def test_history_naming_an_uncovered_drug_keeps_the_follow_up_on_it(
    serve: Callable[..., Server],
) -> None:
    srv = serve()
    history = ["What is the azathioprine dose in lupus?", "and what about vancomycin?"]
    res = srv.post("/v1/ask", {"question": "and in children?", "history": history})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["status"] == "abstained" and "vancomycin" in body["answer"]
    assert "mg/kg/day" not in body["answer"]


def test_kidney_function_and_age_reach_the_answer(serve: Callable[..., Server]) -> None:
    srv = serve()
    res = srv.post("/v1/ask", {"question": "allopurinol starting dose for gout?",
                               "patient": {"egfr": 25, "age_years": 80}})  # fmt: skip
    assert res.status_code == 200, res.text
    assert res.json()["answer"].startswith("**For this patient (eGFR 25")
    bad = srv.post("/v1/ask", {"question": "allopurinol dose?", "patient": {"egfr": -3}})
    assert bad.status_code == 200 and bad.json()["status"] == "rejected"


def test_concurrent_requests_are_each_answered_correctly_and_all_audited(
    serve: Callable[..., Server], assistant: Assistant
) -> None:
    srv = serve()
    expected = {
        i: _comparable(_in_process(assistant, *case).to_json()) for i, case in enumerate(CASES)
    }
    jobs = [i % len(CASES) for i in range(42)]

    def one(i: int) -> tuple[int, int, dict[str, Any], str]:
        res = srv.post("/v1/ask", _body(*CASES[i]))
        return i, res.status_code, res.json(), res.headers.get(AUDIT_HEADER, "")

    with ThreadPoolExecutor(12) as pool:
        served = list(pool.map(one, jobs))
    assert all(code == 200 for _i, code, _b, _a in served)
    for i, _code, body, _audit_id in served:
        assert _comparable(body) == expected[i], CASES[i][0]
    answers = {r["id"]: r for r in srv.audit.read() if r["type"] == "answer"}
    assert len(answers) == len(jobs)
    assert {a for *_, a in served} == set(answers)
    for i, _code, body, audit_id in served:
        assert answers[audit_id]["question"] == CASES[i][0]
        assert answers[audit_id]["result"]["answer"] == body["answer"]


# --- checks -----------------------------------------------------------------------------------

PASSAGES = [
    {
        "n": 1,
        "text": "Azathioprine lupus nephritis maintenance: 2 mg/kg/day [@guide].",
        "drugs": ["azathioprine"],
    }
]


def _cli_check(
    tmp_path: Path, question: str, answer: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    from cli import app as cli_app

    a = tmp_path / "answer.md"
    a.write_text(answer, encoding="utf-8")
    res = CliRunner().invoke(
        cli_app, ["check", "--question", question, "--answer-file", str(a), "--json", *extra]
    )
    return res.exit_code, json.loads(res.output)


@pytest.mark.parametrize(
    "answer", ["Maintenance: 2 mg/kg/day [1].", "Maintenance: 6 mg/kg/day [1]."]
)
def test_check_with_passages_gives_the_verdict_of_dosewise_check(
    serve: Callable[..., Server], tmp_path: Path, answer: str
) -> None:
    srv = serve()
    question = "azathioprine dose in lupus nephritis?"
    p = tmp_path / "passages.json"
    p.write_text(json.dumps(PASSAGES), encoding="utf-8")
    code, cli_verdict = _cli_check(tmp_path, question, answer, "--passages", str(p))
    res = srv.post("/v1/check", {"question": question, "answer": answer, "passages": PASSAGES})
    assert res.status_code == 200, res.text
    assert res.json() == cli_verdict
    assert res.json()["passed"] is (code == 0)
    rec = [r for r in srv.audit.read() if r["type"] == "check"]
    assert len(rec) == 1 and rec[0]["user"] == "pharmacy-ehr" and rec[0]["result"] == cli_verdict


def test_check_against_the_index_gives_the_verdict_of_dosewise_check(
    serve: Callable[..., Server], data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    srv = serve()
    answer = srv.post("/v1/ask", {"question": LUPUS}).json()["answer"]
    for text in (answer, answer.replace("2 mg/kg", "9 mg/kg")):
        code, cli_verdict = _cli_check(tmp_path, LUPUS, text, "--weight-kg", "70")
        res = srv.post(
            "/v1/check", {"question": LUPUS, "answer": text, "patient": {"weight_kg": 70}}
        )
        assert res.status_code == 200, res.text
        assert res.json() == cli_verdict
        assert res.json()["passed"] is (code == 0)
    assert "9 mg/kg" in answer.replace("2 mg/kg", "9 mg/kg") and code == 1


def test_check_rejects_bad_patient_and_bad_passages_with_a_message(
    serve: Callable[..., Server],
) -> None:
    srv = serve()
    bad_weight = srv.post(
        "/v1/check", {"question": "q", "answer": "a", "patient": {"weight_kg": -3}}
    )
    assert bad_weight.status_code == 422 and "weight" in bad_weight.json()["error"].lower()
    no_text = srv.post("/v1/check", {"question": "q", "answer": "a", "passages": [{"n": 1}]})
    assert no_text.status_code == 422 and "passages.0.text" in no_text.json()["error"]


# --- sign-in ----------------------------------------------------------------------------------


def test_requests_without_a_valid_token_get_401_and_are_audited_without_content(
    serve: Callable[..., Server],
) -> None:
    srv = serve(require_token=True)
    secret_question = "azathioprine dose for Mrs Example, 61 kg?"
    body = {"question": secret_question, "patient": {"weight_kg": 61}}
    attempts = {
        "missing token": srv.post("/v1/ask", body, token=None),
        "malformed token": srv.post("/v1/ask", body, token="not-a-token"),
        "wrong secret": srv.post("/v1/ask", body, token=srv.token[:-4] + "AAAA"),
        "unknown token": srv.post("/v1/ask", body, token="dw_00000000_" + "x" * 43),
        "not a bearer token": srv.post(
            "/v1/ask", body, token=None, headers={"Authorization": "Basic dXNlcjpwdw=="}
        ),
    }
    for reason, res in attempts.items():
        assert res.status_code == 401, reason
        assert res.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in res.json()["error"].lower()
    assert srv.post("/v1/check", {"question": "q", "answer": "a"}, token=None).status_code == 401
    assert httpx.get(srv.url + "/v1/stats").status_code == 401
    # Bad JSON from a stranger is refused for the token, before its body is read.
    assert srv.post("/v1/ask", token=None, content=b"{not json").status_code == 401

    records = srv.audit.read()
    assert all(r["type"] == "auth_failure" for r in records)
    assert [r["reason"] for r in records[:5]] == list(attempts)
    assert {r["path"] for r in records} == {"/v1/ask", "/v1/check", "/v1/stats"}
    raw = srv.audit.path.read_text(encoding="utf-8")
    assert "Mrs Example" not in raw and "weight" not in raw and srv.token[-12:] not in raw
    assert all(
        set(r) == {"type", "id", "ts", "method", "path", "client", "reason"} for r in records
    )


def test_a_valid_token_names_the_user_and_a_revoked_one_stops_at_once(
    serve: Callable[..., Server],
) -> None:
    srv = serve(require_token=True)
    ok = srv.post("/v1/ask", {"question": LUPUS})
    assert ok.status_code == 200
    assert srv.audit.get(ok.headers[AUDIT_HEADER])["user"] == "pharmacy-ehr"  # type: ignore[index]
    assert (
        httpx.get(srv.url + "/v1/stats", headers={"Authorization": f"Bearer {srv.token}"}).json()[
            "chunks"
        ]
        > 0
    )
    # Revoked through another store on the same file, as `dosewise token revoke` does it.
    TokenStore(srv.tokens.path).revoke("pharmacy-ehr")
    refused = srv.post("/v1/ask", {"question": LUPUS})
    assert refused.status_code == 401
    assert srv.audit.read()[-1]["reason"] == "revoked token 'pharmacy-ehr'"


def test_on_loopback_without_required_tokens_a_given_token_must_still_be_valid(
    serve: Callable[..., Server],
) -> None:
    srv = serve(require_token=False)
    anonymous = srv.post("/v1/ask", {"question": LUPUS}, token=None)
    assert anonymous.status_code == 200
    assert srv.audit.get(anonymous.headers[AUDIT_HEADER])["user"] is None  # type: ignore[index]
    named = srv.post("/v1/ask", {"question": LUPUS})
    assert srv.audit.get(named.headers[AUDIT_HEADER])["user"] == "pharmacy-ehr"  # type: ignore[index]
    assert srv.post("/v1/ask", {"question": LUPUS}, token="dw_bad").status_code == 401


def test_health_and_openapi_need_no_token_and_describe_the_routes(
    serve: Callable[..., Server],
) -> None:
    srv = serve(require_token=True)
    assert httpx.get(srv.url + "/healthz").json() == {"status": "ok"}
    schema = httpx.get(srv.url + "/openapi.json").json()
    assert {"/v1/ask", "/v1/check", "/v1/stats", "/healthz"} <= set(schema["paths"])
    assert "AskRequest" in schema["components"]["schemas"]
    assert httpx.get(srv.url + "/docs").status_code == 404  # its scripts would come from a CDN


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"question": ', "not valid JSON"),
        (b"", "body is empty"),
        (b"[1, 2]", "valid dictionary"),
        (b'{"question": 12}', "question: Input should be a valid string"),
        (b'{"questoin": "dose?"}', "question: Field required"),
        (
            b'{"question": "dose?", "patient": {"weight": 70}}',
            "patient.weight: Extra inputs are not permitted",
        ),
        (b'{"question": "dose?", "audience": "nurse"}', "audience"),
    ],
)
def test_bad_json_gets_422_with_a_clear_message(
    serve: Callable[..., Server], content: bytes, expected: str
) -> None:
    srv = serve()
    res = srv.post("/v1/ask", content=content, headers={"Content-Type": "application/json"})
    assert res.status_code == 422, res.text
    assert expected in res.json()["error"]
    assert srv.audit.read() == [], "nothing was answered, so nothing is recorded"


def test_a_lone_surrogate_in_the_question_is_answered_and_audited(
    serve: Callable[..., Server],
) -> None:
    srv = serve()
    res = srv.post(
        "/v1/ask",
        content=b'{"question": "azathioprine dose \\ud800 in lupus?"}',
        headers={"Content-Type": "application/json"},
    )
    assert res.status_code == 200
    assert res.json()["status"] in ("verified", "abstained", "rejected")
    assert srv.audit.get(res.headers[AUDIT_HEADER]) is not None


def test_oversized_bodies_get_413_declared_or_streamed_and_the_server_carries_on(
    serve: Callable[..., Server],
) -> None:
    srv = serve(max_body=MAX_BODY)
    big = {"question": LUPUS, "history": ["x" * 1000] * 20}
    declared = srv.post("/v1/ask", big)
    assert declared.status_code == 413 and str(MAX_BODY) in declared.json()["error"]

    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(40):
            yield b"a" * 1000
        yield b'"}'

    streamed = srv.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert srv.post("/v1/ask", {"question": LUPUS}).status_code == 200
    assert [r["type"] for r in srv.audit.read()] == ["answer"]


def test_audit_failure_refuses_to_serve_the_answer(serve: Callable[..., Server]) -> None:
    srv = serve()
    srv.audit.path.parent.write_text("a file where the audit folder should be", encoding="utf-8")
    res = srv.post("/v1/ask", {"question": LUPUS})
    assert res.status_code == 503
    assert "audit log" in res.json()["error"]
    assert "answer" not in res.json()


# --- refusing to start ------------------------------------------------------------------------


def test_serve_refuses_a_network_address_without_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    from cli import app as cli_app

    started = threading.Event()
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.set())
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(tmp_path / "data"))
    for name in ("DOSEWISE_API_HOST", "DOSEWISE_API_PORT", "DOSEWISE_API_WORKERS"):
        monkeypatch.delenv(name, raising=False)  # `serve` sets them for its workers; restored here
    for argv, env in (
        (["serve", "--host", "0.0.0.0"], {}),
        (["serve"], {"DOSEWISE_REQUIRE_SIGN_IN": "true"}),
    ):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        res = CliRunner().invoke(cli_app, argv)
        assert res.exit_code == 2, res.output
        assert "dosewise token create" in res.output
    assert not started.is_set()


def test_a_retention_period_prunes_the_audit_log_while_serving(
    assistant: Assistant, tmp_path: Path
) -> None:
    import time

    audit = AuditLog(tmp_path / "audit" / "audit.jsonl")
    old = audit.record(
        "an old question",
        {"weight_kg": "80"},
        AnswerResult(status="verified", answer="a", summary="s"),
    )
    lines = [json.loads(x) for x in audit.path.read_text(encoding="utf-8").splitlines()]
    lines[0]["ts"] -= 40 * 86400
    audit.path.write_text(json.dumps(lines[0]) + "\n", encoding="utf-8")
    app = create_app(
        assistant,
        limits=load_limits(),
        audit=audit,
        tokens=TokenStore(tmp_path / "t.json"),
        require_token=False,
        retention_s=30 * 86400,
    )
    with serve_in_thread(app) as url:
        new = httpx.post(url + "/v1/ask", json={"question": LUPUS}, timeout=60).headers[
            AUDIT_HEADER
        ]
        deadline = time.monotonic() + 20
        while audit.get(old) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    assert audit.get(old) is None, "the 40-day-old record is pruned at start"
    assert audit.get(new) is not None
