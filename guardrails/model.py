"""Typed results of the dose guard: every check is a value, never an exception.

A failed check is a :class:`ClaimVerdict` whose status says why (guardrails-ai style);
deciding what to do with it (show, flag, withhold) belongs to the caller.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from typing import TypeVar

__all__ = [
    "AnswerVerdict",
    "ClaimVerdict",
    "Derivation",
    "DoseStatement",
    "Passage",
    "PatientContext",
    "Quantity",
    "Role",
    "Status",
    "fast_constructor",
]

_T = TypeVar("_T")


class Status(str, enum.Enum):  # noqa: UP042 - str() stays "Status.X" for callers
    SUPPORTED = "supported"
    DERIVED = "derived"
    UNSUPPORTED = "unsupported"
    OUT_OF_LIMITS = "out_of_limits"
    UNIT_MISMATCH = "unit_mismatch"

    @property
    def verified(self) -> bool:
        return self in (Status.SUPPORTED, Status.DERIVED)


@dataclass(frozen=True)
class Quantity:
    """One number (or range) found in clinical text, normalised.

    ``low``/``high`` are in the canonical unit ``unit`` (``high == low`` for a single value).
    ``per`` is the normalised frequency/basis: "day", "week", "month", "dose",
    "patient-year", or None when the text gives none. ``qualifier`` is one of
    "up_to", "at_least", "max", "approx", or None. ``span`` is (start, end) in the text parsed.
    """

    text: str
    span: tuple[int, int]
    low: Decimal
    high: Decimal
    unit: str
    per: str | None = None
    per_kg: bool = False
    per_m2: bool = False
    qualifier: str | None = None
    kind: str = "number"  # dose | percent | duration | frequency | lab | count | number
    # Added by the parser (defaults keep older constructors valid): the numbers and unit as
    # written before normalisation (for UNIT_MISMATCH), and administrations per period
    # ("twice daily" -> per="day", per_count=2).
    raw_low: Decimal | None = None
    raw_high: Decimal | None = None
    raw_unit: str = ""
    per_count: int = 1

    @property
    def is_range(self) -> bool:
        return self.low != self.high


class Role(str, enum.Enum):  # noqa: UP042 - str() stays "Role.X" for callers
    """What a number in a dosing sentence does. Reductions come in two kinds that must never be
    confused: *by* 30 % gives 70 % of the dose, *to* 30 % gives 30 % of it."""

    INITIAL = "initial"  # starting or induction dose
    MAINTENANCE = "maintenance"
    USUAL = "usual"  # a dose or range the sentence gives no narrower role
    MAXIMUM = "maximum"
    STEP = "titration step"  # increase/taper by
    REDUCTION_BY = "reduction by"
    REDUCTION_TO = "reduction to"
    TARGET = "target level"
    INTERVAL = "interval"  # how often a dose is given or repeated
    DURATION = "duration"
    MONITORING = "monitoring interval"
    THRESHOLD = "threshold"  # a lab value or kidney function that triggers an action
    OUTCOME = "outcome figure"  # trial results, frequencies, risks: never a dose
    UNKNOWN = "unknown"

    @property
    def is_dose(self) -> bool:
        """Roles a calculator may multiply by a weight (a maximum only caps)."""
        return self in _DOSE_ROLES


_DOSE_ROLES = frozenset({Role.INITIAL, Role.MAINTENANCE, Role.USUAL})


@dataclass(frozen=True)
class DoseStatement:
    """One dosing fact with its meaning typed: which drug, for what, for whom, in which role,
    how much, how often, under which condition, said by which source.

    ``span`` is the quantity's (start, end) in the passage text it was read from, ``sentence``
    that sentence's. ``conditions`` are ``key:value`` strings: ``tpmt:intermediate``,
    ``nudt15:poor``, ``comedication:allopurinol``, ``kidney:impaired``, ``liver:impaired``,
    ``weight:<text>``, ``course:treatment failure``. ``evidence`` is the source's kind: label, guideline, trial, cpic,
    review, secondary summary, local document or other.
    """

    id: str
    drugs: tuple[str, ...]  # generic names, the dosed drug first
    role: Role
    quantity: Quantity
    indications: tuple[str, ...] = ()  # canonical names; () = any
    population: str = "any"  # adult | pediatric | elderly | any
    route: str = "any"  # oral | iv | subcutaneous | intramuscular | topical | any
    frequency: str | None = None  # "daily", "twice daily", "weekly", "every 2 weeks", ...
    conditions: tuple[str, ...] = ()
    source_id: str = ""  # the document
    section: str = ""
    span: tuple[int, int] = (0, 0)
    sentence: tuple[int, int] = (0, 0)
    evidence: str = "other"
    citation: str = ""  # the primary source id the sentence cites ([@id]), if any
    # Phases the sentence also names besides ``role`` ("ALL maintenance: start at 1.5 mg/kg":
    # a starting dose within maintenance): a claim in one of them is not a role swap.
    also: tuple[Role, ...] = ()

    @property
    def drug(self) -> str | None:
        return self.drugs[0] if self.drugs else None

    def describe(self) -> str:
        """ "maintenance dose, lupus nephritis, kdigo-2024-ln [guideline]"."""
        role = f"{self.role.value} dose" if self.role.is_dose else self.role.value
        parts = [role]
        if self.indications:
            parts.append(", ".join(self.indications))
        if self.population != "any":
            parts.append(self.population)
        if self.conditions:
            parts.append("if " + " and ".join(self.conditions))
        where = self.citation or self.source_id
        if self.section:
            where = f"{where}, {self.section}" if where else self.section
        if where:
            parts.append(where)
        return ", ".join(parts) + f" [{self.evidence}]"


@dataclass(frozen=True)
class Passage:
    """A source passage an answer may cite, numbered as the answer cites it ([n])."""

    n: int
    text: str
    doc_id: str = ""
    section: str = ""
    drugs: tuple[str, ...] = ()
    # What dose statements read when a sentence names none: the document's indications, the
    # kind of each source id its [@id] markers name, and the document's kind (label, article,
    # text/html/pdf for an imported document).
    indications: tuple[str, ...] = ()
    evidence: tuple[tuple[str, str], ...] = ()
    doc_kind: str = ""


@dataclass(frozen=True)
class PatientContext:
    weight_kg: Decimal | None = None
    tpmt: str | None = None  # normal | intermediate | poor | unknown
    nudt15: str | None = None  # normal | intermediate | poor | unknown
    comedications: tuple[str, ...] = ()
    egfr: Decimal | None = None  # mL/min/1.73 m²
    crcl: Decimal | None = None  # creatinine clearance, mL/min
    age_years: Decimal | None = None

    @property
    def kidney_function(self) -> Decimal | None:
        """eGFR, else creatinine clearance: the number a kidney-function rule compares."""
        return self.egfr if self.egfr is not None else self.crcl

    def describe(self) -> str:
        """ "72 kg, TPMT poor, eGFR 25 mL/min/1.73 m², 70 years, with allopurinol"."""
        bits = []
        if self.weight_kg is not None:
            bits.append(f"{self.weight_kg} kg")
        for gene, value in (("TPMT", self.tpmt), ("NUDT15", self.nudt15)):
            if value and value != "unknown":
                bits.append(f"{gene} {value}")
        if self.egfr is not None:
            bits.append(f"eGFR {self.egfr} mL/min/1.73 m²")
        if self.crcl is not None:
            bits.append(f"CrCl {self.crcl} mL/min")
        if self.age_years is not None:
            bits.append(f"{self.age_years} years")
        if self.comedications:
            bits.append("with " + ", ".join(self.comedications))
        return ", ".join(bits)


@dataclass(frozen=True)
class Derivation:
    """A patient-specific dose computed deterministically from a supported input."""

    result: Quantity
    steps: tuple[str, ...]
    inputs: tuple[Quantity, ...]
    passage_n: int
    drug: str
    within_limits: bool = True
    limit_note: str = ""

    @property
    def explanation(self) -> str:
        return "; ".join(self.steps)


@dataclass(frozen=True)
class ClaimVerdict:
    claim: Quantity
    status: Status
    reason: str
    passage_n: int | None = None
    source_span: tuple[int, int] | None = None
    derivation: Derivation | None = None
    drug: str | None = None
    # The source statement that supports the claim (its role, indication, source), if any.
    statement: DoseStatement | None = None
    role: Role | None = None  # the role the answer's own sentence gives the number


@dataclass(frozen=True)
class AnswerVerdict:
    """Verdict over a whole answer. ``passed`` only when every claim is verified and the
    guard itself ran to completion; ``error`` is set (and ``passed`` False) when it did not."""

    claims: tuple[ClaimVerdict, ...]
    passed: bool
    error: str | None = None
    failed: tuple[ClaimVerdict, ...] = field(default=())

    @property
    def verified_count(self) -> int:
        return sum(1 for c in self.claims if c.status.verified)

    @property
    def badge(self) -> str:
        if self.error:
            return "Guard failed: answer withheld"
        return f"{self.verified_count} of {len(self.claims)} numbers verified"


def fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """A keyword-only constructor for a frozen dataclass without ``__post_init__`` that builds
    the same object as ``cls(...)`` (equal, same hash and repr, still frozen).

    A frozen dataclass sets each field through ``object.__setattr__``: ~3.5 µs for a Quantity,
    and the guard builds one per number and one verdict per claim. Setting the instance dict
    from one dict display takes a quarter of that. Like ``dataclasses`` itself, the function is
    generated from the field list, so a missing or unknown field raises TypeError as ``cls``
    would.
    """
    if hasattr(cls, "__post_init__") or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__} needs its own __init__")
    params, env = [], {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is not MISSING:
            env[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            raise TypeError(f"{cls.__name__}.{f.name} has a default factory")
        else:
            params.append(f.name)
    state = ", ".join(f"{f.name!r}: {f.name}" for f in fields(cls))  # type: ignore[arg-type]
    source = (
        f"def {cls.__name__}(*, {', '.join(params)}):\n"
        f"    obj = _new(_cls)\n"
        f"    _set(obj, '__dict__', {{{state}}})\n"
        f"    return obj\n"
    )
    exec(source, env)  # noqa: S102 - built from the dataclass's own field names, as dataclasses does
    construct: Callable[..., _T] = env[cls.__name__]  # type: ignore[assignment]
    return construct
