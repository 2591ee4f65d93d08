"""The Dosewise HTTP API (FastAPI on uvicorn): ``dosewise serve`` builds it from Settings.

``create_app(assistant, limits=..., audit=..., tokens=..., require_token=...)`` takes its
collaborators ready-made, so the CLI, the tests and the bench build it the same way::

    POST /v1/ask     {question, history?, patient?, audience?} -> the JSON of `dosewise ask --json`
    POST /v1/check   {question, answer, passages?, patient?}    -> the JSON of `dosewise check --json`
    GET  /v1/stats   the JSON of `dosewise stats --json`
    GET  /healthz    {"status": "ok"} (no token: for load balancers)
    GET  /openapi.json

Every answer and check is written to the audit log (with the token's name as ``user``) before
it is served; when the log cannot be written the request fails with 503 rather than serve an
answer nobody could trace. A refused request (401) is audited without its content.

No Swagger page: it loads its scripts from a CDN, and nothing here fetches anything at run
time. The OpenAPI document at /openapi.json describes every route and model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.audit import AuditLog
from assistant.chain import MAX_QUESTION_CHARS, Turn
from assistant.errors import AuditWriteError
from assistant.verdicts import drug_for_passages, passages_from_items, verdict_json
from guardrails import PatientInputError, check_answer, validate_patient
from tokens import TokenError, TokenStore, sign_in_required

__all__ = [
    "ApiConfigError",
    "AskRequest",
    "CheckRequest",
    "create_app",
    "patient_values",
    "require_token_for",
    "serve_in_thread",
]

log = logging.getLogger("dosewise.api")

AUDIT_HEADER = "X-Dosewise-Audit-Id"


class ApiConfigError(Exception):
    """The API cannot start as configured; the message says what to do."""


# --- request models: unknown fields are errors, never silently ignored ----------------------


class PatientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight_kg: float | str | None = Field(default=None, description="Patient weight in kg.")
    tpmt: str | None = Field(default=None, description="normal | intermediate | poor | unknown")
    nudt15: str | None = Field(default=None, description="normal | intermediate | poor | unknown")
    comedications: list[str] = Field(default_factory=list, max_length=50)
    egfr: float | str | None = Field(default=None, description="eGFR, mL/min/1.73 m².")
    crcl: float | str | None = Field(default=None, description="Creatinine clearance, mL/min.")
    age_years: float | str | None = Field(default=None, description="Age in years.")


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    drug: str | None = None
    indication: str | None = None
    uncovered_drugs: list[str] = Field(default_factory=list, max_length=20)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The dosing question.")
    history: list[str | HistoryTurn] = Field(
        default_factory=list,
        max_length=50,
        description="Earlier questions of the conversation, oldest first: a follow-up such as "
        "'and in pregnancy?' inherits their drug and indication.",
    )
    patient: PatientIn | None = None
    audience: Literal["clinician", "patient"] = "clinician"


class PassageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int | None = Field(default=None, description="Citation number; default: position from 1.")
    text: str
    doc_id: str = ""
    section: str = ""
    drugs: list[str] = Field(default_factory=list)
    indications: list[str] = Field(default_factory=list)
    doc_kind: str = ""


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS)
    answer: str = Field(description="The answer to check (Markdown citing passages as [n]).")
    passages: list[PassageIn] | None = Field(
        default=None, description="Default: retrieved from the index for the question."
    )
    patient: PatientIn | None = None


def patient_values(patient: PatientIn | None) -> dict[str, object] | None:
    """The patient as ``dosewise ask`` passes it (weight as text), None when nothing is given."""
    if patient is None:
        return None
    values: dict[str, object] = {
        "weight_kg": None if patient.weight_kg is None else str(patient.weight_kg),
        "tpmt": patient.tpmt,
        "nudt15": patient.nudt15,
        "comedications": tuple(patient.comedications),
    }
    # Kidney function and age only when given: the audit keeps what the client sent.
    for key in ("egfr", "crcl", "age_years"):
        value = getattr(patient, key)
        if value is not None:
            values[key] = str(value)
    return values if any(values.values()) else None


def _history(assistant: Any, items: Sequence[str | HistoryTurn]) -> tuple[Turn, ...]:
    # A client does not see which drug an answer was about, so a turn without one gets the
    # drug and indication its question names (the chain's follow-up rule does the rest).
    turns: list[Turn] = []
    for item in items:
        turn = HistoryTurn(question=item) if isinstance(item, str) else item
        if turn.drug or turn.uncovered_drugs:
            turns.append(Turn(turn.question, turn.drug, turn.indication,
                              uncovered_drugs=tuple(turn.uncovered_drugs)))  # fmt: skip
            continue
        resolved = assistant.resolve_turn(turn.question, history=tuple(turns))
        if turn.indication:
            resolved = replace(resolved, indication=turn.indication)
        turns.append(resolved)
    return tuple(turns)


# --- responses ------------------------------------------------------------------------------


class SafeJSONResponse(JSONResponse):
    """UTF-8 JSON that never fails on a lone surrogate a client sent (it becomes its JSON
    escape) and is never stored by a proxy or browser cache (it may hold patient context)."""

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code, **kwargs)
        self.headers.setdefault("Cache-Control", "no-store")

    def render(self, content: Any) -> bytes:
        text = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def _server_timing(t0: float, t1: float, t2: float) -> str:
    # Where a request's time went (the answer, then the fsync'ed audit write), for operators
    # and the bench: the rest of what a client waits is HTTP, JSON and queueing for a thread.
    return f"ask;dur={(t1 - t0) * 1000:.2f}, audit;dur={(t2 - t1) * 1000:.2f}"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _error(status: int, message: str, **extra: Any) -> SafeJSONResponse:
    return SafeJSONResponse({"error": message, **extra}, status_code=status)


def _validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    parts: list[str] = []
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = (err.get("ctx") or {}).get("error", "decode error")
            return f"The request body is not valid JSON ({reason}); send one JSON object."
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") == "missing":
            return 'The request body is empty; send one JSON object, e.g. {"question": "..."}.'
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    shown = "; ".join(parts[:5]) + (f" (and {len(parts) - 5} more)" if len(parts) > 5 else "")
    return f"Invalid request: {shown}."


class BodyLimit:
    """413 for a body over ``max_bytes``, whether it declares its length or streams: the body
    is read (at most ``max_bytes`` + one chunk) before the route sees it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        def too_big() -> SafeJSONResponse:
            return _error(413, f"The request body is larger than {self.max_bytes} bytes.")

        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await too_big()(scope, receive, send)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await too_big()(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TokenAuth:
    """Bearer tokens for every ``/v1/`` route. A refused request is answered 401 and audited by
    method, path, client address and reason only: its body is never read. The token's name
    travels to the route as ``request.state.user``."""

    def __init__(self, app: ASGIApp, tokens: TokenStore, audit: AuditLog, required: bool) -> None:
        self.app = app
        self.tokens = tokens
        self.audit = audit
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value.decode("latin-1")
        user: str | None = None
        if header is not None or self.required:
            scheme, _, value = (header or "").partition(" ")
            is_bearer = scheme.lower() == "bearer"
            try:
                verdict = self.tokens.verify(value.strip() if is_bearer else "")
            except TokenError as exc:  # fail closed: an unreadable store lets nobody in
                log.error("token store: %s", exc)
                await _error(503, "Sign-in is unavailable: the token store cannot be read.")(
                    scope, receive, send
                )
                return
            if verdict.user is None:
                reason = "missing token" if header is None else verdict.reason
                if header is not None and not is_bearer:
                    reason = "not a bearer token"
                client = scope.get("client")
                await run_in_threadpool(
                    self._audit_refusal,
                    str(scope.get("method", "")),
                    str(scope["path"]),
                    str(client[0]) if client else "",
                    reason,
                )
                response = _error(
                    401,
                    "A valid bearer token is required: Authorization: Bearer <token> "
                    "(tokens come from `dosewise token create`).",
                )
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
            user = verdict.user
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)

    def _audit_refusal(self, method: str, path: str, client: str, reason: str) -> None:
        try:
            self.audit.auth_failure(method=method, path=path, client=client, reason=reason)
        except AuditWriteError as exc:  # still refused; the operator sees why it went unlogged
            log.error("could not audit a refused request: %s", exc)


def _user(request: Request) -> str | None:
    return getattr(request.state, "user", None)


# --- the app --------------------------------------------------------------------------------


def require_token_for(host: str, *, force: bool, tokens: TokenStore) -> bool:
    """Whether requests need a token when listening on ``host``; ApiConfigError when they do
    and no active token exists (the API would accept nobody, or worse, be opened anyway)."""
    required = sign_in_required(host, force)
    if required:
        try:
            has_token = tokens.has_active()
        except TokenError as exc:
            raise ApiConfigError(str(exc)) from None
        if not has_token:
            where = "a reverse proxy (require_sign_in)" if force else f"{host or 'every interface'}"
            raise ApiConfigError(
                f"Listening on {where} needs bearer tokens, and {tokens.path} has no active "
                "token. Create one first: dosewise token create NAME"
            )
    return required


def _prune_loop(audit: AuditLog, retention_s: float, every_s: float, stop: threading.Event) -> None:
    while True:
        try:
            report = audit.prune(retention_s)
            if report.removed:
                log.info(
                    "audit retention: removed %d records older than the cutoff", report.removed
                )
        except Exception as exc:  # a failed prune is retried later; serving goes on
            log.warning("audit retention: prune failed: %s", exc)
        if stop.wait(every_s):
            return


def create_app(
    assistant: Any,
    *,
    limits: Any,
    audit: AuditLog,
    tokens: TokenStore,
    require_token: bool,
    max_body_bytes: int = 262_144,
    retention_s: float | None = None,
    prune_every_s: float = 6 * 3600.0,
    stats: Callable[[], Mapping[str, Any]] | None = None,
) -> FastAPI:
    """The API over one ``Assistant`` (shared by every request thread), one ``AuditLog`` and
    one ``TokenStore``. ``require_token``: every /v1 request needs ``Authorization: Bearer``;
    without it a token is optional (and, when given, must be valid: it names the user)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        pruner = None
        if retention_s:
            pruner = threading.Thread(
                target=_prune_loop,
                args=(audit, retention_s, prune_every_s, stop),
                name="dosewise-audit-prune",
                daemon=True,
            )
            pruner.start()
        try:
            yield
        finally:
            stop.set()
            if pruner is not None:
                pruner.join(timeout=10)

    app = FastAPI(
        title="Dosewise",
        summary="Drug-dosing answers whose every number is verified against its cited source.",
        version="1",
        docs_url=None,
        redoc_url=None,
        default_response_class=SafeJSONResponse,
        lifespan=lifespan,
    )
    # The last added runs first: a request without a valid token is refused before its body
    # is read or parsed.
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.add_middleware(TokenAuth, tokens=tokens, audit=audit, required=require_token)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> SafeJSONResponse:
        errors = list(exc.errors())
        # No "input": it would echo the client's question and patient back into error logs.
        detail = [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]
        return _error(422, _validation_message(errors), detail=detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        response = _error(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> SafeJSONResponse:
        response = _error(exc.status, exc.message)
        response.headers.update(exc.headers)
        return response

    def audited(write: Callable[[], str]) -> str:
        try:
            return write()
        except AuditWriteError as exc:
            log.error("%s", exc)
            # The client learns that, not where the log lives; the server log has the reason.
            raise ApiError(503, "Not served: the audit log could not be written.") from None

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/ask", tags=["answers"], response_model=None)
    def ask(body: AskRequest, request: Request) -> SafeJSONResponse:
        """Answer a dosing question; every number is verified before it is served. ``status``
        is verified, abstained, blocked or rejected (bad input: the answer says what to fix)."""
        user = _user(request)
        patient = patient_values(body.patient)
        t0 = time.perf_counter()
        try:
            result = assistant.ask(
                body.question,
                history=_history(assistant, body.history),
                patient=patient,
                audience=body.audience,
            )
        except Exception as exc:  # index unreachable, a backend failing: a message, not a crash
            log.exception("ask failed")
            raise ApiError(503, f"Dosewise could not answer: {exc}") from None
        t1 = time.perf_counter()
        record_id = audited(lambda: audit.record(body.question, patient, result, user=user))
        t2 = time.perf_counter()
        return SafeJSONResponse(
            result.to_json(),
            headers={AUDIT_HEADER: record_id, "Server-Timing": _server_timing(t0, t1, t2)},
        )

    @app.post("/v1/check", tags=["answers"], response_model=None)
    def check(body: CheckRequest, request: Request) -> SafeJSONResponse:
        """Run the dose guard on an answer written elsewhere: ``passed`` only when every number
        is supported by the passage it cites (or derived from one) and inside the dose limits."""
        user = _user(request)
        values = patient_values(body.patient)
        try:
            patient = validate_patient(**values) if values else None  # type: ignore[arg-type]
        except PatientInputError as exc:
            raise ApiError(422, str(exc)) from None
        if body.passages is not None:
            try:
                passages = passages_from_items(
                    [p.model_dump(exclude_none=True) for p in body.passages]
                )
            except ValueError as exc:
                raise ApiError(422, f"Unusable passages: {exc}") from None
            drug = drug_for_passages(body.question, passages)
        else:
            try:
                passages, drug = assistant.passages_for(body.question)
            except Exception as exc:
                log.exception("retrieval failed")
                raise ApiError(503, f"Dosewise could not retrieve passages: {exc}") from None
        verdict = verdict_json(check_answer(body.answer, passages, patient, limits, drug), drug)
        record_id = audited(lambda: audit.record_check(body.question, values, verdict, user=user))
        return SafeJSONResponse(verdict, headers={AUDIT_HEADER: record_id})

    @app.get("/v1/stats", tags=["service"], response_model=None)
    def stats_(_request: Request) -> SafeJSONResponse:
        """What the index holds: documents, chunks, per drug, generation and age."""
        try:
            info = stats() if stats is not None else assistant.index.stats()
        except Exception as exc:
            log.exception("stats failed")
            raise ApiError(503, f"The index cannot be read: {exc}") from None
        return SafeJSONResponse(dict(info))

    return app


@contextlib.contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, start_timeout_s: float = 30.0
) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server in a background thread; yields its base URL and
    stops it on exit (tests and the bench). ``port=0`` picks a free port."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="dosewise-api", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + start_timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
