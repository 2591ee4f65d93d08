"""One function per benchmark section. Each returns a plain dict that goes into results.json."""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.stats import Stopwatch, rss_mb, summarize, time_calls
from ingest.model import Chunk, StoreConfig

__all__ = [
    "STAGES",
    "query_encode_section",
    "ask_latency",
    "baseline_section",
    "cold_start_section",
    "dense_latency",
    "embedding_section",
    "guard_section",
    "scale_section",
    "server_section",
]

STAGES = ("prepare", "lexical", "dense", "fusion", "compose", "guard")
# "other": the measured ask minus the stages above (LangChain runnable plumbing, the route check,
# building the result), so the split adds up to the whole.
OTHER = "other"
_MARKER = re.compile(r"\s*\[@[^\]]*\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])|\n+")
Log = Callable[[str], None]


def _assistant(index: Any, embedder: Any, limits: Any, k: int, data_dir: Path) -> Any:
    from assistant.chain import Assistant

    return Assistant(index, embedder, limits, k=k, data_dir=data_dir)


# --- embedding vs ingest ---------------------------------------------------------------------


def embedding_section(
    embedder: Any,
    corpus_dir: Path,
    chunks: Sequence[Chunk],
    chunk_size: int,
    data_dirs: Sequence[Path],
    collection: str,
) -> tuple[dict[str, Any], list[list[float]]]:
    """Raw ``Embedder.encode`` over the corpus chunks vs ``run_ingest`` into fresh stores (one
    per entry of ``data_dirs``); both with the model already loaded, so the ratio is pipeline
    overhead only. Returns the raw vectors too, so later sections never re-encode the corpus."""
    from ingest.chunking import embedding_text
    from ingest.pipeline import run_ingest

    texts = [embedding_text(c) for c in chunks]
    embedder.encode(texts[:8])  # warm-up: the first batch pays for lazy initialisation
    raw: list[float] = []
    vectors: list[list[float]] = []
    ingest_rates: list[float] = []
    ingest_seconds: list[float] = []
    # Interleaved, so a change in machine load hits both measurements alike.
    for data in data_dirs:
        with Stopwatch() as sw:
            vectors = embedder.encode(texts)
        raw.append(len(texts) / sw.seconds)
        cfg = StoreConfig(path=str(data / "chroma"), collection=collection)
        report = run_ingest([corpus_dir], cfg, embedder, chunk_size=chunk_size, data_dir=data, progress=False)
        written = report.chunks_added + report.chunks_updated
        ingest_rates.append(written / report.seconds)
        ingest_seconds.append(report.seconds)
    raw_rate = sorted(raw)[len(raw) // 2]
    ingest_rate = sorted(ingest_rates)[len(ingest_rates) // 2]
    return {
        "chunks": len(texts),
        "rounds": len(data_dirs),
        "batch_size": int(getattr(embedder, "batch_size", 0)),
        "raw_encode_chunks_per_s": round(raw_rate, 2),
        "raw_encode_each": [round(x, 2) for x in raw],
        "ingest_chunks_per_s": round(ingest_rate, 2),
        "ingest_each": [round(x, 2) for x in ingest_rates],
        "ingest_seconds": round(sorted(ingest_seconds)[len(ingest_seconds) // 2], 3),
        "ratio": round(ingest_rate / raw_rate, 3),
    }, vectors


def query_encode_section(embedder: Any, questions: Sequence[str], repeats: int) -> dict[str, Any]:
    """One-question encode latency with torch's default intra-op threads and with one thread:
    on a shared machine OpenMP workers spin-wait on each other and a short query pays for it."""
    import torch

    default = torch.get_num_threads()
    out: dict[str, Any] = {"torch_threads_default": default}
    try:
        for label, n in (("default_threads", default), ("one_thread", 1)):
            torch.set_num_threads(n)
            embedder.encode_query(questions[0])
            out[label] = summarize(time_calls(embedder.encode_query, list(questions), repeats))
    finally:
        torch.set_num_threads(default)
    return out


# --- warm ask ----------------------------------------------------------------------------------


def _record(result: Any, ms: float, totals: list[float], stages: dict[str, list[float]], statuses: Counter[str]) -> None:
    totals.append(ms)
    statuses[result.status] += 1
    timed = 0.0
    for s in STAGES:
        if s in result.timings_ms:
            stages[s].append(float(result.timings_ms[s]))
            timed += float(result.timings_ms[s])
    stages[OTHER].append(max(0.0, ms - timed))


def _ask_summary(totals: list[float], stages: dict[str, list[float]], statuses: Counter[str]) -> dict[str, Any]:
    return {
        "latency": summarize(totals),
        "stages": {s: summarize(v) for s, v in stages.items()},
        "statuses": dict(statuses),
    }


def ask_latency(assistant: Any, questions: Sequence[str], rounds: int) -> dict[str, Any]:
    """Warm ``ask``: one untimed pass first (lexical index, vocabulary), then ``rounds`` passes."""
    return ask_latency_ab({"a": assistant.ask}, questions, rounds)["a"]


def ask_latency_ab(
    systems: dict[str, Callable[[str], Any]], questions: Sequence[str], rounds: int
) -> dict[str, dict[str, Any]]:
    """Several systems on the same questions, interleaved question by question, so a change in
    machine load (other processes share the cores) hits all of them alike."""
    for q in questions:
        for ask in systems.values():
            ask(q)
    acc: dict[str, tuple[list[float], dict[str, list[float]], Counter[str]]] = {
        name: ([], {s: [] for s in (*STAGES, OTHER)}, Counter()) for name in systems
    }
    for _ in range(rounds):
        for q in questions:
            for name, ask in systems.items():
                t0 = time.perf_counter()
                result = ask(q)
                ms = (time.perf_counter() - t0) * 1000.0
                totals, stages, statuses = acc[name]
                if hasattr(result, "timings_ms"):
                    _record(result, ms, totals, stages, statuses)
                else:
                    totals.append(ms)
    return {name: _ask_summary(*acc[name]) for name in systems}


def dense_latency(index: Any, embedder: Any, questions: Sequence[str], rounds: int, k: int) -> dict[str, Any]:
    """Dense-only retrieval (embed the question + one Chroma query), the floor under ``ask``."""
    encode = time_calls(embedder.encode_query, list(questions), 1)
    return {
        "latency": summarize(
            time_calls(lambda q: index.query(embedder.encode_query(q), k), list(questions), rounds)
        ),
        "encode_query": summarize(encode),
    }


# --- guard -------------------------------------------------------------------------------------


def _guard_material(chunks: Sequence[Chunk]) -> tuple[list[Any], str, str, str]:
    """Four real passages rich in doses, a short answer and a ~300-word answer built from their
    sentences the way the composer builds one: the sentence, then its ``[n]``."""
    from guardrails import Passage, parse_quantities

    def doses(c: Chunk) -> int:
        return sum(1 for q in parse_quantities(c.text) if q.kind == "dose")

    ranked = sorted(chunks, key=lambda c: (-doses(c), c.doc_id, c.start))
    top = [c for c in ranked if c.drugs][:4]
    drug = top[0].drugs[0]
    passages = [
        Passage(n=i, text=c.text, doc_id=c.doc_id, section=c.section, drugs=c.drugs)
        for i, c in enumerate(top, start=1)
    ]
    sentences: list[str] = []
    for p in passages:
        for s in _SENTENCE.split(p.text):
            s = s.strip().lstrip("#-*| ").strip()
            if len(s) > 30 and any(ch.isdigit() for ch in _MARKER.sub("", s)):
                sentences.append(f"{_MARKER.sub('', s).rstrip('. ')} [{p.n}].")
    short = sentences[0]
    long_parts: list[str] = []
    while sum(len(x.split()) for x in long_parts) < 300 and sentences:
        long_parts.append(sentences[len(long_parts) % len(sentences)])
        if len(long_parts) > 200:
            break
    return passages, short, " ".join(long_parts), drug


def _tag(i: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = letters[i % 26]
    while i := i // 26:
        out += letters[i % 26]
    return out


def guard_section(
    chunks: Sequence[Chunk], limits: Any, repeats: int, rounds: int = 5
) -> dict[str, Any]:
    """Guard latency on a short and a ~300-word answer: ``rounds`` rounds of ``repeats`` new
    texts each. p50/p95 are over every call; ``round_p50_ms`` (each round's p50) shows how much
    this shared machine drifts while the section runs."""
    from guardrails import check_answer

    passages, short, long, drug = _guard_material(chunks)
    out: dict[str, Any] = {"passages": len(passages), "drug": drug, "rounds": rounds}
    for name, answer in (("short", short), ("long", long)):
        verdict = check_answer(answer, passages, None, limits, drug)  # warm-up and verdict
        # The guard caches parses by text: every timed answer is a new text (a digit-free tag),
        # so the answer is parsed each time as a new one would be; passages stay warm, as in use.
        times: list[float] = []
        round_p50: list[float] = []
        for r in range(rounds):
            fresh = [f"{answer} Reviewed {_tag(r * repeats + i)}." for i in range(repeats)]
            got = time_calls(lambda a: check_answer(a, passages, None, limits, drug), fresh, 1)
            times += got
            round_p50.append(summarize(got)["p50_ms"])
        out[name] = {
            **summarize(times),
            "round_p50_ms": round_p50,
            "words": len(answer.split()),
            "claims": len(verdict.claims),
            "verified": verdict.verified_count,
            "passed": bool(verdict.passed),
        }
    return out


# --- plain LangChain chain ---------------------------------------------------------------------


def baseline_section(
    corpus_dir: Path, embedder: Any, work: Path, questions: Sequence[str], rounds: int, assistant: Any
) -> dict[str, Any]:
    """Our warm ask against the plain LangChain chain on the same corpus and questions,
    interleaved."""
    from evals.baseline import Baseline

    files = sorted(Path(corpus_dir).glob("*.md"))
    base = Baseline.build(files, embedder.as_langchain(), work / "baseline")
    both = ask_latency_ab({"ours": assistant.ask, "plain": base.ask}, questions, rounds)
    ours, plain = both["ours"]["latency"], both["plain"]["latency"]
    return {
        "chain": "evals.baseline.Baseline: RecursiveCharacterTextSplitter 1000/200 + Chroma + similarity_search k=4",
        "plain": plain,
        "ours": ours,
        "ours_stages": both["ours"]["stages"],
        "ratio_p50": round(ours["p50_ms"] / plain["p50_ms"], 3),
        "ratio_p95": round(ours["p95_ms"] / plain["p95_ms"], 3),
    }


# --- scale -------------------------------------------------------------------------------------


def scale_section(
    embedder: Any,
    limits: Any,
    real_pairs: Sequence[tuple[Chunk, Sequence[float]]],
    sizes: Sequence[int],
    work: Path,
    cache_dir: Path,
    questions: Sequence[str],
    rounds: int,
    k: int,
    log: Log,
    pool_limit: int | None = None,
) -> dict[str, Any]:
    """Grow one store (the real corpus chunks with their real vectors, then synthetic chunks) to
    each size, then measure ask and dense-only latency and RSS at that size.

    The corpus generation is written by the store's generation writer; each size then appends
    its new synthetic chunks to that active generation, with the records the writer would
    write (``chunk_to_metadata``). Writing a fresh generation per size instead re-copied every
    earlier chunk (11k extra inserts on the way to 100k, ~10% of the section)."""
    from bench.synthetic import VECTOR_METHOD, SyntheticCorpus, build_pool
    from ingest.store import open_index

    with Stopwatch() as sw:
        pool = build_pool([c for c, _ in real_pairs], embedder, cache_dir, limit=pool_limit)
    synth = SyntheticCorpus(pool)
    data = work / "scale"
    cfg = StoreConfig(path=str(data / "chroma"), collection="dosewise")
    index = open_index(cfg, embedder)
    index.write_generation([], real_pairs, documents=len({c.doc_id for c, _ in real_pairs}))
    index = open_index(cfg, embedder)
    real = index.count()
    made = 0
    points: list[dict[str, Any]] = []
    for size in sorted(set(sizes)):
        want = max(0, size - real - made)
        with Stopwatch() as gen_sw:
            pairs = synth.take(made, made + want)
        log(f"scale: writing {real + made + len(pairs)} chunks ({len(pairs)} new)")
        with Stopwatch() as build_sw:
            _append(index, pairs)
        made += want
        del pairs
        index = open_index(cfg, embedder)
        total = index.count()
        log(f"scale: {total} chunks written in {build_sw.seconds:.1f} s; measuring (RSS {rss_mb():.0f} MB)")
        assistant = _assistant(index, embedder, limits, k, data / f"data-{size}")
        with Stopwatch() as first_sw:
            assistant.ask(questions[0])  # builds the lexical index and vocabulary at this size
        asks = ask_latency(assistant, questions, rounds)
        dense = dense_latency(index, embedder, questions, rounds, k)
        points.append(
            {
                "chunks": total,
                "synthetic_generate_s": round(gen_sw.seconds, 3),
                "store_write_s": round(build_sw.seconds, 3),
                "store_write_new_chunks": want,
                "store_write_chunks_per_s": round(want / build_sw.seconds, 1) if want else None,
                "first_ask_s": round(first_sw.seconds, 3),
                "ask": asks,
                "dense_only": dense,
                "rss_mb": rss_mb(),
            }
        )
        del assistant
        gc.collect()
    return {
        "vectors": VECTOR_METHOD,
        "sentence_pool": len(pool.sentences),
        "sentence_cache_hit": pool.cache_hit,
        "sentence_pool_s": round(sw.seconds, 3),
        "real_chunks": real,
        "points": points,
    }


def _append(index: Any, pairs: Sequence[tuple[Chunk, Sequence[float]]]) -> None:
    """Add (chunk, vector) pairs to the index's active generation, in the largest batches
    Chroma accepts (the generation writer's own batches are sized for crash safety)."""
    from ingest.store import chunk_to_metadata

    if not pairs:
        return
    # The store's own handle on its active collection: a second client on the same path
    # would conflict with this one's settings.
    collection = index._collection
    if collection is None:
        raise RuntimeError("the scale store has no active generation to grow")
    batch = max(1, int(index._client.get_max_batch_size()))
    for start in range(0, len(pairs), batch):
        group = pairs[start : start + batch]
        collection.add(
            ids=[c.id for c, _ in group],
            embeddings=[list(v) for _, v in group],
            documents=[c.text for c, _ in group],
            metadatas=[chunk_to_metadata(c) for c, _ in group],
        )


# --- cold start --------------------------------------------------------------------------------

_FALLBACK = """
import json, sys
from ingest.embeddings import Embedder
from ingest.store import open_index
from assistant.chain import Assistant
from guardrails import load_limits
from settings import Settings
s = Settings()
emb = Embedder(s.model_path)
a = Assistant(open_index(s.store, emb), emb, load_limits(), k=s.retrieval_k, data_dir=s.data_dir)
print(json.dumps(a.ask(sys.argv[1]).to_json()), flush=True)
"""


def _cli_has_ask(repo: Path) -> bool:
    try:
        sys.path.insert(0, str(repo))
        import cli

        names = {c.name or (c.callback.__name__ if c.callback else "") for c in cli.app.registered_commands}
        return "ask" in names
    except Exception:  # noqa: BLE001 - no usable CLI means the library fallback is timed
        return False


def cold_start_section(repo: Path, data_dir: Path, corpus_dir: Path, question: str, runs: int) -> dict[str, Any]:
    """A fresh process from exec to the first answer on stdout (imports, model load, store open,
    lexical index load, one ask)."""
    if _cli_has_ask(repo):
        cmd = [sys.executable, "-c", "import sys; from cli import app; sys.exit(app())", "ask", question, "--json"]
        how = "dosewise ask QUESTION --json (cli.app in a fresh python)"
    else:
        cmd = [sys.executable, "-c", _FALLBACK, question]
        how = "python -c: Settings → Embedder → open_index → Assistant.ask (no `ask` CLI command yet)"
    env = dict(
        os.environ,
        DOSEWISE_DATA_DIR=str(data_dir),
        DOSEWISE_CORPUS_DIR=str(corpus_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    first: list[float] = []
    exits: list[float] = []
    status = ""
    for _ in range(runs):
        # stderr goes to a file: communicate() after a readline() would drop buffered stdout.
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=err)
            assert proc.stdout is not None
            line = proc.stdout.readline()
            first.append(time.perf_counter() - t0)
            rest = proc.stdout.read()
            proc.wait(timeout=300)
            exits.append(time.perf_counter() - t0)
            err.seek(0)
            err_text = err.read().decode("utf-8", "replace")
        output = (line + rest).decode("utf-8", "replace")
        if proc.returncode != 0:
            raise RuntimeError(f"cold start exited {proc.returncode}: {err_text[-600:]}")
        try:
            status = str(json.loads(output).get("status", ""))
        except ValueError:
            status = "unparsed"
    return {
        "command": how,
        "runs": runs,
        "first_answer_s": round(min(first), 3),
        "first_answer_s_each": [round(x, 3) for x in first],
        "process_exit_s": round(min(exits), 3),
        "status": status,
    }


# --- server mode -------------------------------------------------------------------------------


def server_section(
    embedder: Any,
    limits: Any,
    real_pairs: Sequence[tuple[Chunk, Sequence[float]]],
    work: Path,
    questions: Sequence[str],
    rounds: int,
    k: int,
    embedded: Any,
) -> dict[str, Any]:
    """The corpus (same chunks, same vectors: encoding was measured in embedded mode) written
    through the store's generation writer into a Chroma server on loopback, then warm ask."""
    from bench.server import ChromaServer
    from ingest.store import open_index

    with ChromaServer(work / "server-store") as srv:
        cfg = StoreConfig(mode="server", host="127.0.0.1", port=srv.port, collection="dosewise", timeout_s=30.0)
        data = work / "server-data"
        index = open_index(cfg, embedder)
        with Stopwatch() as write_sw:
            index.write_generation([], real_pairs, documents=len({c.doc_id for c, _ in real_pairs}))
        index = open_index(cfg, embedder)
        server_assistant = _assistant(index, embedder, limits, k, data)
        both = ask_latency_ab({"server": server_assistant.ask, "embedded": embedded.ask}, questions, rounds)
        asks = both["server"]
        dense = dense_latency(index, embedder, questions, rounds, k)
        startup = srv.startup_s
    return {
        "server_startup_s": round(startup, 3),
        "store_write_s": round(write_sw.seconds, 3),
        "chunks": len(real_pairs),
        "ask": asks,
        "dense_only": dense,
        "embedded_ask": both["embedded"],
        "ratio_p50_vs_embedded": round(asks["latency"]["p50_ms"] / both["embedded"]["latency"]["p50_ms"], 3),
    }
