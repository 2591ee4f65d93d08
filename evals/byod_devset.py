"""Dev set for "bring your own documents": real DailyMed label excerpts as imported documents.

``python -m evals.byod_devset --out DIR`` reads
``../shared/datasets/labels/medicationqa_dailymed_label_excerpts.jsonl`` (297 excerpts, 239
drugs, each with the MedicationQA question it answers) and writes, into ``DIR`` (outside the
repository: the label text is never committed):

- ``docs/``: one document per DailyMed label (set id), its excerpts under their label section
  headings, in turn as plain text, HTML and PDF (so every format is exercised);
- ``questions.jsonl``: the dose questions in the eval format (``evals/schema.py``), each
  expecting the dose figures its excerpt states and the document's id as its source.

Which questions are kept, conservatively: the question asks about a dose or strength (its type
is a dose type, or it says dose, mg, strength, how much, how many, maximum...), and its excerpt
states at least one dose figure (mg, mcg, units...). Expected numbers are only the excerpt's dose
figures; percentages, durations, counts and ages are left out, since a question about a dose does
not ask for them.

When ../shared is absent the builder says so and exits 0 (nothing to build).
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_SOURCE", "build_devset", "main", "write_pdf"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = (
    REPO.parent / "shared" / "datasets" / "labels" / "medicationqa_dailymed_label_excerpts.jsonl"
)
FORMATS = ("txt", "html", "pdf")
_DOSE_QUESTION_RE = re.compile(
    r"\b(?:doses?|dosage|dosing|mg|mcg|milligrams?|strengths?|how much|how many|maximum|max"
    r"|units?|sizes?)\b|\d\s*mg",
    re.I,
)
_DOSE_TYPES = frozenset({"Dose", "Dose/Potency", "Overdose"})
_SLUG_RE = re.compile(r"[^a-z0-9]+")
_UNIT_WRITTEN_RE = re.compile(r"[A-Za-zµ]")


def _slug(text: str) -> str:
    return _SLUG_RE.sub("-", text.lower()).strip("-") or "document"


def write_pdf(path: Path, title: str, pages: Sequence[Sequence[str]]) -> None:
    """A real text PDF (matplotlib's PDF backend, TrueType fonts so the text is extractable):
    ``pages`` is a list of pages, each a list of lines (already wrapped)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with (
        matplotlib.rc_context({"pdf.fonttype": 42}),
        PdfPages(path, metadata={"Title": title}) as pdf,
    ):
        for lines in pages:
            fig = plt.figure(figsize=(8.27, 11.69))
            y = 0.95
            for line in lines:
                fig.text(0.06, y, line, fontsize=9, family="DejaVu Sans")
                y -= 0.018
            pdf.savefig(fig)
            plt.close(fig)


def _wrap(text: str, width: int = 95) -> list[str]:
    import textwrap

    out: list[str] = []
    for para in text.split("\n"):
        out.extend(textwrap.wrap(para, width) or [""])
    return out


def dose_figures(excerpt: str) -> list[str]:
    """The dose figures an excerpt states, each once, as written."""
    from guardrails import parse_quantities

    seen: list[str] = []
    for q in parse_quantities(excerpt):
        # A figure must carry its unit as written: "Day 1, 600 mg/day" is read as a list of
        # doses by the parser, but the "1" is a day, not a dose.
        if q.kind == "dose" and _UNIT_WRITTEN_RE.search(q.text) and q.text not in seen:
            seen.append(q.text)
    return seen


def _keep(row: dict[str, Any]) -> bool:
    asks_dose = row.get("question_type") in _DOSE_TYPES or bool(
        _DOSE_QUESTION_RE.search(str(row.get("question", "")))
    )
    return asks_dose and bool(dose_figures(str(row.get("label_excerpt", ""))))


def _title(focus: str) -> str:
    return f"{focus.strip()} — prescribing information (excerpt)"


def build_devset(source: Path, out: Path) -> dict[str, int]:
    """Write the documents and questions; returns counts."""
    rows = [
        json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_label[str(row.get("dailymed_setid") or row["id"])].append(row)
    docs = out / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    questions: list[dict[str, Any]] = []
    formats: dict[str, int] = defaultdict(int)
    for i, (setid, group) in enumerate(sorted(by_label.items())):
        focus = str(group[0].get("focus_drug") or "Label")
        doc_id = _slug(f"{focus}-{setid[:8]}")
        title = _title(focus)
        sections: dict[str, list[str]] = defaultdict(list)
        for row in group:
            excerpt = str(row.get("label_excerpt", "")).strip()
            if excerpt and excerpt not in sections[row.get("label_section_title") or "LABEL"]:
                sections[str(row.get("label_section_title") or "LABEL")].append(excerpt)
        fmt = FORMATS[i % len(FORMATS)]
        formats[fmt] += 1
        path = docs / f"{doc_id}.{fmt}"
        if fmt == "txt":
            parts = [title, ""]
            for heading, texts in sections.items():
                parts += [heading.upper(), *texts, ""]
            path.write_text("\n".join(parts), encoding="utf-8")
        elif fmt == "html":
            body = "".join(
                f"<h2>{html.escape(h)}</h2>" + "".join(f"<p>{html.escape(t)}</p>" for t in ts)
                for h, ts in sections.items()
            )
            path.write_text(
                f"<html><head><title>{html.escape(title)}</title></head><body>"
                f"<h1>{html.escape(title)}</h1>{body}</body></html>",
                encoding="utf-8",
            )
        else:
            lines = [title, ""]
            for heading, texts in sections.items():
                lines.append(heading.upper())
                for t in texts:
                    lines.extend(_wrap(t))
                lines.append("")
            pages = [lines[j : j + 48] for j in range(0, len(lines), 48)]
            write_pdf(path, title, pages)
        from ingest.loaders import load_file

        drugs = list(load_file(path).drugs)
        for row in group:
            if not _keep(row):
                continue
            questions.append(
                {
                    "id": f"byod-{row['id']}",
                    "question": str(row["question"]),
                    "expected": {
                        "numbers": dose_figures(str(row["label_excerpt"])),
                        "sources": [doc_id],
                        # What the document is about, as ingest reads it (for "answers about
                        # another drug"); the label's own product name beside it.
                        "drugs": drugs,
                        "focus_drug": focus,
                    },
                    "tags": ["byod", f"format:{fmt}", f"type:{row.get('question_type', '')}"],
                }
            )
    with (out / "questions.jsonl").open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q) + "\n")
    return {"documents": len(by_label), "questions": len(questions), **formats}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.byod_devset", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="folder to write (outside the repository)"
    )
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="the label excerpts JSONL"
    )
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"byod dev set: {args.source} is absent; nothing to build.")
        return 0
    out: Path = args.out.resolve()
    if out.is_relative_to(REPO):
        print(
            f"byod dev set: refusing to write label text inside the repository ({out})",
            file=sys.stderr,
        )
        return 2
    counts = build_devset(args.source, out)
    print(
        f"byod dev set: {counts['documents']} documents "
        f"({counts.get('txt', 0)} text, {counts.get('html', 0)} HTML, {counts.get('pdf', 0)} PDF), "
        f"{counts['questions']} questions -> {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
