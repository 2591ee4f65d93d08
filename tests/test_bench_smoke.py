"""The benchmark keeps working: a --quick run with tiny sizes writes every section with numbers.

No timing thresholds here (speed targets live in bench/results.json, met or missed, never asserted).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SIZES = (200, 500)


def _numbers(section: dict[str, Any], *keys: str) -> list[float]:
    out = []
    for key in keys:
        value: Any = section
        for part in key.split("."):
            value = value[part]
        out.append(value)
    return out


def _finite(values: list[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> tuple[dict[str, Any], Path]:
    from bench.run import BenchOptions, run_bench

    tmp = tmp_path_factory.mktemp("bench")
    out = tmp / "results.json"
    opts = BenchOptions(
        model_path=embedder.model_path,
        corpus_dir=REPO / "corpus",
        out=out,
        sizes=SIZES,
        quick=True,
        questions=3,
        rounds=1,
        server=False,
        cold_start=False,
        cache_dir=tmp / "cache",
        work_dir=tmp / "work",
        pool_limit=40,
        embedder=embedder,
    )
    run_bench(opts, log=lambda _msg: None)
    return json.loads(out.read_text(encoding="utf-8")), tmp


def test_quick_bench_writes_every_section_without_errors(quick_run: tuple[dict[str, Any], Path]) -> None:
    results, _ = quick_run
    for name in ("meta", "embedding", "query_encode", "warm_ask", "guard", "baseline", "scale",
                 "cold_start", "server", "targets"):
        assert name in results, name
        assert "error" not in results[name], results[name]
    assert results["server"] == {"skipped": "--no-server"}
    assert results["cold_start"] == {"skipped": "--no-cold-start"}


def test_quick_bench_throughputs_and_latencies_are_numbers(quick_run: tuple[dict[str, Any], Path]) -> None:
    results, _ = quick_run
    assert _finite(_numbers(results["embedding"], "raw_encode_chunks_per_s", "ingest_chunks_per_s", "ratio"))
    assert _finite(_numbers(results["query_encode"], "default_threads.p50_ms", "one_thread.p50_ms"))
    warm = results["warm_ask"]
    assert _finite(_numbers(warm, "latency.p50_ms", "latency.p95_ms", "latency.max_ms"))
    # Every stage of the chain reports its time, so the split by stage is complete.
    for stage in ("prepare", "lexical", "dense", "fusion", "compose", "guard", "other"):
        assert warm["stages"][stage]["n"] > 0, stage
        assert _finite(_numbers(warm["stages"][stage], "p50_ms", "p95_ms"))
    assert _finite(_numbers(results["baseline"], "plain.p50_ms", "ratio_p50", "ratio_p95"))
    assert _finite(_numbers(results["meta"], "total_seconds", "corpus_chunks"))


def test_quick_bench_guard_section_checks_short_and_long_answers(quick_run: tuple[dict[str, Any], Path]) -> None:
    guard = quick_run[0]["guard"]
    assert guard["long"]["words"] >= 250 > guard["short"]["words"]
    for name in ("short", "long"):
        assert _finite(_numbers(guard[name], "p50_ms", "p95_ms"))
        # The answers are built from the passages themselves, so the guard verifies them.
        assert guard[name]["passed"] is True
        assert guard[name]["claims"] > 0
        # Every round is summarised, so a noisy moment shows as one outlying round.
        assert len(guard[name]["round_p50_ms"]) == guard["rounds"] >= 2
        assert guard[name]["n"] == guard["rounds"] * (guard[name]["n"] // guard["rounds"])


def test_quick_bench_scale_grows_store_to_each_size(quick_run: tuple[dict[str, Any], Path]) -> None:
    scale = quick_run[0]["scale"]
    points = scale["points"]
    assert [p["chunks"] for p in points] == list(SIZES)
    for p in points:
        assert _finite(_numbers(p, "ask.latency.p50_ms", "ask.latency.p95_ms", "dense_only.latency.p50_ms",
                                "rss_mb", "store_write_s", "first_ask_s"))
    assert "vectors" in scale and scale["sentence_pool"] == 40


def test_quick_bench_targets_unmeasured_at_tiny_sizes_are_none_not_guessed(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    targets = {t["name"]: t for t in quick_run[0]["targets"]}
    assert targets["warm ask p50 at 1k chunks"]["met"] is None
    assert targets["warm ask p95 at 100k chunks"]["measured"] is None
    for name in ("guard p50 per ~300-word answer", "ingest / raw encode throughput",
                 "warm ask p50 / plain chain p50"):
        assert isinstance(targets[name]["met"], bool), name


def test_synthetic_chunks_are_stable_when_the_store_grows(embedder: Any, tmp_path: Path) -> None:
    from bench.synthetic import SyntheticCorpus, build_pool
    from ingest.chunking import chunk_document
    from ingest.loaders import load_corpus

    docs, _ = load_corpus([REPO / "corpus" / "aza-lupus.md"])
    chunks = [c for d in docs for c in chunk_document(d, 900)]
    pool = build_pool(chunks, embedder, tmp_path, limit=12)
    assert build_pool(chunks, embedder, tmp_path, limit=12).cache_hit  # vectors come from the cache
    synth = SyntheticCorpus(pool)
    first, grown = synth.take(0, 30), synth.take(0, 60)
    assert [c.id for c, _ in first] == [c.id for c, _ in grown[:30]]
    # A fresh generator (cold per-document and per-sentence caches) makes the same chunks.
    fresh = SyntheticCorpus(pool).take(30, 60)
    assert [(c, v) for c, v in fresh] == [(c, v) for c, v in grown[30:]]
    assert len({c.id for c, _ in grown}) == 60
    for chunk, vector in grown:
        assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
        # Every citation marker left in a synthetic chunk still resolves to one of its sources.
        cited = {i for m in re.findall(r"\[@[^\]]*\]", chunk.text) for i in re.findall(r"@([\w.-]+)", m)}
        assert cited <= {s.id for s in chunk.sources}, chunk.text


@pytest.mark.slow
def test_cold_start_answers_from_a_fresh_process(quick_run: tuple[dict[str, Any], Path]) -> None:
    from bench.sections import cold_start_section

    _, tmp = quick_run
    corpus = tmp / "work" / "corpus-quick"
    cold = cold_start_section(REPO, tmp / "work" / "embedded", corpus,
                              "What is the azathioprine maintenance dose in lupus nephritis?", 1)
    assert cold["status"] in ("verified", "blocked", "abstained"), cold
    assert _finite([cold["first_answer_s"], cold["process_exit_s"]])
