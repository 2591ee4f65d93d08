"""results.json, report.md, report.html (plots embedded) and the headline table of a run."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.run import EvalResult

__all__ = ["HEADLINE", "headline_rows", "print_headline", "write_reports"]

# (label, key in the summary's "overall", higher_is_better, kind) — the rows everyone reads.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("Retrieval recall@4", "recall_at_4", "pct"),
    ("Retrieval recall@k", "recall_at_k", "pct"),
    ("Retrieval MRR", "mrr", "num"),
    ("Key-number recall", "key_number_recall", "pct"),
    ("Key-number focus (shown numbers that are expected ones)", "key_number_focus", "pct"),
    ("Numbers shown per answer", "numbers_shown_per_answer", "num"),
    ("Sources per answer", "sources_per_answer", "num"),
    ("Words per answer", "words_per_answer", "num"),
    ("Number precision (verified / shown claims)", "number_precision", "pct"),
    ("Unverified numbers shown", "unverified_numbers_shown", "int"),
    ("Citation precision", "citation_precision", "pct"),
    ("Citation recall", "citation_recall", "pct"),
    ("In-corpus questions answered", "answered_rate", "pct"),
    ("Out-of-corpus abstained", "out_of_corpus_abstained", "pct"),
    ("Numbers shown on out-of-corpus questions", "numbers_shown_out_of_corpus", "int"),
    ("Abstention correctness", "abstention_correct", "pct"),
    ("Bad patient input rejected", "bad_input_rejected", "pct"),
    ("must_not_contain violations", "must_not_contain_violations", "int"),
    # Items naming their expected drugs (imported-document sets): a cited document's main drug
    # is another one.
    ("Answers citing a document about another drug", "answers_about_another_drug", "int"),
    ("Latency p50 (ms)", "latency_p50_ms", "ms"),
    ("Latency p95 (ms)", "latency_p95_ms", "ms"),
)


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "int":
        return str(int(value))
    if kind == "ms":
        return f"{value:.1f}"
    return f"{value:.2f}"


def headline_rows(result: EvalResult) -> list[tuple[str, str, str]]:
    ours = result.summary["overall"]
    base = result.baseline_summary["overall"] if result.baseline_summary else None
    rows = []
    for label, key, kind in HEADLINE:
        rows.append((label, _fmt(ours.get(key), kind), _fmt(base.get(key), kind) if base else "—"))
    g = result.guard_summary["overall"]
    rows.append(
        ("Guard catch rate (answer file + mutants)", _fmt(g["catch_rate"], "pct"), "no guard")
    )
    rows.append(("Guard false-block rate", _fmt(g["false_block_rate"], "pct"), "no guard"))
    return rows + _draft_rows(result.drafts_summary)


def _draft_rows(d: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """The guard on real LLM drafts (evals/drafts.py), next to the composer-answer rows above."""
    if not d or "error" in d:
        return [("Guard on real LLM drafts", f"error: {d['error']}", "no guard")] if d else []
    what = f"{d['drafts']} drafts, {len(d['models'])} models"
    return (
        [
            (
                f"Guard false-block rate, real LLM drafts ({d['correct_drafts']} correct of {what})",
                _fmt(d["false_block_rate"], "pct"),
                "no guard",
            ),
            (
                f"Guard catch rate, real LLM drafts ({d['block_numbers']} wrong numbers)",
                _fmt(d["catch_rate"], "pct"),
                "no guard",
            ),
        ]
        + [
            (f"  catch rate: {cat} ({c['n']})", _fmt(c["catch_rate"], "pct"), "no guard")
            for cat, c in d["by_category"].items()
        ]
        + _paraphrase_rows(d.get("paraphrases"))
    )


def _paraphrase_rows(p: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    if not p or "error" in p:
        return (
            [("Guard on hand-written paraphrases", f"error: {p['error']}", "no guard")] if p else []
        )
    return [
        (
            f"Guard false-block rate, hand-written paraphrases ({p['correct_drafts']} correct)",
            _fmt(p["false_block_rate"], "pct"),
            "no guard",
        ),
        (
            f"Guard catch rate, hand-written paraphrases ({p['block_numbers']} wrong numbers)",
            _fmt(p["catch_rate"], "pct"),
            "no guard",
        ),
    ]


def print_headline(result: EvalResult) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Dosewise eval — {len(result.items)} questions, {len(result.guard)} guard cases"
    )
    table.add_column("metric")
    table.add_column("dosewise", justify="right")
    table.add_column("baseline (LangChain k=4)", justify="right")
    for row in headline_rows(result):
        table.add_row(*row)
    console = Console()
    console.print(table)
    if result.issues:
        console.print(f"[yellow]{len(result.issues)} input line(s) could not be used:[/yellow]")
        for i in result.issues[:20]:
            console.print(f"  {i.path}:{i.line}: {i.reason}")


def _plots(result: EvalResult, out: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    by_tag = result.summary["by_tag"]
    tags = list(by_tag)
    if tags:
        metrics = (
            ("key_number_recall", "key-number recall"),
            ("recall_at_4", "recall@4"),
            ("abstention_correct", "abstention"),
            ("number_precision", "number precision"),
            ("bad_input_rejected", "bad input rejected"),
        )
        # Horizontal bars: tag sets of external files can be long, so tags get one row each.
        fig, ax = plt.subplots(figsize=(9, 1.5 + 0.42 * len(tags)))
        height = 0.8 / len(metrics)
        for j, (key, label) in enumerate(metrics):
            vals = [by_tag[t].get(key) for t in tags]
            ys = [i + j * height for i in range(len(tags))]
            ax.barh(ys, [v if v is not None else 0 for v in vals], height, label=label)
        ax.set_yticks([i + 0.4 - height / 2 for i in range(len(tags))], tags, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.05)
        ax.set_xlabel("score (no bar = not measurable for that tag)")
        ax.set_title("Dosewise metrics per tag")
        ax.legend(
            fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.6 / len(tags) - 0.04)
        )
        fig.tight_layout()
        fig.savefig(out / "metrics_by_tag.png", dpi=110)
        plt.close(fig)
        files["metrics_by_tag"] = "metrics_by_tag.png"

    fig, ax = plt.subplots(figsize=(7, 4))
    ours = [i.latency_ms for i in result.items if not i.error]
    if ours:
        ax.hist(ours, bins=30, alpha=0.7, label="dosewise")
    theirs = [i.latency_ms for i in result.baseline_items if not i.error]
    if theirs:
        ax.hist(theirs, bins=30, alpha=0.6, label="baseline")
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Latency distribution")
    if ours or theirs:
        ax.legend()
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    files["latency"] = "latency.png"

    conf = result.guard_summary["overall"]["confusion"]
    matrix = [
        [conf["expect_pass"]["verdict_pass"], conf["expect_pass"]["verdict_block"]],
        [conf["expect_block"]["verdict_pass"], conf["expect_block"]["verdict_block"]],
    ]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for r in range(2):
        for c in range(2):
            ax.text(c, r, str(matrix[r][c]), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["passed", "blocked"])
    ax.set_yticks([0, 1], ["should pass", "should block"])
    ax.set_title("Guard confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "guard_confusion.png", dpi=110)
    plt.close(fig)
    files["guard_confusion"] = "guard_confusion.png"
    return files


def _tag_table(summary: dict[str, Any]) -> list[str]:
    cols = (
        ("n", "int"),
        ("recall_at_4", "pct"),
        ("mrr", "num"),
        ("key_number_recall", "pct"),
        ("number_precision", "pct"),
        ("citation_precision", "pct"),
        ("citation_recall", "pct"),
        ("abstention_correct", "pct"),
        ("bad_input_rejected", "pct"),
        ("must_not_contain_violations", "int"),
        ("latency_p50_ms", "ms"),
    )
    lines = ["| tag | " + " | ".join(c for c, _ in cols) + " |", "|---|" + "---|" * len(cols)]
    for tag, s in summary["by_tag"].items():
        lines.append(f"| {tag} | " + " | ".join(_fmt(s.get(c), k) for c, k in cols) + " |")
    return lines


def _markdown(result: EvalResult, plots: dict[str, str]) -> str:
    lines = [
        "# Dosewise evaluation report",
        "",
        f"{len(result.items)} questions, {len(result.guard)} guard cases, "
        f"{result.seconds:.1f} s ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.stage_seconds.items())
        + ").",
        "",
        "## Headline",
        "",
        "| metric | dosewise | baseline (LangChain k=4) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in headline_rows(result)]
    lines += [
        "",
        "Definitions: number precision counts the claims of shown answers whose guard "
        "status is supported or derived; the baseline has no guard, so every number it shows "
        "is unverified. Key-number focus is the share of numbers shown (on questions with "
        "expected numbers) that are equivalent to an expected number. Citation precision/"
        "recall follow ALCE with deterministic number matching; derived patient doses are "
        "excluded (their support is the derivation). Retrieval recall@4/@k and MRR are over "
        "ranked chunks against expected.sources (document ids); k is the assistant's k "
        "(the baseline retrieves only 4 chunks, so its recall@k is its recall@4). The "
        "baseline never abstains and never reads patient input; its answer is its top "
        "passages, so its key-number recall measures retrieval, not answering.",
        "",
        "## Per tag (dosewise)",
        "",
    ]
    lines += _tag_table(result.summary)
    if result.baseline_summary:
        lines += ["", "## Per tag (baseline)", ""] + _tag_table(result.baseline_summary)
    gs = result.guard_summary
    lines += [
        "",
        "## Guard",
        "",
        "| group | n | catch rate | false-block rate |",
        "|---|---|---|---|",
    ]
    for name, group in [
        ("overall", gs["overall"]),
        *gs["by_origin"].items(),
        *((f"mutation: {k}", v) for k, v in gs["by_mutation_kind"].items()),
    ]:
        lines.append(
            f"| {name} | {group['n']} | {_fmt(group['catch_rate'], 'pct')} | "
            f"{_fmt(group['false_block_rate'], 'pct')} |"
        )
    missed = [g for g in result.guard if not g.correct]
    if missed:
        lines += ["", f"### Guard errors: {len(missed)} (up to 3 examples per origin and kind)", ""]
        shown: dict[tuple[str, str], int] = {}
        for g in missed:
            key = (g.origin, g.kind)
            shown[key] = shown.get(key, 0) + 1
            if shown[key] > 3:
                continue
            lines.append(
                f"- `{g.id}` expected {g.expect}, got {g.verdict}"
                + (f": {g.detail}" if g.detail else "")
                + (f" ({'; '.join(g.failed)})" if g.failed else "")
                + (f" error: {g.error}" if g.error else "")
            )
    failing = [
        i
        for i in result.items
        if i.numbers_missing
        or i.error
        or i.must_not_contain_hits
        or i.abstention_ok is False
        or i.rejection_ok is False
    ]
    if failing:
        lines += ["", "## Items needing attention (dosewise)", ""]
        for i in failing:
            why = []
            if i.error:
                why.append(f"error: {i.error}")
            if i.numbers_missing:
                why.append("missing " + ", ".join(i.numbers_missing))
            if i.abstention_ok is False:
                why.append(f"abstention wrong (status {i.status})")
            if i.rejection_ok is False:
                why.append(f"bad input not rejected (status {i.status})")
            if i.must_not_contain_hits:
                why.append("contains " + ", ".join(i.must_not_contain_hits))
            lines.append(f"- `{i.id}` [{', '.join(i.tags)}]: " + "; ".join(why))
    if result.issues:
        lines += ["", "## Input lines not used", ""]
        lines += [f"- {i.path}:{i.line}: {i.reason}" for i in result.issues]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def _html(markdown_text: str, out: Path, plots: dict[str, str]) -> str:
    # Rendered without a Markdown dependency: tables and lists become <pre>-free HTML blocks.
    body: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            body.append("<table>")
            for n, r in enumerate(rows):
                cells = [html.escape(c.strip()) for c in r.strip().strip("|").split("|")]
                tag = "th" if n == 0 else "td"
                body.append("<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
            body.append("</table>")
            table.clear()

    for line in markdown_text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("!["):
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    for name, path in plots.items():
        data = base64.b64encode((out / path).read_bytes()).decode("ascii")
        body.append(
            f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
            f"<figcaption>{name}</figcaption></figure>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}td:first-child{text-align:left}img{max-width:100%}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Dosewise evaluation</title>"
        f"<style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n"
    )


def write_reports(result: EvalResult, out: Path) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(
        json.dumps(result.to_json(), indent=2, default=str), encoding="utf-8"
    )
    plots = _plots(result, out)
    md = _markdown(result, plots)
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "report.html").write_text(_html(md, out, plots), encoding="utf-8")
    return {
        "results": str(out / "results.json"),
        "report_md": str(out / "report.md"),
        "report_html": str(out / "report.html"),
        **{k: str(out / v) for k, v in plots.items()},
    }
