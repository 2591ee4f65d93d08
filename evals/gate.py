"""The CI gate: thresholds kept in one file (``evals/thresholds.toml``) checked against a run."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_THRESHOLDS", "check_thresholds", "load_thresholds"]

DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")


def load_thresholds(path: str | Path | None = None) -> dict[str, dict[str, float]]:
    with open(path or DEFAULT_THRESHOLDS, "rb") as fh:
        data = tomllib.load(fh)
    return {"min": dict(data.get("min", {})), "max": dict(data.get("max", {}))}


def _value(key: str, summary: dict[str, Any], guard_summary: dict[str, Any]) -> Any:
    # "guard_*" keys read the guard's overall summary; everything else the items' overall one.
    if key.startswith("guard_"):
        return guard_summary["overall"].get(key.removeprefix("guard_"))
    return summary["overall"].get(key)


def check_thresholds(
    summary: dict[str, Any], guard_summary: dict[str, Any], thresholds: dict[str, dict[str, float]]
) -> list[str]:
    """Human-readable failures; empty when the run meets every threshold. A metric the run could
    not measure (None) fails: a gate that silently passes on no data is no gate."""
    failures: list[str] = []
    for key, bound in thresholds.get("min", {}).items():
        value = _value(key, summary, guard_summary)
        if value is None or value < bound:
            failures.append(f"{key} = {value} < {bound}")
    for key, bound in thresholds.get("max", {}).items():
        value = _value(key, summary, guard_summary)
        if value is None or value > bound:
            failures.append(f"{key} = {value} > {bound}")
    return failures
