"""Drug names in any text, from a maintained lexicon: ``drug-named-entity-recognition``.

That package (MIT, offline: its dictionary ships inside it) maps ~107,000 generic names, brands
and synonyms from NHS, MeSH, Wikipedia and DrugBank data to ~20,000 drugs ("Glucophage" ->
metformin, "Keppra" -> levetiracetam). The project's own table (``guardrails/lexicon.toml``)
goes on top: it keeps our generic naming ("mycophenolate", not "mycophenolate mofetil") and the
abbreviations clinicians type that the lexicon lacks (MMF, AZA, MTX, HCQ).

Only the package's data file is read: importing the package itself builds an n-gram index we
do not use and wires helpers that can reach the network (OMOP ids, structure downloads), which
must never run here. Reading that file (bz2 pickle) and merging our table into it took ~0.9 s,
paid by the first question of every process; so the merged table is kept as plain JSON in
``cache_dir`` (default ``~/.cache/dosewise/lexicon``, ~5 MB, read in ~0.03 s), made from the
installed package at ingest (``prepare``) or on first use, and made again whenever the package
file, our table or the format changes (they name the file). Nothing is downloaded.
"""

from __future__ import annotations

import bz2
import hashlib
import importlib.util
import json
import os
import pickle
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from guardrails.lexicon import DRUG_ALIASES

__all__ = ["DEFAULT_CACHE_DIR", "DrugLexicon", "DrugMention", "default_lexicon"]

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "dosewise" / "lexicon"
# Bumped whenever the cached table's content or layout changes, so an older file is never read.
_CACHE_FORMAT = "1"

_WORD_RE = re.compile(r"[a-z0-9][a-z0-9'’-]*")
_MAX_WORDS = 4
# Lexicon entries that are ordinary words in dosing text (or too short to trust alone).
_NOT_DRUGS = frozenset({
    "dose", "doses", "day", "daily", "tablet", "tablets", "oral", "water", "iron", "gold", "lead",
    "sodium", "potassium", "calcium", "magnesium", "oxygen", "alcohol", "glucose", "salt", "zinc",
    "copper", "vitamin", "vitamins", "sugar", "caffeine", "nicotine", "blood", "plasma", "serum",
    "saline", "urea", "air", "light", "cold", "heat", "rest", "diet", "food", "milk", "tea",
    "coffee", "fish", "protein", "fat", "fibre", "fiber", "insulin pump", "contrast",
})  # fmt: skip


@dataclass(frozen=True)
class DrugMention:
    start: int
    end: int
    written: str
    generic: str


def _package_file() -> Path | None:
    """The package's data file, or None when the package is not installed."""
    spec = importlib.util.find_spec("drug_named_entity_recognition")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).with_name("drug_ner_dictionary.pkl.bz2")


def _package_dictionary(path: Path | None) -> dict[str, str]:
    """variant -> canonical name, from the package's own data file (empty if not installed)."""
    if path is None:
        return {}
    with bz2.open(path, "rb") as fh:
        data = pickle.load(fh)  # noqa: S301 - the package's own shipped data file
    out: dict[str, str] = {}
    for variant, canonicals in data["drug_variant_to_canonical"].items():
        if canonicals:
            out[str(variant).lower()] = str(canonicals[0]).lower()
    return out


def _read_table(path: Path) -> dict[str, str] | None:
    """The cached table, or None when it is missing or not one we wrote (then it is made
    again from the package)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _CACHE_FORMAT:
        return None
    table = data.get("table")
    return table if isinstance(table, dict) else None


def _write_table(path: Path, table: dict[str, str]) -> None:
    """Written to a temporary file and renamed, so a reader never sees half a table; a folder
    that cannot be written only means the next process reads the package again."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": _CACHE_FORMAT, "table": table}, fh, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


class DrugLexicon:
    """``find(text)`` -> drug mentions (longest match first, no overlaps); ``generic(name)``."""

    def __init__(
        self,
        extra: dict[str, str] | None = None,
        *,
        use_package: bool = True,
        cache_dir: str | Path | None = None,
    ) -> None:
        """``cache_dir``: where the merged table is kept between processes (see the module
        docstring); default ``~/.cache/dosewise/lexicon``."""
        self._extra = dict(DRUG_ALIASES) | {k.lower(): v.lower() for k, v in (extra or {}).items()}
        self._use_package = use_package
        self.cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        self._lock = threading.Lock()

    def prepare(self) -> None:
        """Make the cached table now (at ingest), so that no question waits for the package
        file. A folder that cannot be written only means each process reads the package."""
        _ = self._table

    def _cache_file(self, source: Path) -> Path | None:
        try:
            stat = source.stat()
        except OSError:
            return None
        key = json.dumps([
            _CACHE_FORMAT, str(source), stat.st_size, stat.st_mtime_ns,
            sorted(self._extra.items()), sorted(_NOT_DRUGS),
        ])  # fmt: skip
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"

    @cached_property
    def _table(self) -> dict[str, str]:
        with self._lock:
            source = _package_file() if self._use_package else None
            cached = self._cache_file(source) if source is not None else None
            table = _read_table(cached) if cached is not None else None
            if table is None:
                table = self._merged(_package_dictionary(source))
                if cached is not None:
                    _write_table(cached, table)
            return table

    def _merged(self, table: dict[str, str]) -> dict[str, str]:
        """The package's names without ordinary words, under our generic names, plus ours."""
        table = {k: v for k, v in table.items() if k not in _NOT_DRUGS and len(k) >= 4}
        # Our generic names win: the lexicon's "mycophenolate mofetil" is our mycophenolate.
        ours = set(self._extra.values())
        for variant, canonical in table.items():
            if canonical in self._extra:
                table[variant] = self._extra[canonical]
            elif " " in canonical and canonical.split(" ", 1)[0] in ours:
                table[variant] = canonical.split(" ", 1)[0]  # a salt or ester of our drug
        table.update(self._extra)
        return table

    def generic(self, name: str) -> str | None:
        """The generic name ``name`` stands for, or None when it is no drug we know."""
        return self._table.get(" ".join(_WORD_RE.findall(name.lower())))

    def find(self, text: str) -> list[DrugMention]:
        lower = text.lower()
        words = [(m.start(), m.end()) for m in _WORD_RE.finditer(lower)]
        table = self._table
        out: list[DrugMention] = []
        i = 0
        while i < len(words):
            for n in range(min(_MAX_WORDS, len(words) - i), 0, -1):
                start, end = words[i][0], words[i + n - 1][1]
                phrase = " ".join(lower[s:e] for s, e in words[i : i + n])
                generic = table.get(phrase) or table.get(phrase.rstrip("'’s"))
                if generic is not None:
                    out.append(DrugMention(start, end, text[start:end], generic))
                    i += n
                    break
            else:
                i += 1
        return out

    @cached_property
    def _by_shape(self) -> dict[tuple[str, int], list[str]]:
        shapes: dict[tuple[str, int], list[str]] = {}
        for variant in self._table:
            if " " not in variant and variant.isalpha():
                shapes.setdefault((variant[0], len(variant)), []).append(variant)
        return shapes

    def closest(self, word: str, cutoff: float = 0.9) -> str | None:
        """The generic a misspelt single word most likely means ("Metroprolol" -> metoprolol),
        or None. Only words of 7 letters or more, compared with names of the same first
        letter and nearly the same length: a short word is too easily another drug."""
        import difflib

        w = word.lower()
        if len(w) < 7 or not w.isalpha():
            return None
        pool = [v for n in range(len(w) - 2, len(w) + 3) for v in self._by_shape.get((w[0], n), ())]
        best = difflib.get_close_matches(w, pool, n=1, cutoff=cutoff)
        return self._table[best[0]] if best else None

    def drugs_in(self, text: str) -> tuple[str, ...]:
        """Generic names of the drugs ``text`` names, in order, each once."""
        return tuple(dict.fromkeys(m.generic for m in self.find(text)))

    def names_for(self, generics: Iterable[str]) -> dict[str, str]:
        """Every variant of the given generics (for a small, fast matcher of just these)."""
        wanted = set(generics)
        return {v: g for v, g in self._table.items() if g in wanted}


_DEFAULT: DrugLexicon | None = None
_DEFAULT_LOCK = threading.Lock()


def default_lexicon() -> DrugLexicon:
    """One lexicon per process (its table is built on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = DrugLexicon()
        return _DEFAULT
