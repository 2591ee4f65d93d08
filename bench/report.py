"""Targets (met / missed, never asserted) and the printed table."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["evaluate_targets", "render_table", "table_rows"]


def _num(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) else math.nan


def _point(results: dict[str, Any], chunks: int) -> dict[str, Any] | None:
    """The scale point nearest ``chunks`` within 5% (the real corpus makes sizes inexact)."""
    for p in results.get("scale", {}).get("points", []):
        if abs(p["chunks"] - chunks) <= 0.05 * chunks:
            return p
    return None


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: what it asks, what was measured, and met True/False (None: not measured)."""
    out: list[dict[str, Any]] = []

    def add(name: str, target: str, value: float | None, ok: Callable[[float], bool], unit: str) -> None:
        measured = None if value is None or math.isnan(value) else round(value, 3)
        out.append(
            {
                "name": name,
                "target": target,
                "measured": measured,
                "unit": unit,
                "met": None if measured is None else bool(ok(measured)),
            }
        )

    p1k = _point(results, 1000)
    add("warm ask p50 at 1k chunks", "<= 50 ms",
        p1k["ask"]["latency"]["p50_ms"] if p1k else None, lambda v: v <= 50, "ms")
    p100k = _point(results, 100_000)
    add("warm ask p95 at 100k chunks", "<= 150 ms",
        p100k["ask"]["latency"]["p95_ms"] if p100k else None, lambda v: v <= 150, "ms")
    guard = results.get("guard", {}).get("long", {})
    add("guard p50 per ~300-word answer", "<= 2 ms", _num(guard.get("p50_ms")), lambda v: v <= 2, "ms")
    add("ingest / raw encode throughput", ">= 0.8",
        _num(results.get("embedding", {}).get("ratio")), lambda v: v >= 0.8, "x")
    add("warm ask p50 / plain chain p50", "<= 1.0",
        _num(results.get("baseline", {}).get("ratio_p50")), lambda v: v <= 1.0, "x")
    return out


def _fmt(v: Any, unit: str = "") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        text = f"{v:.2f}" if abs(v) < 100 else f"{v:.0f}"
    else:
        text = str(v)
    return f"{text} {unit}".strip()


def _lat(d: dict[str, Any]) -> str:
    return f"{_fmt(d.get('p50_ms'))} / {_fmt(d.get('p95_ms'))} / {_fmt(d.get('max_ms'))}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    emb = results.get("embedding", {})
    if "ratio" in emb:
        rows.append(("raw encode (corpus chunks)", _fmt(emb["raw_encode_chunks_per_s"], "chunks/s")))
        rows.append(("ingest end to end", f"{_fmt(emb['ingest_chunks_per_s'], 'chunks/s')} (ratio {_fmt(emb['ratio'])})"))
    ask = results.get("warm_ask", {})
    if "latency" in ask:
        rows.append((f"warm ask, corpus ({results['meta'].get('corpus_chunks')} chunks) p50/p95/max", _lat(ask["latency"]) + " ms"))
        for stage, s in ask["stages"].items():
            rows.append((f"  stage {stage} p50/p95/max", _lat(s) + " ms"))
    guard = results.get("guard", {})
    for name in ("short", "long"):
        if name in guard:
            g = guard[name]
            spread = g.get("round_p50_ms")
            rounds = f", round p50s {min(spread):.2f}–{max(spread):.2f} ms" if spread else ""
            rows.append((f"guard, {g['words']}-word answer p50/p95", f"{_fmt(g['p50_ms'])} / {_fmt(g['p95_ms'])} ms ({g['claims']} numbers, passed={g['passed']}{rounds})"))
    for p in results.get("scale", {}).get("points", []):
        n = p["chunks"]
        rows.append((f"{n} chunks: ask p50/p95/max", _lat(p["ask"]["latency"]) + " ms"))
        st = p["ask"]["stages"]
        names = [s for s in ("prepare", "lexical", "dense", "fusion", "compose", "guard", "other") if s in st]
        rows.append((f"{n} chunks: stage p50 {'/'.join(names)}",
                     " / ".join(_fmt(st[s]["p50_ms"]) for s in names) + " ms"))
        rows.append((f"{n} chunks: dense-only p50/p95/max", _lat(p["dense_only"]["latency"]) + " ms"))
        rows.append((f"{n} chunks: RSS / first ask / store write", f"{_fmt(p['rss_mb'], 'MB')} / {_fmt(p['first_ask_s'], 's')} / {_fmt(p['store_write_s'], 's')}"))
    base = results.get("baseline", {})
    if "plain" in base:
        rows.append(("plain LangChain chain p50/p95/max", _lat(base["plain"]) + " ms"))
        rows.append(("ours, interleaved with it, p50/p95/max", _lat(base["ours"]) + " ms"))
        rows.append(("ours / plain (p50, p95)", f"{_fmt(base['ratio_p50'])}x, {_fmt(base['ratio_p95'])}x"))
    cold = results.get("cold_start", {})
    if "first_answer_s" in cold:
        rows.append(("cold start to first answer", _fmt(cold["first_answer_s"], "s")))
    srv = results.get("server", {})
    if "ask" in srv:
        rows.append(("server mode: warm ask p50/p95/max", _lat(srv["ask"]["latency"]) + " ms"))
        rows.append(("embedded, interleaved with it, p50/p95/max", _lat(srv["embedded_ask"]["latency"]) + " ms"))
        rows.append(("server / embedded (p50)", f"{_fmt(srv['ratio_p50_vs_embedded'])}x"))
    for name in ("cold_start", "server", "baseline"):
        sec = results.get(name, {})
        if "skipped" in sec:
            rows.append((name.replace("_", " "), f"skipped: {sec['skipped']}"))
    return rows


def render_table(results: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"Dosewise bench ({results['meta']['total_seconds']:.0f} s run)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in table_rows(results):
        table.add_row(name, value)
    targets = Table(title="Targets")
    for col in ("target", "goal", "measured", "met"):
        targets.add_column(col)
    for t in results.get("targets", []):
        met = {True: "[green]met[/]", False: "[red]missed[/]", None: "not measured"}[t["met"]]
        targets.add_row(t["name"], t["target"], _fmt(t["measured"], t["unit"]), met)
    from rich.console import Group

    return Group(table, targets)
