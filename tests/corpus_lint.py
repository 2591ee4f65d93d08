"""Helpers for the corpus lint tests: load articles, split them into sentences, find numbers,
citations and shared 12-word runs, and map parsed doses onto the limit table's bases.

Kept free of the guard and of ingest so the lint keeps working while those packages change;
the tests import the guard themselves where a check needs its parser.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CORPUS_DIR",
    "LIMITS_PATH",
    "OTHER_DRUGS",
    "SHARED_DIR",
    "Article",
    "Sentence",
    "cited_ids",
    "dose_candidates",
    "is_secondary_summary",
    "limit_rows_from_secondary_summaries",
    "limit_rows_with_unknown_sources",
    "sources_without_section",
    "uncited_number_sentences",
    "drug_before",
    "has_number",
    "limit_rows",
    "load_articles",
    "normalise",
    "shared_ngrams",
    "sentences",
    "word_ngrams",
]

REPO = Path(__file__).resolve().parents[1]
CORPUS_DIR = REPO / "corpus"
LIMITS_PATH = REPO / "guardrails" / "limits.toml"
SHARED_DIR = REPO.parent / "shared"

NGRAM = 12
_FRONT_RE = re.compile(r"\A---\n(?P<meta>.*?)\n---\n(?P<body>.*)\Z", re.DOTALL)
_HEADING_RE = re.compile(r"^#{1,6}\s")
_BULLET_RE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
# A sentence ends at . ! ? followed by space and a capital or a citation bracket; decimals
# ("0.5") never have a space after the point, so they stay inside their sentence.
_SPLIT_RE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\[(])")
_CITE_RE = re.compile(r"\[@([^\[\]\n]+)\]")
# Digits that are names, not quantities: metabolite/drug names and the RBC denominator.
_NOT_NUMBERS = re.compile(
    r"\b6-(?:TGN|MMP|MP|mercaptopurine|thioguanine|methylmercaptopurine)\b"
    r"|pmol/8\s*[x×]\s*10\^?\d+"
    r"|\b[A-Za-z]+\d+[A-Za-z\d]*",  # NUDT15, CYP2C9
    re.IGNORECASE,
)
_NUMBER_RE = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_WORD_RE = re.compile(r"[a-z0-9]+")
_DASHES = str.maketrans({"–": "-", "—": "-", "−": "-", "‑": "-", "‐": "-", "×": "x"})
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")

# Drugs the corpus names beside a dose that have no limit rows of their own (co-medications):
# a number after them belongs to them, not to the drug named earlier in the sentence.
OTHER_DRUGS = frozenset({"folic acid", "folinic acid", "mesna", "trimethoprim",
                         "co-trimoxazole", "trimethoprim-sulfamethoxazole"})  # fmt: skip

# Spellings the corpus uses for drugs in the limit table (generic names are added from it).
_DRUG_ALIASES = {
    "mycophenolate mofetil": "mycophenolate",
    "mycophenolic acid": "mycophenolate",
    "6-mercaptopurine": "mercaptopurine",
}


@dataclass(frozen=True)
class Article:
    path: Path
    meta: dict[str, Any]
    body: str

    @property
    def source_ids(self) -> set[str]:
        return {str(s.get("id")) for s in self.meta.get("sources") or [] if isinstance(s, dict)}


@dataclass(frozen=True)
class Sentence:
    text: str
    doc_id: str
    heading: str
    line: int


def load_articles(corpus_dir: Path = CORPUS_DIR) -> list[Article]:
    articles = []
    for path in sorted(corpus_dir.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        m = _FRONT_RE.match(text)
        if not m:
            raise ValueError(f"{path.name}: no YAML front matter")
        meta = yaml.safe_load(m.group("meta"))
        articles.append(
            Article(path=path, meta=meta if isinstance(meta, dict) else {}, body=m.group("body"))
        )
    return articles


def sentences(article: Article) -> Iterator[Sentence]:
    """Every sentence of the body outside headings; bullets are split like paragraphs."""
    heading = ""
    doc_id = str(article.meta.get("id", article.path.stem))
    for n, raw in enumerate(article.body.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if _HEADING_RE.match(line):
            heading = line.lstrip("#").strip()
            continue
        line = _BULLET_RE.sub("", line)
        for part in _SPLIT_RE.split(line):
            if part.strip():
                yield Sentence(text=part.strip(), doc_id=doc_id, heading=heading, line=n)


def cited_ids(text: str) -> list[str]:
    return [
        part.strip().lstrip("@")
        for group in _CITE_RE.findall(text)
        for part in group.split(";")
        if part.strip()
    ]


def has_number(text: str) -> bool:
    """True when the text holds a digit that is a quantity (not a citation, name or denominator)."""
    masked = _CITE_RE.sub(" ", text)
    masked = _NOT_NUMBERS.sub(" ", masked)
    return bool(_NUMBER_RE.search(masked))


def normalise(text: str) -> str:
    """Lower-case, one dash, 'x' for ×, no space around a dash between numbers, single spaces."""
    t = text.translate(_DASHES).translate(_SUPERSCRIPT).lower()
    t = re.sub(r"(?<=\d)\s*-\s*(?=\d)", "-", t)
    t = re.sub(r"(?<=\d)\s*%", "%", t)
    return re.sub(r"\s+", " ", t)


def word_ngrams(text: str, n: int = NGRAM) -> set[tuple[str, ...]]:
    words = _WORD_RE.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _shared_texts(shared: Path) -> Iterator[tuple[Path, str]]:
    for sub in ("reference", "datasets"):
        root = shared / sub
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            suffix = path.suffix.lower()
            if not path.is_file() or suffix not in {".jsonl", ".json", ".md", ".txt"}:
                continue
            raw = path.read_text(encoding="utf-8", errors="replace")
            # JSON is read as data so escaped newlines don't glue words together.
            if suffix == ".jsonl":
                for line in raw.splitlines():
                    try:
                        yield path, "\n".join(_strings(json.loads(line)))
                    except json.JSONDecodeError:
                        yield path, line
            elif suffix == ".json":
                try:
                    yield path, "\n".join(_strings(json.loads(raw)))
                except json.JSONDecodeError:
                    yield path, raw
            else:
                yield path, raw


@lru_cache(maxsize=2)
def shared_ngrams(shared: Path = SHARED_DIR) -> dict[tuple[str, ...], str]:
    """Every 12-word run in ../shared/reference and ../shared/datasets, mapped to its file."""
    grams: dict[tuple[str, ...], str] = {}
    for path, text in _shared_texts(shared):
        for gram in word_ngrams(text):
            grams.setdefault(gram, path.name)
    return grams


def limit_rows(path: Path = LIMITS_PATH) -> list[dict[str, str]]:
    with path.open("rb") as fh:
        return list(tomllib.load(fh).get("limit", []))


def _drug_re(names: Iterable[str]) -> tuple[re.Pattern[str], dict[str, str]]:
    table = {n.lower(): n.lower() for n in names} | _DRUG_ALIASES
    alternation = "|".join(re.escape(a) for a in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.IGNORECASE), table


def drug_before(text: str, pos: int, names: Iterable[str]) -> str | None:
    """The drug named closest before ``pos`` (the attribution the guard uses too)."""
    rx, table = _drug_re(names)
    found = [table[m.group(0).lower()] for m in rx.finditer(text[:pos])]
    return found[-1] if found else None


def dose_candidates(q: Any) -> list[tuple[str, Decimal, Decimal]]:
    """(basis, low, high) readings of a parsed dose in the limit table's vocabulary.

    A bare "50–100 mg" or "1 mg/kg" is ambiguous between per dose and per day, so both readings
    are offered; "1000 mg twice daily" is checked per dose and as its daily total.
    """
    if getattr(q, "unit", "") != "mg":
        return []
    low, high = sorted((Decimal(q.low), Decimal(q.high)))
    per = q.per or "dose"
    count = Decimal(getattr(q, "per_count", 1) or 1)
    # "every 2 weeks", "every 12 hours", "monthly": a pulse or single administration
    per_dose = per in {"dose", "month"} or per[:1].isdigit()
    if q.per_kg:
        if per == "day":
            out = [("mg/kg/day", low, high)]
            return out + ([("mg/kg/dose", low, high)] if count > 1 else [])
        if per_dose:
            return [("mg/kg/dose", low, high), ("mg/kg/day", low, high)]
        return [(f"mg/kg/{per}", low, high)]
    if q.per_m2:
        if per == "day":
            return [("mg/m2/day", low, high)]
        return [("mg/m2/dose", low, high)] if per_dose else [(f"mg/m2/{per}", low, high)]
    if per == "day":
        if count > 1:
            return [("mg/dose", low, high), ("mg/day", low * count, high * count)]
        return [("mg/day", low, high)]
    if per == "week":
        return [("mg/week", low, high), ("mg/dose", low, high)]
    if per_dose:
        return [("mg/dose", low, high), ("mg/day", low, high)]
    return [(f"mg/{per}", low, high)]


# --- the traceability lint (issue 19): each returns what is wrong, empty when all is well ------


def uncited_number_sentences(articles: Iterable[Article]) -> list[str]:
    """Sentences holding a quantity but no [@source] marker."""
    return [f"{s.doc_id}:{s.line}: {s.text}" for a in articles for s in sentences(a)
            if has_number(s.text) and not cited_ids(s.text)]  # fmt: skip


def sources_without_section(articles: Iterable[Article]) -> list[str]:
    """Front-matter sources that do not say which section of the source the article uses."""
    return [f"{a.path.name}: {s.get('id')}" for a in articles
            for s in a.meta.get("sources") or []
            if not isinstance(s, dict) or not str(s.get("section") or "").strip()]  # fmt: skip


def is_secondary_summary(source: dict[str, Any]) -> bool:
    """A secondary summary: kind "review" written by a summary service, or so labelled."""
    ref = str(source.get("reference", "")).lower()
    return "secondary summary" in ref or str(source.get("id", "")).startswith("drorac")


def _sources_by_id(articles: Iterable[Article]) -> dict[str, dict[str, Any]]:
    return {str(s["id"]): s for a in articles for s in a.meta.get("sources") or []
            if isinstance(s, dict) and "id" in s}  # fmt: skip


def limit_rows_with_unknown_sources(
    articles: Iterable[Article], rows: Iterable[dict[str, Any]]
) -> list[str]:
    """Limit rows whose source id no corpus article declares, or that name no section."""
    known = _sources_by_id(articles)
    bad = []
    for r in rows:
        if str(r.get("source", "")) not in known:
            bad.append(f"{r.get('drug')}: source {r.get('source')!r} is not in the corpus")
        elif not str(r.get("section", "")).strip():
            bad.append(f"{r.get('drug')}: row citing {r.get('source')} names no section")
    return bad


def limit_rows_from_secondary_summaries(
    articles: Iterable[Article], rows: Iterable[dict[str, Any]]
) -> list[str]:
    """Limit rows that rest on a secondary summary (a "typically" figure is never a limit)."""
    known = _sources_by_id(articles)
    bad = []
    for r in rows:
        src = known.get(str(r.get("source", "")))
        if (src is not None and is_secondary_summary(src)) or "secondary summary" in str(
            r.get("note", "")
        ).lower():
            bad.append(f"{r.get('drug')} {r.get('min')}-{r.get('max')} {r.get('basis')}: "
                       f"{r.get('source')}")  # fmt: skip
    return bad
