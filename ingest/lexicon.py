"""Drug names in any text, from a maintained lexicon: ``drug-named-entity-recognition``.

That package (MIT, offline: its dictionary ships inside it) maps ~107,000 generic names, brands
and synonyms from NHS, MeSH, Wikipedia and DrugBank data to ~20,000 drugs ("Glucophage" ->
metformin, "Keppra" -> levetiracetam). The project's own table (``guardrails/lexicon.toml``)
goes on top: it keeps our generic naming ("mycophenolate", not "mycophenolate mofetil") and the
abbreviations clinicians type that the lexicon lacks (MMF, AZA, MTX, HCQ).

Only the package's data file is read (bz2 pickle, ~0.5 s once per process): importing the
package itself builds an n-gram index we do not use and wires helpers that can reach the
network (OMOP ids, structure downloads), which must never run here.
"""

from __future__ import annotations

import bz2
import importlib.util
import pickle
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from guardrails.lexicon import DRUG_ALIASES

__all__ = ["DrugLexicon", "DrugMention", "default_lexicon"]

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


def _package_dictionary() -> dict[str, str]:
    """variant -> canonical name, from the package's own data file (empty if not installed)."""
    spec = importlib.util.find_spec("drug_named_entity_recognition")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).with_name("drug_ner_dictionary.pkl.bz2")
    with bz2.open(path, "rb") as fh:
        data = pickle.load(fh)  # noqa: S301 - the package's own shipped data file
    out: dict[str, str] = {}
    for variant, canonicals in data["drug_variant_to_canonical"].items():
        if canonicals:
            out[str(variant).lower()] = str(canonicals[0]).lower()
    return out


class DrugLexicon:
    """``find(text)`` -> drug mentions (longest match first, no overlaps); ``generic(name)``."""

    def __init__(self, extra: dict[str, str] | None = None, *, use_package: bool = True) -> None:
        self._extra = dict(DRUG_ALIASES) | {k.lower(): v.lower() for k, v in (extra or {}).items()}
        self._use_package = use_package
        self._lock = threading.Lock()

    @cached_property
    def _table(self) -> dict[str, str]:
        with self._lock:
            table = _package_dictionary() if self._use_package else {}
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
