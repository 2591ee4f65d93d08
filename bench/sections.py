"""One function per benchmark section. Each returns a plain dict that goes into results.json."""

from __future__ import annotations

import gc
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.questions import fresh, tag
from bench.stats import Stopwatch, rss_mb, summarize, time_calls
from ingest.model import Chunk, StoreConfig

__all__ = [
    "STAGES",
    "app_cold_section",
    "ask_latency",
    "ask_latency_ab",
    "baseline_section",
    "cli_cold_section",
    "cold_start_section",
    "embedding_section",
    "floor_fn",
    "guard_section",
    "query_encoder_section",
    "scale_section",
    "server_section",
]

# "encode" is the question's embedding (0 on a cached repeat), "dense" the vector search alone.
STAGES = ("prepare", "lexical", "encode", "dense", "fusion", "compose", "guard")
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
        report = run_ingest(
            [corpus_dir], cfg, embedder, chunk_size=chunk_size, data_dir=data, progress=False
        )
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


class _QueryRuntime:
    """The embedder with its query path swapped (torch, ONNX, ONNX int8), batches unchanged."""

    def __init__(self, embedder: Any, encode_query: Callable[[str], Any]) -> None:
        self._embedder = embedder
        self._encode_query = encode_query

    def encode(self, texts: Sequence[str]) -> Any:
        return self._embedder.encode(texts)

    def encode_query(self, text: str) -> list[float]:
        return [float(x) for x in self._encode_query(text)]


def _gold_recall(assistant: Any, items: Sequence[Any], k: int) -> dict[str, Any]:
    """`dosewise eval`'s retrieval metrics (recall@4, recall@k, MRR over cited documents)."""
    from evals.run import score_question

    outcomes = [score_question(item, assistant, k=k) for item in items]
    scored = [o for o in outcomes if o.recall_at_k is not None]

    def mean(values: list[float]) -> float:
        return round(100.0 * sum(values) / len(values), 2) if values else math.nan

    return {
        "questions": len(scored),
        "recall_at_4_pct": mean([o.recall_at_4 for o in scored if o.recall_at_4 is not None]),
        "recall_at_k_pct": mean([o.recall_at_k for o in scored if o.recall_at_k is not None]),
        "statuses": dict(Counter(o.status for o in outcomes)),
    }


def query_encoder_section(
    embedder: Any,
    questions: Sequence[str],
    chunk_texts: Sequence[str],
    repeats: int,
    make_assistant: Callable[[Any], Any],
    gold_items: Sequence[Any],
    k: int,
) -> dict[str, Any]:
    """One new question's encode on torch (default and one intra-op thread), the ONNX export in
    onnxruntime and its dynamically int8-quantised copy: latency on new texts, the cosine
    distance of their vectors to torch's, batch throughput on the corpus chunks, and retrieval
    recall on the gold set with each as the query encoder (documents stay torch vectors)."""
    import numpy as np
    import torch

    from ingest.embeddings import OnnxQueryEncoder

    out: dict[str, Any] = {
        "query_runtime_in_use": None,
        "torch_threads_default": torch.get_num_threads(),
    }
    with Stopwatch() as sw:
        fp32_path = embedder.export_query_model()
    out["onnx_export_s"] = round(sw.seconds, 3)
    with Stopwatch() as sw:
        int8_path = embedder.export_query_model(quantize=True)
    out["onnx_int8_export_s"] = round(sw.seconds, 3)
    out["onnx_file_mb"] = round(Path(fp32_path).stat().st_size / 2**20, 1)
    out["onnx_int8_file_mb"] = round(Path(int8_path).stat().st_size / 2**20, 1)
    with Stopwatch() as sw:
        fp32 = OnnxQueryEncoder(fp32_path, embedder.model_path)
    out["onnx_session_load_s"] = round(sw.seconds, 3)
    int8 = OnnxQueryEncoder(int8_path, embedder.model_path)

    def torch_one(text: str) -> Any:
        return embedder.encode([text])[0]

    runtimes: dict[str, Callable[[str], Any]] = {
        "torch": torch_one,
        "onnx": lambda t: fp32.encode([t])[0],
        "onnx_int8": lambda t: int8.encode([t])[0],
    }
    default = torch.get_num_threads()
    texts = [fresh(q) for _ in range(repeats) for q in questions]
    reference = np.asarray(embedder.encode(texts), dtype=np.float32)
    latency: dict[str, Any] = {}
    try:
        for threads in (default, 1):
            torch.set_num_threads(threads)
            torch_one(fresh(questions[0]))
            label = "torch" if threads == default else "torch_one_thread"
            latency[label] = summarize(time_calls(torch_one, [fresh(q) for q in texts], 1))
    finally:
        torch.set_num_threads(default)
    distance: dict[str, float] = {}
    for name in ("onnx", "onnx_int8"):
        encode = runtimes[name]
        encode(fresh(questions[0]))
        latency[name] = summarize(time_calls(encode, [fresh(q) for q in texts], 1))
        got = np.asarray([encode(t) for t in texts], dtype=np.float32)
        distance[name] = float((1.0 - (got * reference).sum(axis=1)).max())
    out["latency"] = latency
    out["max_cosine_distance_to_torch"] = distance

    batch_texts = list(chunk_texts)
    with Stopwatch() as sw:
        embedder.encode(batch_texts)
    torch_rate = len(batch_texts) / sw.seconds
    with Stopwatch() as sw:
        for i in range(0, len(batch_texts), 32):
            fp32.encode(batch_texts[i : i + 32])
    out["batch_chunks_per_s"] = {
        "torch": round(torch_rate, 2),
        "onnx": round(len(batch_texts) / sw.seconds, 2),
    }

    recall: dict[str, Any] = {}
    for name, encode in runtimes.items():
        recall[name] = _gold_recall(make_assistant(_QueryRuntime(embedder, encode)), gold_items, k)
    out["gold_recall"] = recall
    out["recall_at_k_change_points"] = {
        name: round(recall[name]["recall_at_k_pct"] - recall["torch"]["recall_at_k_pct"], 2)
        for name in ("onnx", "onnx_int8")
    }
    in_use = getattr(embedder, "query_encoder", None)
    out["query_runtime_in_use"] = "onnx" if in_use is not None and in_use() is not None else "torch"
    return out


# --- warm ask ----------------------------------------------------------------------------------


def _record(
    result: Any,
    ms: float,
    totals: list[float],
    stages: dict[str, list[float]],
    statuses: Counter[str],
) -> None:
    totals.append(ms)
    statuses[result.status] += 1
    timed = 0.0
    for s in STAGES:
        if s in result.timings_ms:
            stages[s].append(float(result.timings_ms[s]))
            timed += float(result.timings_ms[s])
    stages[OTHER].append(max(0.0, ms - timed))


def _ask_summary(
    totals: list[float], stages: dict[str, list[float]], statuses: Counter[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"latency": summarize(totals), "statuses": dict(statuses)}
    if any(stages.values()):
        out["stages"] = {s: summarize(v) for s, v in stages.items()}
    return out


def _fresh_acc() -> tuple[list[float], dict[str, list[float]], Counter[str]]:
    """Empty accumulators for ``_timed``: totals, stage times, statuses."""
    return [], {s: [] for s in (*STAGES, OTHER)}, Counter()


def ask_latency(assistant: Any, questions: Sequence[str], rounds: int) -> dict[str, Any]:
    """Warm ``ask`` on new question texts (the ``new`` entry), then the cached repeat, then new
    texts again with the per-drug sentence memos forgotten before each (``memos_cold``: what the
    first question about a drug pays; the other passes ask about drugs asked before)."""
    out = ask_latency_ab({"ours": assistant.ask}, questions, rounds, cached=("ours",))["ours"]
    clear = getattr(assistant, "clear_memos", None)
    if clear is not None:
        cold_acc = _fresh_acc()
        for _ in range(rounds):
            for q in questions:
                text = fresh(q)
                clear()  # not timed: only what the ask then reads again is
                _timed(assistant.ask, text, cold_acc)
        out["memos_cold"] = _ask_summary(*cold_acc)
    return out


def ask_latency_ab(
    systems: dict[str, Callable[[str], Any]],
    questions: Sequence[str],
    rounds: int,
    cached: Sequence[str] = (),
) -> dict[str, dict[str, Any]]:
    """Several systems on the same new question texts, interleaved question by question, so a
    change in machine load (other processes share the cores) hits all of them alike.

    One untimed pass of the plain questions first (lexical index, vocabulary, the guard's
    passage caches); then ``rounds`` timed passes, each question a variant never asked before
    (``new``: what a clinician's question costs). For the systems in ``cached``, the last
    pass's texts are then asked again (``cached_repeat``: the query embedding comes from the
    cache, as for an app rerun); that figure is not a new question's."""
    for q in questions:
        for ask in systems.values():
            ask(q)

    acc = {name: _fresh_acc() for name in systems}
    asked: list[str] = []
    for _ in range(rounds):
        asked = []
        for q in questions:
            text = fresh(q)
            asked.append(text)
            for name, ask in systems.items():
                _timed(ask, text, acc[name])
    out: dict[str, dict[str, Any]] = {}
    for name in systems:
        out[name] = {"new": _ask_summary(*acc[name])}
    for name in cached:
        repeat = _fresh_acc()
        for text in asked:
            _timed(systems[name], text, repeat)
        out[name]["cached_repeat"] = _ask_summary(*repeat)
    return out


def _timed(
    ask: Callable[[str], Any],
    text: str,
    acc: tuple[list[float], dict[str, list[float]], Counter[str]],
) -> None:
    t0 = time.perf_counter()
    result = ask(text)
    ms = (time.perf_counter() - t0) * 1000.0
    totals, stages, statuses = acc
    if hasattr(result, "timings_ms"):
        _record(result, ms, totals, stages, statuses)
    else:
        totals.append(ms)


def floor_fn(index: Any, embedder: Any, k: int) -> Callable[[str], Any]:
    """The floor under any dense answer: one query encode (the embedder's query path, no
    cache) and one HNSW search returning ids, nothing else."""
    search = getattr(index, "query_ids", None) or index.query

    def run(text: str) -> Any:
        return search(embedder.encode_query(text), k)

    return run


def exact_floor_fn(index: Any, embedder: Any, k: int) -> Callable[[str], Any] | None:
    """The floor with the search ours uses on a small store: one query encode and one exact
    search over the store's vectors held in memory (read once, as a retriever reads them).
    None when the store is too large for it, where ours uses HNSW like ``floor_fn``."""
    from assistant.retrieval import EXACT_SEARCH_LIMIT, exact_nearest

    read = getattr(index, "vectors", None)
    vectors = read(EXACT_SEARCH_LIMIT) if read is not None else None
    if vectors is None:
        return None

    def run(text: str) -> Any:
        return exact_nearest(vectors, embedder.encode_query(text), k)

    return run


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


def _wall_and_cpu(
    fn: Callable[[str], Any], items: Sequence[str]
) -> tuple[list[float], list[float]]:
    """Milliseconds per call of ``fn(item)``: wall clock, and this thread's CPU time."""
    wall: list[float] = []
    cpu: list[float] = []
    for item in items:
        c0 = time.thread_time()
        t0 = time.perf_counter()
        fn(item)
        wall.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
    return wall, cpu


def _guard_call(answer: str, passages: Sequence[Any], limits: Any, drug: str) -> Any:
    from guardrails import check_answer

    return check_answer(answer, passages, None, limits, drug)


GUARD_ANSWER_309 = Path(__file__).with_name("guard_answer_309.json")


def _guard_answer_309() -> tuple[list[Any], str, str]:
    """The 309-word answer the guard target was set on: built by ``_guard_material`` from the
    corpus at commit 5a734ad and kept fixed (``bench/guard_answer_309.json``), since the
    answer built from today's corpus changes as articles are added."""
    from guardrails import Passage

    data = json.loads(GUARD_ANSWER_309.read_text(encoding="utf-8"))
    passages = [
        Passage(
            n=p["n"],
            text=p["text"],
            doc_id=p["doc_id"],
            section=p["section"],
            drugs=tuple(p["drugs"]),
        )
        for p in data["passages"]
    ]
    return passages, data["answer"], data["drug"]


def guard_section(
    chunks: Sequence[Chunk], limits: Any, repeats: int, rounds: int = 5
) -> dict[str, Any]:
    """Guard latency on three answers: ``short`` (one sentence), ``long`` (~300 words built from
    today's corpus) and ``long_309`` (the fixed 309-word answer of the guard target).
    ``rounds`` rounds of ``repeats`` new texts of each, the answers interleaved round by round so
    a change in machine load hits them alike. p50/p95 are over every call; ``round_p50_ms``
    (each round's p50) shows how much this shared machine drifts while the section runs."""
    from guardrails import check_answer

    passages, short, long, drug = _guard_material(chunks)
    fixed_passages, fixed, fixed_drug = _guard_answer_309()
    answers = {
        "short": (short, passages, drug, "today's corpus: one sentence"),
        "long": (
            long,
            passages,
            drug,
            "today's corpus: the ~300-word answer _guard_material builds",
        ),
        "long_309": (
            fixed,
            fixed_passages,
            fixed_drug,
            "fixed: bench/guard_answer_309.json (built from the corpus at 5a734ad)",
        ),
    }
    out: dict[str, Any] = {"passages": len(passages), "drug": drug, "rounds": rounds}
    times: dict[str, list[float]] = {name: [] for name in answers}
    round_p50: dict[str, list[float]] = {name: [] for name in answers}
    cpu_times: dict[str, list[float]] = {name: [] for name in answers}
    verdicts = {
        name: check_answer(a, ps, None, limits, d) for name, (a, ps, d, _) in answers.items()
    }
    for r in range(rounds):
        for name, (answer, ps, d, _about) in answers.items():
            # The guard caches parses by text: every timed answer is a new text (a digit-free
            # tag), so the answer is parsed each time as a new one would be; passages stay
            # warm, as in use.
            fresh_answers = [f"{answer} Reviewed {tag(r * repeats + i)}." for i in range(repeats)]
            got, cpu = _wall_and_cpu(
                partial(_guard_call, passages=ps, limits=limits, drug=d), fresh_answers
            )
            times[name] += got
            cpu_times[name] += cpu
            round_p50[name].append(summarize(got)["p50_ms"])
    for name, (answer, _ps, d, about) in answers.items():
        verdict = verdicts[name]
        out[name] = {
            **summarize(times[name]),
            "round_p50_ms": round_p50[name],
            # CPU time of the calling thread: what the guard itself costs, apart from the time
            # this shared machine's other processes hold the cores (the wall p50 above).
            "cpu_p50_ms": summarize(cpu_times[name])["p50_ms"],
            "answer": about,
            "words": len(answer.split()),
            "numbers": len(verdict.claims),
            "claims": len(verdict.claims),
            "verified": verdict.verified_count,
            "passed": bool(verdict.passed),
            "drug": d,
        }
    return out


# --- plain LangChain chain ---------------------------------------------------------------------


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return None
    if math.isnan(a) or math.isnan(b):
        return None
    return round(a / b, 3)


def baseline_section(
    corpus_dir: Path,
    embedder: Any,
    work: Path,
    questions: Sequence[str],
    rounds: int,
    assistant: Any,
    k: int,
) -> dict[str, Any]:
    """Our warm ask, the plain LangChain chain and the floor (encode + one search) on the same
    corpus and the same new question texts, interleaved; our cached repeat beside them.

    The plain chain embeds its question as the tutorial chain does, with the sentence-
    transformers model in torch (``plain``); ``plain_onnx`` is the same chain given our ONNX
    query path, so the ratio to it is what the pipeline alone saves."""
    from evals.baseline import Baseline
    from ingest.embeddings import LangChainEmbeddings

    files = sorted(Path(corpus_dir).glob("*.md"))
    runtime: Any = _QueryRuntime(embedder, lambda t: embedder.encode([t])[0])
    torch_queries = LangChainEmbeddings(runtime)
    base = Baseline.build(files, torch_queries, work / "baseline")
    base_onnx = Baseline.build(files, embedder.as_langchain(), work / "baseline-onnx")
    floor = floor_fn(assistant.index, embedder, k)
    got = ask_latency_ab(
        {"ours": assistant.ask, "plain": base.ask, "plain_onnx": base_onnx.ask, "floor": floor},
        questions,
        rounds,
        cached=("ours",),
    )
    ours, plain = got["ours"]["new"]["latency"], got["plain"]["new"]["latency"]
    plain_onnx, floor_lat = got["plain_onnx"]["new"]["latency"], got["floor"]["new"]["latency"]
    return {
        "chain": "evals.baseline.Baseline: RecursiveCharacterTextSplitter 1000/200 + Chroma + similarity_search k=4",
        "questions": "new texts: each timed ask is a variant never asked before, the same for all four",
        "query_runtime": {
            "ours": getattr(embedder, "query_runtime", "torch"),
            "plain": "torch",
            "plain_onnx": getattr(embedder, "query_runtime", "torch"),
            "floor": getattr(embedder, "query_runtime", "torch"),
        },
        "plain": plain,
        "plain_onnx": plain_onnx,
        "ours": ours,
        "ours_stages": got["ours"]["new"]["stages"],
        "floor": floor_lat,
        "ours_cached_repeat": got["ours"]["cached_repeat"]["latency"],
        "ratio_p50": _ratio(ours["p50_ms"], plain["p50_ms"]),
        "ratio_p95": _ratio(ours["p95_ms"], plain["p95_ms"]),
        "ratio_p50_to_plain_onnx": _ratio(ours["p50_ms"], plain_onnx["p50_ms"]),
        "ratio_p50_to_floor": _ratio(ours["p50_ms"], floor_lat["p50_ms"]),
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
    each size; prepare the lexical index and vocabulary as an ingest does; then time a first
    question, then new questions interleaved with the floor (encode + one search), then RSS.

    The corpus generation is written by the store's generation writer; each size then appends
    its new synthetic chunks to that active generation, with the records the writer would
    write (``chunk_to_metadata``). Writing a fresh generation per size instead re-copied every
    earlier chunk (11k extra inserts on the way to 100k, ~10% of the section)."""
    from assistant.retrieval import HybridRetriever
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
        log(
            f"scale: {total} chunks written in {build_sw.seconds:.1f} s; measuring (RSS {rss_mb():.0f} MB)"
        )
        data_dir = data / f"data-{size}"
        with Stopwatch() as prep_sw:
            # What `dosewise ingest` now does after writing a generation.
            HybridRetriever(index, embedder, data_dir=data_dir).prepare()
        assistant = _assistant(index, embedder, limits, k, data_dir)
        with Stopwatch() as first_sw:
            assistant.ask(fresh(questions[0]))  # a new process's first question after that ingest
        timed: dict[str, Callable[[str], Any]] = {
            "ours": assistant.ask,
            "floor": floor_fn(index, embedder, k),
        }
        exact = exact_floor_fn(index, embedder, k)
        if exact is not None:
            timed["floor_exact"] = exact
        both = ask_latency_ab(timed, questions, rounds, cached=("ours",))
        asks, floor = both["ours"], both["floor"]["new"]["latency"]
        floor_exact = both["floor_exact"]["new"]["latency"] if exact is not None else None
        points.append(
            {
                "chunks": total,
                "synthetic_generate_s": round(gen_sw.seconds, 3),
                "store_write_s": round(build_sw.seconds, 3),
                "store_write_new_chunks": want,
                "store_write_chunks_per_s": round(want / build_sw.seconds, 1) if want else None,
                "prepare_at_ingest_s": round(prep_sw.seconds, 3),
                "first_ask_s": round(first_sw.seconds, 3),
                "ask": asks["new"],
                "ask_cached_repeat": asks["cached_repeat"],
                "floor": floor,
                "ratio_p50_to_floor": _ratio(asks["new"]["latency"]["p50_ms"], floor["p50_ms"]),
                # Ours searches a store this small exactly in memory, not with HNSW: the floor
                # with that same search, so the ratio to it is what the rest of an ask costs.
                "floor_exact": floor_exact,
                "ratio_p50_to_floor_exact": (
                    _ratio(asks["new"]["latency"]["p50_ms"], floor_exact["p50_ms"])
                    if floor_exact
                    else None
                ),
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

# Runs the CLI as `dosewise` does, and says on stderr, last, whether torch or
# sentence-transformers were imported on the way (the cold path must not need them).
_CLI = """
import atexit, sys
def _said():
    heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
    print("BENCH_HEAVY=" + ",".join(heavy), file=sys.stderr, flush=True)
atexit.register(_said)
from cli import app
sys.exit(app())
"""


def _cold_env(repo: Path, data_dir: Path, corpus_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        DOSEWISE_DATA_DIR=str(data_dir),
        DOSEWISE_CORPUS_DIR=str(corpus_dir),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )


def _cold_runs(
    cmd: list[str], repo: Path, env: dict[str, str], runs: int, ok_codes: Sequence[int] = (0,)
) -> dict[str, Any]:
    """``runs`` fresh processes: time to the first line on stdout and to exit (min and each),
    the exit status, and which heavy modules the process imported."""
    first: list[float] = []
    exits: list[float] = []
    output = ""
    heavy = ""
    code = 0
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
        code = proc.returncode
        if code not in ok_codes:
            raise RuntimeError(f"{' '.join(cmd[3:])} exited {code}: {err_text[-600:]}")
        output = (line + rest).decode("utf-8", "replace")
        found = re.findall(r"BENCH_HEAVY=(.*)", err_text)
        heavy = found[-1].strip() if found else "unknown"
    return {
        "runs": runs,
        "first_output_s": round(min(first), 3),
        "first_output_s_each": [round(x, 3) for x in first],
        "exit_s": round(min(exits), 3),
        "exit_s_each": [round(x, 3) for x in exits],
        "exit_code": code,
        "heavy_imports": [m for m in heavy.split(",") if m],
        "output": output,
    }


def cold_start_section(
    repo: Path, data_dir: Path, corpus_dir: Path, question: str, runs: int
) -> dict[str, Any]:
    """`dosewise ask QUESTION --json` in a fresh process, from exec to the first answer on
    stdout (imports, store open, lexical index load, ONNX query model load, one ask), on a data
    dir ingested before (the query model's export exists, as after `dosewise ingest`)."""
    cmd = [sys.executable, "-c", _CLI, "ask", fresh(question), "--json", "--no-audit"]
    env = _cold_env(repo, data_dir, corpus_dir)
    got = _cold_runs(cmd, repo, env, runs, ok_codes=(0, 1))
    try:
        status = str(json.loads(got.pop("output")).get("status", ""))
    except ValueError:
        status = "unparsed"
    return {
        "command": "dosewise ask QUESTION --json (cli.app in a fresh python)",
        "first_answer_s": got["first_output_s"],
        "first_answer_s_each": got["first_output_s_each"],
        "process_exit_s": got["exit_s"],
        "status": status,
        **{
            k: v
            for k, v in got.items()
            if k not in ("first_output_s", "first_output_s_each", "exit_s")
        },
    }


def cli_cold_section(
    repo: Path, data_dir: Path, corpus_dir: Path, chunks: Sequence[Chunk], work: Path, runs: int
) -> dict[str, Any]:
    """Commands that must start fast and never load the model: `check --passages` (the guard
    on an answer with its passages given), `stats`, `--help`; each a fresh process to exit."""
    passages, short, _long, _drug = _guard_material(chunks)
    folder = work / "cli-cold"
    folder.mkdir(parents=True, exist_ok=True)
    passages_file = folder / "passages.json"
    passages_file.write_text(
        json.dumps(
            [
                {
                    "n": p.n,
                    "text": p.text,
                    "doc_id": p.doc_id,
                    "section": p.section,
                    "drugs": list(p.drugs),
                }
                for p in passages
            ]
        ),
        encoding="utf-8",
    )
    answer_file = folder / "answer.md"
    answer_file.write_text(short + "\n", encoding="utf-8")
    env = _cold_env(repo, data_dir, corpus_dir)
    commands = {
        "check_passages": [
            "check",
            "--question",
            "What is the dose?",
            "--answer-file",
            str(answer_file),
            "--passages",
            str(passages_file),
        ],
        "stats": ["stats"],
        "help": ["--help"],
    }
    out: dict[str, Any] = {}
    for name, args in commands.items():
        got = _cold_runs([sys.executable, "-c", _CLI, *args], repo, env, runs, ok_codes=(0, 1))
        got.pop("output")
        out[name] = got
    return out


# A fresh process runs the app as Streamlit's AppTest does (the script, its cached resources and
# the warm-up thread), prints when the first screen is complete, submits a question at once and
# prints when its answer is on screen.
_APP = """
import json, sys, time
t0 = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300)
at.run()
first_screen = time.perf_counter() - t0
heavy_at_screen = sorted(m for m in ("torch", "sentence_transformers") if m in sys.modules)
t1 = time.perf_counter()
at.chat_input[0].set_value(sys.argv[2]).run()
answer = time.perf_counter() - t1
text = " ".join(m.value for m in at.markdown)
print(json.dumps({"first_screen_s": first_screen, "first_answer_after_screen_s": answer,
                  "answered": "verified" in text.lower() or "numbers" in text.lower(),
                  "exceptions": len(at.exception), "heavy_imports": sorted(
                      m for m in ("torch", "sentence_transformers") if m in sys.modules),
                  "heavy_imports_at_first_screen": heavy_at_screen}), flush=True)
"""


def app_cold_section(
    repo: Path, data_dir: Path, corpus_dir: Path, question: str, runs: int
) -> dict[str, Any]:
    """The chat app in a fresh process: start to first screen, then a question submitted the
    moment the screen is there, to its answer on screen (the warm-up thread has had no head
    start). AppTest runs the script without a browser; rendering in one is not included."""
    env = dict(
        _cold_env(repo, data_dir, corpus_dir),
        DOSEWISE_LLM_BACKEND="none",
        DOSEWISE_AUDIT_LOG=str(data_dir / "bench-app-audit.jsonl"),
    )
    each: list[dict[str, Any]] = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", _APP, str(repo / "app.py"), fresh(question)],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"app run exited {proc.returncode}: {proc.stderr[-600:]}")
        each.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    best = min(each, key=lambda r: r["first_answer_after_screen_s"])
    return {
        "how": "streamlit.testing.v1.AppTest in a fresh python: run (first screen), then chat_input",
        "runs": runs,
        "first_screen_s": round(best["first_screen_s"], 3),
        "first_answer_after_screen_s": round(best["first_answer_after_screen_s"], 3),
        "first_answer_after_screen_s_each": [
            round(r["first_answer_after_screen_s"], 3) for r in each
        ],
        "answered": all(r["answered"] for r in each),
        "exceptions": max(r["exceptions"] for r in each),
        "heavy_imports": best["heavy_imports"],
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
        cfg = StoreConfig(
            mode="server", host="127.0.0.1", port=srv.port, collection="dosewise", timeout_s=30.0
        )
        data = work / "server-data"
        index = open_index(cfg, embedder)
        with Stopwatch() as write_sw:
            index.write_generation([], real_pairs, documents=len({c.doc_id for c, _ in real_pairs}))
        index = open_index(cfg, embedder)
        server_assistant = _assistant(index, embedder, limits, k, data)
        both = ask_latency_ab(
            {
                "server": server_assistant.ask,
                "embedded": embedded.ask,
                "floor": floor_fn(index, embedder, k),
            },
            questions,
            rounds,
        )
        asks = both["server"]["new"]
        startup = srv.startup_s
    return {
        "server_startup_s": round(startup, 3),
        "store_write_s": round(write_sw.seconds, 3),
        "chunks": len(real_pairs),
        "ask": asks,
        "floor": both["floor"]["new"]["latency"],
        "embedded_ask": both["embedded"]["new"],
        "ratio_p50_vs_embedded": _ratio(
            asks["latency"]["p50_ms"], both["embedded"]["new"]["latency"]["p50_ms"]
        ),
    }
