"""User-facing errors of the evaluation harness (the CLI prints the message, no traceback)."""

from __future__ import annotations

__all__ = ["EvalInputError"]


class EvalInputError(Exception):
    """An evaluation input cannot be used at all (missing file, unreadable file)."""
