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

# A whole quick bench run (~30 s): in `make test`, not in `make test-fast`.
pytestmark = pytest.mark.slow

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
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )


@pytest.fixture(scope="module")
def quick_run(
    tmp_path_factory: pytest.TempPathFactory, embedder: Any
) -> tuple[dict[str, Any], Path]:
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


def test_quick_bench_writes_every_section_without_errors(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    results, _ = quick_run
    for name in (
        "meta",
        "embedding",
        "query_encoder",
        "warm_ask",
        "guard",
        "imported",
        "baseline",
        "scale",
        "cold_start",
        "cli_cold",
        "app_cold",
        "server",
        "targets",
    ):
        assert name in results, name
        assert "error" not in results[name], results[name]
    assert results["server"] == {"skipped": "--no-server"}
    assert results["cold_start"] == {"skipped": "--no-cold-start"}
    assert results["cli_cold"] == results["app_cold"] == {"skipped": "--no-cold-start"}
    assert results["meta"]["commit"]


def test_quick_bench_throughputs_and_latencies_are_numbers(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    results, _ = quick_run
    assert _finite(
        _numbers(results["embedding"], "raw_encode_chunks_per_s", "ingest_chunks_per_s", "ratio")
    )
    warm = results["warm_ask"]
    for case in ("new", "cached_repeat", "memos_cold"):
        assert _finite(_numbers(warm[case], "latency.p50_ms", "latency.p95_ms", "latency.max_ms"))
        # Every stage of the chain reports its time, so the split by stage is complete.
        for stage in (
            "prepare",
            "lexical",
            "encode",
            "dense",
            "fusion",
            "compose",
            "guard",
            "other",
        ):
            assert warm[case]["stages"][stage]["n"] > 0, stage
            assert _finite(_numbers(warm[case]["stages"][stage], "p50_ms", "p95_ms"))
    # New questions run the model; a cached repeat takes the embedding from the cache.
    assert (
        warm["cached_repeat"]["stages"]["encode"]["p50_ms"]
        < warm["new"]["stages"]["encode"]["p50_ms"]
    )
    assert warm["new"]["statuses"] == {"verified": warm["new"]["latency"]["n"]}
    assert _finite(
        _numbers(
            results["baseline"],
            "plain.p50_ms",
            "plain_onnx.p50_ms",
            "floor.p50_ms",
            "ratio_p50",
            "ratio_p95",
            "ratio_p50_to_floor",
            "ratio_p50_to_plain_onnx",
        )
    )
    assert _finite(_numbers(results["meta"], "total_seconds", "corpus_chunks"))


def test_quick_bench_compares_query_runtimes_on_latency_and_gold_recall(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    enc = quick_run[0]["query_encoder"]
    for name in ("torch", "torch_one_thread", "onnx", "onnx_int8"):
        assert _finite(_numbers(enc["latency"][name], "p50_ms", "p95_ms")), name
    # The fp32 export is torch's model: its vectors match; int8 moves them, a little.
    assert enc["max_cosine_distance_to_torch"]["onnx"] < 1e-5
    assert 0 < enc["max_cosine_distance_to_torch"]["onnx_int8"] < 0.2
    for name in ("torch", "onnx", "onnx_int8"):
        recall = enc["gold_recall"][name]
        assert recall["questions"] > 0 and _finite(
            _numbers(recall, "recall_at_4_pct", "recall_at_k_pct")
        )
    assert enc["recall_at_k_change_points"]["onnx"] == 0
    assert enc["query_runtime_in_use"] == "onnx"


def test_quick_bench_guard_section_checks_short_and_long_answers(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    guard = quick_run[0]["guard"]
    assert guard["long"]["words"] >= 250 > guard["short"]["words"]
    # The guard target's answer is the fixed one, whatever today's corpus builds.
    assert guard["long_309"]["words"] == 309
    for name in ("short", "long", "long_309"):
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
        assert _finite(
            _numbers(
                p,
                "ask.latency.p50_ms",
                "ask.latency.p95_ms",
                "floor.p50_ms",
                "ratio_p50_to_floor",
                "ask_cached_repeat.latency.p50_ms",
                "rss_mb",
                "store_write_s",
                "prepare_at_ingest_s",
                "first_ask_s",
            )
        )
    assert "vectors" in scale and scale["sentence_pool"] == 40


def test_quick_bench_targets_unmeasured_at_tiny_sizes_are_none_not_guessed(
    quick_run: tuple[dict[str, Any], Path],
) -> None:
    targets = {t["name"]: t for t in quick_run[0]["targets"]}
    assert targets["new-question ask p50 at 1k chunks"]["met"] is None
    assert targets["new-question ask p50 / floor p50 at 1k chunks"]["met"] is None
    assert targets["new-question ask p95 at 100k chunks"]["measured"] is None
    assert targets["CLI process start to first answer"]["met"] is None  # cold start skipped
    for name in (
        "guard p50 on the 309-word answer (fixed, 5a734ad corpus)",
        "guard p50 on today's corpus answer",
        "ingest / raw encode throughput",
        "new-question ask p50 / plain chain p50, same new questions",
    ):
        assert isinstance(targets[name]["met"], bool), name


def test_fresh_question_variants_are_new_texts_that_ask_the_same_thing() -> None:
    from assistant.vocabulary import Vocabulary
    from bench.questions import QUESTIONS, fresh
    from ingest.chunking import chunk_document
    from ingest.loaders import load_corpus

    docs, _ = load_corpus([REPO / "corpus"])
    vocabulary = Vocabulary.from_chunks([c for d in docs for c in chunk_document(d, 900)])
    seen: set[str] = set()
    for q in QUESTIONS:
        for _ in range(40):  # 800 tags: every two-letter tail, where abbreviations live
            variant = fresh(q)
            assert variant not in seen and variant != q
            seen.add(variant)
            assert vocabulary.facets(variant) == vocabulary.facets(q), variant


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
        cited = {
            i for m in re.findall(r"\[@[^\]]*\]", chunk.text) for i in re.findall(r"@([\w.-]+)", m)
        }
        assert cited <= {s.id for s in chunk.sources}, chunk.text


@pytest.mark.slow
def test_cold_start_answers_from_a_fresh_process(quick_run: tuple[dict[str, Any], Path]) -> None:
    from bench.sections import cold_start_section

    _, tmp = quick_run
    corpus = tmp / "work" / "corpus-quick"
    cold = cold_start_section(
        REPO,
        tmp / "work" / "embedded",
        corpus,
        "What is the azathioprine maintenance dose in lupus nephritis?",
        1,
    )
    assert cold["status"] in ("verified", "blocked", "abstained"), cold
    assert _finite([cold["first_answer_s"], cold["process_exit_s"]])
    assert cold["heavy_imports"] == []  # the query model was exported by the quick run
