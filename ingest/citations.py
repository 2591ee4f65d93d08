"""Inline citation markers: ``[@source-id]`` or several in one bracket, ``[@a; @b]``."""

from __future__ import annotations

import re

__all__ = ["CITATION_RE", "cited_source_ids"]

CITATION_RE = re.compile(r"\[@([^\[\]\n]+)\]")
_ID_RE = re.compile(r"^\s*@?([A-Za-z0-9][A-Za-z0-9_.:-]*)")


def cited_source_ids(text: str) -> tuple[str, ...]:
    """Source ids cited in ``text``, in order of first appearance, without repeats."""
    seen: dict[str, None] = {}
    for match in CITATION_RE.finditer(text):
        for part in match.group(1).split(";"):
            m = _ID_RE.match(part)
            if m:
                seen.setdefault(m.group(1), None)
    return tuple(seen)
