"""User-facing errors of the dose guard. Messages are shown to clinicians as they are."""

from __future__ import annotations

__all__ = ["GuardrailsError", "LimitsFileError", "PatientInputError"]


class GuardrailsError(Exception):
    """Base class for errors raised by the guardrails package."""


class LimitsFileError(GuardrailsError):
    """The dose-limit table is missing or has a malformed row."""


class PatientInputError(GuardrailsError, ValueError):
    """Patient context that no dose may be computed from (message says what to fix)."""
