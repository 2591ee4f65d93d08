"""``python -m bench.api``: the HTTP API under load, against the CLI process it replaces.

A real ``dosewise serve`` process (one worker, bearer tokens on) answers the benchmark questions
on loopback from 1, 8 and 32 concurrent clients, each level a bounded number of requests that
stops by itself, once with a question text never asked before (what a clinician sends: the
query is encoded) and once with the 20 questions repeated (the encoder's cache answers). Reported per level: latency p50/p95/max as each client saw it, throughput, and
errors; then the time the server takes from exec to ready, and what one question costs as a
fresh ``dosewise ask --json`` process (what an EHR integration had to do before). Every served
answer is compared with the in-process answer, and the audit log is counted afterwards.

Writes bench/api_results.json (``--out``). Clients and server share this machine's cores, so
the concurrent levels measure queueing on those cores, not a network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run_api_bench"]

REPO = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32)
START_TIMEOUT_S = 240.0
REQUEST_TIMEOUT_S = 120.0


def _comparable(answer: dict[str, Any]) -> dict[str, Any]:
    out = json.loads(json.dumps(answer, ensure_ascii=False))
    out.pop("timings_ms", None)
    return out


class ApiProcess:
    """``dosewise serve`` in a child process: started, waited for (bounded), always stopped."""

    def __init__(self, data: Path, audit: Path, port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.port = port
        self.log_path = log_path
        self.env = dict(
            os.environ,
            DOSEWISE_DATA_DIR=str(data),
            DOSEWISE_AUDIT_LOG=str(audit),
            DOSEWISE_REQUIRE_SIGN_IN="true",
            DOSEWISE_LLM_BACKEND="none",
            PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        )
        self.ready_s = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiProcess:
        import httpx

        cmd = [
            sys.executable,
            "-c",
            "import sys; from cli import app; sys.exit(app())",
            "serve",
            "--port",
            str(self.port),
        ]
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            while time.perf_counter() - t0 < START_TIMEOUT_S:
                if self._proc.poll() is not None:
                    raise RuntimeError(
                        f"dosewise serve exited {self._proc.returncode}: {self._tail()}"
                    )
                try:
                    if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                        self.ready_s = time.perf_counter() - t0
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            raise RuntimeError(
                f"dosewise serve not ready within {START_TIMEOUT_S:g} s: {self._tail()}"
            )
        except BaseException:
            self.__exit__()
            raise

    def _tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-800:] if self.log_path.exists() else ""

    def __exit__(self, *exc: object) -> None:
        from bench.server import stop_process

        proc, self._proc = self._proc, None
        stop_process(proc, timeout_s=20)


_fresh = iter(range(10**9))
_fresh_lock = threading.Lock()


def _new_text(question: str) -> str:
    """The question with a tag of letters never used before: a new text for the query encoder
    (whose cache would otherwise answer a repeat), and no word the vocabulary knows."""
    with _fresh_lock:
        n = next(_fresh)
    tag = ""
    while True:
        n, r = divmod(n, 26)
        tag += chr(ord("a") + r)
        if not n:
            break
    return f"{question} (ref zq{tag})"


def _level(
    url: str, token: str, questions: tuple[str, ...], clients: int, requests: int, *, new_text: bool
) -> dict[str, Any]:
    """``requests`` asks shared by ``clients`` threads (each with its own keep-alive client);
    each thread stops after its share, so the level ends by itself. ``new_text``: every
    request's question is a text never asked before (what a clinician sends)."""
    import httpx

    from bench.stats import summarize

    latencies: list[float] = []
    server_ms: dict[str, list[float]] = {"ask": [], "audit": []}
    errors: list[str] = []
    answers: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()
    shares = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as http:
            start.wait(timeout=60)
            for j in range(shares[i]):
                q = questions[(i * 7 + j) % len(questions)]
                if new_text:
                    q = _new_text(q)
                t0 = time.perf_counter()
                try:
                    res = http.post("/v1/ask", json={"question": q})
                    ms = (time.perf_counter() - t0) * 1000.0
                    with lock:
                        if res.status_code == 200:
                            latencies.append(ms)
                            answers.append((q, res.json()))
                            for part in res.headers.get("server-timing", "").split(","):
                                name, _, dur = part.strip().partition(";dur=")
                                if name in server_ms and dur:
                                    server_ms[name].append(float(dur))
                        else:
                            errors.append(f"HTTP {res.status_code}")
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(type(exc).__name__)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT_S * max(shares) + 60)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = dict(summarize(latencies))
    out.update(
        server_ask_p50_ms=summarize(server_ms["ask"])["p50_ms"],
        server_audit_p50_ms=summarize(server_ms["audit"])["p50_ms"],
    )
    out.update(
        clients=clients,
        requests=requests,
        served=len(latencies),
        errors=len(errors),
        error_kinds=sorted(set(errors)),
        wall_s=round(wall, 3),
        throughput_rps=round(len(latencies) / wall, 2) if wall > 0 else None,
    )
    out["_answers"] = answers
    return out


def run_api_bench(requests: int, cli_runs: int, work: Path, log: Any = print) -> dict[str, Any]:
    from assistant.audit import AuditLog
    from bench.questions import QUESTIONS
    from bench.sections import _assistant, cold_start_section
    from bench.server import free_port
    from bench.stats import summarize, time_calls
    from guardrails import load_limits
    from ingest.embeddings import Embedder
    from ingest.model import StoreConfig
    from ingest.pipeline import run_ingest
    from ingest.store import open_index
    from settings import Settings
    from tokens import TokenStore

    settings = Settings()
    corpus = (
        settings.corpus_dir if settings.corpus_dir.is_absolute() else REPO / settings.corpus_dir
    )
    data = work / "data"
    cfg = StoreConfig(path=str(data / "chroma"), collection="dosewise")
    log("indexing the corpus")
    embedder = Embedder.shared(settings.model_path)
    run_ingest(
        [corpus], cfg, embedder, chunk_size=settings.chunk_size, data_dir=data, progress=False
    )
    assistant = _assistant(
        open_index(cfg, embedder), embedder, load_limits(), settings.retrieval_k, data
    )
    questions = QUESTIONS
    log("in-process reference answers")
    expected = {q: _comparable(assistant.ask(q).to_json()) for q in questions}
    in_process = summarize(time_calls(assistant.ask, questions, 2))
    in_process_new = summarize(time_calls(lambda q: assistant.ask(_new_text(q)), questions, 2))

    token = TokenStore(data / "tokens.json").create("bench")
    audit_path = work / "audit" / "audit.jsonl"
    results: dict[str, Any] = {
        "in_process_warm_ask": in_process,
        "in_process_new_text_ask": in_process_new,
        "levels": {},
    }
    with ApiProcess(data, audit_path, free_port(), work / "serve.log") as server:
        results["server_ready_s"] = round(server.ready_s, 3)
        log(f"dosewise serve ready in {server.ready_s:.1f} s")
        # First pass: load what loads lazily; also the in-process comparison of every question.
        warm = _level(server.url, token, questions, 1, len(questions), new_text=False)
        mismatched = {q for q, a in warm.pop("_answers") if _comparable(a) != expected[q]}
        sent, served = warm["requests"], warm["served"]
        fresh_sample: list[tuple[str, dict[str, Any]]] = []
        for clients in LEVELS:
            results["levels"][str(clients)] = {}
            for mode in ("new", "repeat"):
                log(f"{clients} concurrent client(s), {requests} requests, {mode} question text")
                level = _level(
                    server.url, token, questions, clients, requests, new_text=mode == "new"
                )
                answers_ = level.pop("_answers")
                if mode == "repeat":
                    mismatched |= {q for q, a in answers_ if _comparable(a) != expected[q]}
                else:
                    fresh_sample += answers_[:: max(1, len(answers_) // 4)][:4]
                sent += level["requests"]
                served += level["served"]
                results["levels"][str(clients)][mode] = level
    # New texts are checked on a sample, asked again in this process after the server's run.
    mismatched |= {
        q for q, a in fresh_sample if _comparable(a) != _comparable(assistant.ask(q).to_json())
    }
    results["new_text_checked"] = len(fresh_sample)
    answers = [r for r in AuditLog(audit_path).read() if r.get("type") == "answer"]
    results["answers_equal_in_process"] = not mismatched
    results["mismatched_questions"] = sorted(mismatched)
    results["audit"] = {
        "requests_sent": sent,
        "answers_served": served,
        "answer_records": len(answers),
        "complete": len(answers) == served,
        "users": sorted({str(r.get("user")) for r in answers}),
    }
    log(f"CLI process per question, {cli_runs} run(s)")
    results["cli_spawn"] = cold_start_section(REPO, data, corpus, questions[0], cli_runs)
    return results


def _table(results: dict[str, Any]) -> str:
    rows = [
        "| measure | p50 / p95 / max (ms) | server p50: ask / audit (ms) | throughput | errors |",
        "|---|---|---|---|---|",
    ]
    ref = results["in_process_warm_ask"]
    rows.append(
        f"| in-process warm ask, repeated questions (no HTTP, no audit) | {ref['p50_ms']:.1f} / {ref['p95_ms']:.1f} / {ref['max_ms']:.1f} | | | |"
    )
    ref = results["in_process_new_text_ask"]
    rows.append(
        f"| in-process warm ask, new question text (no HTTP, no audit) | {ref['p50_ms']:.1f} / {ref['p95_ms']:.1f} / {ref['max_ms']:.1f} | | | |"
    )
    for clients, modes in results["levels"].items():
        for mode, lv in modes.items():
            rows.append(
                f"| API warm ask, {clients} concurrent client(s), {lv['requests']} requests, "
                f"{'new' if mode == 'new' else 'repeated (cached encode)'} question text | "
                f"{lv['p50_ms']:.1f} / {lv['p95_ms']:.1f} / {lv['max_ms']:.1f} | "
                f"{lv['server_ask_p50_ms']:.1f} / {lv['server_audit_p50_ms']:.1f} | "
                f"{lv['throughput_rps']} req/s | {lv['errors']} |"
            )
    cli = results["cli_spawn"]
    rows.append(
        f"| `dosewise ask --json` as a fresh process (first answer) | "
        f"{cli['first_answer_s'] * 1000:.0f} (best of {cli['runs']}) | | | |"
    )
    rows.append(
        f"| `dosewise serve` exec to ready (once per start) | {results['server_ready_s'] * 1000:.0f} | | | |"
    )
    audit = results["audit"]
    rows.append("")
    rows.append(
        f"answers equal to in-process: {results['answers_equal_in_process']}; audit: "
        f"{audit['answer_records']} answer records for {audit['answers_served']} served answers "
        f"(complete: {audit['complete']})"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(
        prog="python -m bench.api",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=96, help="requests per concurrency level")
    parser.add_argument(
        "--cli-runs", type=int, default=2, help="fresh `dosewise ask` processes to time"
    )
    parser.add_argument("--quick", action="store_true", help="24 requests per level, one CLI run")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "api_results.json")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep the index and logs here")
    args = parser.parse_args(argv)
    requests = 24 if args.quick else max(1, args.requests)
    cli_runs = 1 if args.quick else max(1, args.cli_runs)

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="dosewise-api-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        results = run_api_bench(
            requests, cli_runs, work, log=lambda m: print(f"bench.api: {m}", file=sys.stderr)
        )
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    results["meta"] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - t0, 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "command": "python -m bench.api"
        + (" --quick" if args.quick else f" --requests {requests}"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(_table(results))
    print(f"wrote {args.out}")
    ok = results["answers_equal_in_process"] and results["audit"]["complete"]
    errors = sum(lv["errors"] for modes in results["levels"].values() for lv in modes.values())
    return 0 if ok and not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
