"""Convert MedicationQA dosing questions into the eval question format (abstention test set).

    python -m evals.convert_medicationqa --out /tmp/medqa_questions.jsonl \
        [--source ../shared/datasets/medicationqa/medicationqa_dosing_strict.jsonl] [--corpus corpus]

Only the question text and the focus drug are used; the dataset's answers are never copied.
An item is out of corpus unless its focus drug is a drug of our corpus (generic name or a brand
name of one); ``expected.numbers`` stays empty because the dataset's answers are not ours to
verify against, unless ``--numbers-from-answers`` is given: then an in-corpus item expects the
doses its dataset answer states (mass doses only, as the guard's parser reads them), so the eval
can report key-number recall and focus on questions the team did not write. The output may not be
written inside the repository (dataset text stays out).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

__all__ = ["BRANDS", "convert", "corpus_drugs", "main"]

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = (
    REPO.parent / "shared" / "datasets" / "medicationqa" / "medicationqa_dosing_strict.jsonl"
)

# Brand → generic, for the corpus drugs only (a focus drug is often given by brand).
BRANDS: dict[str, str] = {
    "imuran": "azathioprine",
    "azasan": "azathioprine",
    "cellcept": "mycophenolate",
    "myfortic": "mycophenolate",
    "plaquenil": "hydroxychloroquine",
    "zyloprim": "allopurinol",
    "purinethol": "mercaptopurine",
    "purixan": "mercaptopurine",
    "cytoxan": "cyclophosphamide",
    "trexall": "methotrexate",
    "rheumatrex": "methotrexate",
    "otrexup": "methotrexate",
    "deltasone": "prednisone",
    "uloric": "febuxostat",
}
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---", re.DOTALL)
_SLUG = re.compile(r"[^a-z0-9]+")


def corpus_drugs(corpus_dir: Path) -> set[str]:
    drugs: set[str] = set()
    for path in sorted(corpus_dir.glob("*.md")):
        m = _FRONT.match(path.read_text(encoding="utf-8", errors="replace"))
        if not m:
            continue
        try:
            meta = yaml.safe_load(m.group(1)) or {}
        except yaml.YAMLError:
            continue
        drugs.update(str(d).lower() for d in meta.get("drugs", []) or [])
    return drugs


def _mentions(text: str, drugs: set[str]) -> str | None:
    low = text.lower()
    names = {d: d for d in drugs} | {b: g for b, g in BRANDS.items() if g in drugs}
    for name, generic in sorted(names.items()):
        # Word boundaries: "methylprednisolone" is not "prednisolone".
        if re.search(rf"(?<![a-z]){re.escape(name)}(?![a-z])", low):
            return generic
    return None


def answer_doses(answer: str) -> list[str]:
    """The doses a dataset answer states, as written ("50-100 mg", "2 mg/kg/day"), without
    repeats: the numbers an external answer to the question needed."""
    from guardrails import parse_quantities

    out: list[str] = []
    for q in parse_quantities(answer):
        if q.kind == "dose" and q.text not in out:
            out.append(q.text)
    return out


def convert(
    rows: Iterable[dict[str, object]], drugs: set[str], *, numbers_from_answers: bool = False
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for n, row in enumerate(rows, start=1):
        question = str(row.get("question") or "").strip()
        focus = str(row.get("focus_drug") or "")
        generic = _mentions(focus, drugs) if focus else _mentions(question, drugs)
        qtype = _SLUG.sub("-", str(row.get("question_type") or "unknown").lower()).strip("-")
        numbers = (
            answer_doses(str(row.get("answer") or "")) if numbers_from_answers and generic else []
        )
        out.append(
            {
                "id": str(row.get("id") or f"medicationqa-{n}"),
                "question": question,
                "expected": {"numbers": numbers, "out_of_corpus": generic is None},
                "tags": [
                    "medicationqa",
                    f"type:{qtype}",
                    "in-corpus" if generic else "out-of-corpus",
                ],
                **({"focus_drug": generic} if generic else {}),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--corpus", type=Path, default=REPO / "corpus")
    ap.add_argument(
        "--numbers-from-answers",
        action="store_true",
        help="In-corpus items expect the doses their dataset answer states.",
    )
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if out.is_relative_to(REPO):
        print(
            f"error: {out} is inside the repository; write converted datasets elsewhere",
            file=sys.stderr,
        )
        return 2
    if not args.source.is_file():
        print(f"error: {args.source} not found", file=sys.stderr)
        return 2
    rows = []
    for lineno, line in enumerate(args.source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            print(
                f"warning: {args.source}:{lineno}: skipped, invalid JSON ({exc.msg})",
                file=sys.stderr,
            )
    items = convert(rows, corpus_drugs(args.corpus), numbers_from_answers=args.numbers_from_answers)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items), "utf-8")
    inside = sum(1 for i in items if "focus_drug" in i)
    print(f"wrote {len(items)} questions to {out} ({inside} about corpus drugs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
