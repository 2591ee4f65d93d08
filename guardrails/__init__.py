"""Dosewise dose guard: a pure, deterministic, fail-closed library.

Parse every number in an answer, normalise it, and verify it against the passages it cites,
the dose calculator and the dose-limit table. See ARCHITECTURE.md for the contract.
"""

from guardrails import mutations
from guardrails.calculator import calculate, validate_patient
from guardrails.errors import GuardrailsError, LimitsFileError, PatientInputError
from guardrails.limits import LimitRow, LimitTable, load_limits
from guardrails.model import (
    AnswerVerdict,
    ClaimVerdict,
    Derivation,
    Passage,
    PatientContext,
    Quantity,
    Status,
)
from guardrails.mutations import Mutant, mutate_answer
from guardrails.quantities import format_quantity, parse_quantities, quantities_equivalent
from guardrails.verify import check_answer

__all__ = [
    "AnswerVerdict",
    "ClaimVerdict",
    "Derivation",
    "GuardrailsError",
    "LimitRow",
    "LimitTable",
    "LimitsFileError",
    "Mutant",
    "Passage",
    "PatientContext",
    "PatientInputError",
    "Quantity",
    "Status",
    "calculate",
    "check_answer",
    "format_quantity",
    "load_limits",
    "mutate_answer",
    "mutations",
    "parse_quantities",
    "quantities_equivalent",
    "validate_patient",
]
