"""The project's one table of drug and indication names (``lexicon.toml``), read once.

The guard, ingest and the assistant all use it, so a brand or abbreviation means the same drug
everywhere. Broader drug recognition (thousands of generics and brands) is ingest's
``DrugLexicon``, which puts this table on top of a maintained lexicon.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from types import MappingProxyType

__all__ = ["DRUG_ALIASES", "INDICATION_ALIASES", "canonical_indication"]

_PATH = Path(__file__).with_name("lexicon.toml")


@cache
def _load() -> tuple[Mapping[str, str], Mapping[str, tuple[str, ...]]]:
    data = tomllib.loads(_PATH.read_text(encoding="utf-8"))
    drugs = {str(k).lower(): str(v).lower() for k, v in data["drugs"].items()}
    indications = {str(k): tuple(str(a).lower() for a in v) for k, v in data["indications"].items()}
    return MappingProxyType(drugs), MappingProxyType(indications)


DRUG_ALIASES: Mapping[str, str] = _load()[0]  # alias -> generic
INDICATION_ALIASES: Mapping[str, tuple[str, ...]] = _load()[1]  # canonical -> aliases

_BY_ALIAS = {alias: canonical for canonical, names in INDICATION_ALIASES.items() for alias in names}


def canonical_indication(name: str) -> str:
    """The canonical form of an indication name ("LN" -> "lupus nephritis"); unknown names
    come back lower-cased and stripped."""
    key = " ".join(name.lower().split())
    return _BY_ALIAS.get(key, key)
