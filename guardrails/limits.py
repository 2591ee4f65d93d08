"""The dose-limit table (``guardrails/limits.toml``) and the check of one dose against it.

Semantics of :meth:`LimitTable.check`, made explicit because they decide what is blocked:

- Only mass doses (kind ``dose``, unit mg) of a drug with rows are checked; anything else is
  "no limit applies" (ok).
- A dose's basis comes from its per-kg / per-m² flags and its frequency: ``2 mg/kg/day`` ->
  ``mg/kg/day``, ``15 mg/week`` -> ``mg/week``, ``500 mg every 2 weeks`` -> ``mg/dose`` with
  frequency "every 2 weeks"; ``50 mg twice daily`` is checked as 50 mg/dose and 100 mg/day.
- Indication: rows apply when their indication is "any" or matches the given one (substring,
  either way; a row may list several indications separated by ";"). With no indication, every
  row of the drug applies (the dose must fit one of them). When the given indication matches a
  specific row, the drug's "any" rows of that same basis no longer apply: a general row must
  not cancel an indication's own ceiling (azathioprine 3 mg/kg/day for rheumatoid arthritis).
- Population and route filter: a row for another population (``age_years`` < 18 means
  "pediatric") or another route is dropped when the caller states it; when the caller does not,
  every population's and route's rows stay alternatives.
- Conditions (``egfr_below``/``egfr_at_least``, ``phase``) make a row apply only when the caller
  states a value that meets them; such a row then replaces the unconditioned rows of its basis
  (a kidney-function cap replaces the usual range). Unknown -> conditioned rows are ignored.
  ``weight_unknown_only`` rows (a fixed mg/day stand-in for a mg/kg/day range) apply only when
  no weight is given.
- For the frequency rule, oncologic rows count only when an oncologic indication is given:
  daily methotrexate is acceptable only where an oncology indication is stated. A drug whose
  applicable rows are all weekly ("weekly-only") is flagged when the dose states no frequency
  the parser understood ("7.5 mg", "7.5 mg every morning"): the weekly schedule must be written
  (an explicit "per dose" counts as stated).
- OK when some applicable row of the same basis contains the whole dose (both range ends) and
  its frequency is "any" or the dose's own. With ``weight_kg``, mg/kg/day rows also bound
  mg/day doses.
- No row of the same basis: OK, unless the dose states a frequency that none of the drug's
  rows allows (methotrexate "daily" when every row says "weekly").
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property
from importlib import resources
from pathlib import Path

from guardrails.errors import LimitsFileError
from guardrails.model import Quantity

__all__ = ["BASES", "LimitRow", "LimitTable", "dose_basis", "load_limits"]

# ARCHITECTURE.md's list plus mg/m2/day (mercaptopurine's label dose).
BASES = frozenset(
    {
        "mg/kg/day",
        "mg/day",
        "mg/dose",
        "mg/week",
        "mg/m2/dose",
        "mg/m2/day",
        "mg/kg/dose",
        "mg/m2/week",
    }
)
_FREQ_RE = re.compile(r"daily|weekly|monthly|any|every \d+ (?:days|weeks|months)")
_ROUTES = frozenset({"oral", "iv", "sc", "any"})
_PHASES = frozenset({"induction", "maintenance", "any"})
_PEDIATRIC_BELOW_YEARS = Decimal(18)
_POPULATIONS = frozenset({"adult", "pediatric", "any"})
_REQUIRED = ("drug", "basis", "min", "max")
_ONCOLOGY_RE = re.compile(
    r"oncolog|cancer|malignan|leuk|lymphoma|neoplas|carcinoma|sarcoma|tumou?r|\ball\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class LimitRow:
    drug: str
    basis: str
    min: Decimal
    max: Decimal
    route: str = "any"
    indication: str = "any"
    population: str = "any"
    frequency: str = "any"
    source: str = ""
    section: str = ""
    note: str = ""
    # Conditions (optional): kidney function in mL/min (eGFR or creatinine clearance, as the
    # source states it), a treatment phase, or "only while the weight is unknown".
    egfr_below: Decimal | None = None
    egfr_at_least: Decimal | None = None
    phase: str = "any"
    weight_unknown_only: bool = False
    oncologic: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Computed once: the frequency rule asks it for every row on every dose.
        object.__setattr__(self, "oncologic", bool(_ONCOLOGY_RE.search(self.indication)))

    @property
    def conditioned(self) -> bool:
        """Applies only when the caller states a value meeting its condition."""
        return (
            self.egfr_below is not None or self.egfr_at_least is not None or (self.phase != "any")
        )

    def describe(self) -> str:
        where = "" if self.indication == "any" else f" for {self.indication}"
        who = "" if self.population == "any" else f" ({self.population})"
        kidney = ""
        if self.egfr_at_least is not None:
            kidney += f", eGFR/CrCl ≥ {self.egfr_at_least}"
        if self.egfr_below is not None:
            kidney += f", eGFR/CrCl < {self.egfr_below}"
        phase = "" if self.phase == "any" else f", {self.phase}"
        freq = "" if self.frequency == "any" else f", {self.frequency}"
        src = f" [{self.source}]" if self.source else ""
        return (
            f"{self.drug}{where}{who}: {self.min}–{self.max} {self.basis}{freq}{kidney}{phase}{src}"
        )

    def _meets(self, egfr: Decimal | None, phase: str | None) -> bool:
        if self.egfr_below is not None or self.egfr_at_least is not None:
            if egfr is None:
                return False
            if self.egfr_below is not None and not egfr < self.egfr_below:
                return False
            if self.egfr_at_least is not None and not egfr >= self.egfr_at_least:
                return False
        return self.phase == "any" or self.phase == phase


def _frequency_of(q: Quantity) -> str | None:
    if q.per is None or q.per == "dose":
        return None
    named = {"day": "daily", "week": "weekly", "month": "monthly"}
    if q.per in named:
        return named[q.per]
    n, _, unit = q.per.partition(" ")
    return f"every {n} {unit}s" if unit in ("day", "week", "month") else q.per


def dose_basis(q: Quantity) -> list[tuple[str, Decimal, Decimal]]:
    """The (basis, low, high) forms a mass dose can be checked in (low <= high)."""
    if q.kind != "dose" or q.unit != "mg":
        return []
    low, high = min(q.low, q.high), max(q.low, q.high)
    if q.per_m2:
        if q.per == "day":
            forms = [("mg/m2/day", low * q.per_count, high * q.per_count)]
            if q.per_count > 1:
                forms.append(("mg/m2/dose", low, high))
            return forms
        if q.per == "week":
            return [("mg/m2/week", low * q.per_count, high * q.per_count)]
        return [("mg/m2/dose", low, high)]
    prefix = "mg/kg" if q.per_kg else "mg"
    if q.per == "day":
        forms = [(f"{prefix}/day", low * q.per_count, high * q.per_count)]
        if q.per_count > 1:
            forms.append((f"{prefix}/dose", low, high))
        return forms
    if q.per == "week":
        return [] if q.per_kg else [("mg/week", low * q.per_count, high * q.per_count)]
    if q.per is None or q.per == "dose" or _frequency_of(q) is not None:
        return [(f"{prefix}/dose", low, high)]
    return []


_CHECK_CACHE_SIZE = 4096


@dataclass(frozen=True)
class LimitTable:
    rows: tuple[LimitRow, ...]

    @cached_property
    def drugs(self) -> frozenset[str]:
        return frozenset(r.drug for r in self.rows)

    @cached_property
    def _by_drug(self) -> dict[str, tuple[LimitRow, ...]]:
        # The guard asks for one drug's rows on every dose: index them once per table.
        index: dict[str, list[LimitRow]] = {}
        for r in self.rows:
            index.setdefault(r.drug, []).append(r)
        return {d: tuple(rs) for d, rs in index.items()}

    def rows_for(
        self,
        drug: str,
        indication: str | None = None,
        *,
        population: str | None = None,
        route: str | None = None,
    ) -> tuple[LimitRow, ...]:
        """The drug's rows for an indication (and, when stated, a population and route)."""
        drug = drug.lower().strip()
        ind = (indication or "").lower().strip()
        out = []
        for r in self._by_drug.get(drug, ()):
            if population and r.population not in ("any", population):
                continue
            if route and r.route not in ("any", route):
                continue
            if r.indication == "any" or not ind:
                out.append(r)
            elif any(part and (part in ind or ind in part)
                     for part in (p.strip() for p in r.indication.lower().split(";"))):  # fmt: skip
                out.append(r)
        return tuple(out)

    @cached_property
    def _checked(self) -> dict[tuple[object, ...], tuple[bool, str]]:
        return {}

    def check(
        self,
        drug: str,
        quantity: Quantity,
        indication: str | None = None,
        weight_kg: Decimal | None = None,
        *,
        egfr: Decimal | int | float | None = None,
        age_years: Decimal | int | float | None = None,
        route: str | None = None,
        population: str | None = None,
        phase: str | None = None,
        weekly_stated: bool = False,
    ) -> tuple[bool, str]:
        """(ok, reason) for one dose of ``drug``; see the module docstring for the rules.

        ``weekly_stated``: the sentence around the dose states a weekly schedule ("three doses
        of 2.5 mg twelve hours apart, once weekly"), so a dose without its own frequency is
        not flagged for a weekly-only drug.

        ``egfr`` is kidney function in mL/min (eGFR or creatinine clearance), ``age_years``
        implies the population when ``population`` is not given, ``route`` is "oral", "iv" or
        "sc", ``phase`` is "induction" or "maintenance". All are optional: unknown context never
        blocks a dose that some row for any context admits.
        """
        q = quantity
        egfr_d = None if egfr is None else _context_number(egfr, "egfr")
        if population is None and age_years is not None:
            age_years = _context_number(age_years, "age_years")
            population = (
                "pediatric" if Decimal(str(age_years)) < _PEDIATRIC_BELOW_YEARS else "adult"
            )
        # The verdict depends on the normalised dose only, never on its text or position, and
        # the same corpus doses recur in answer after answer: remember each one (bounded).
        key = (drug, indication, weight_kg, egfr_d, population, route, phase, weekly_stated,
               q.kind, q.unit, q.low, q.high, q.per, q.per_count, q.per_kg, q.per_m2)  # fmt: skip
        cache = self._checked
        found = cache.get(key)
        if found is None:
            if len(cache) >= _CHECK_CACHE_SIZE:
                cache.clear()
            found = cache[key] = self._check(
                drug, q, indication, weight_kg, egfr_d, population, route, phase, weekly_stated
            )
        return found

    def _applicable(
        self, drug: str, indication: str | None, population: str | None, route: str | None,
        egfr: Decimal | None, phase: str | None, weight_kg: Decimal | None,
    ) -> tuple[LimitRow, ...]:  # fmt: skip
        rows = [r for r in self.rows_for(drug, indication, population=population, route=route)
                if (not r.conditioned or r._meets(egfr, phase))
                and not (r.weight_unknown_only and weight_kg is not None)]  # fmt: skip
        # Specific beats general, per basis: a row whose condition holds replaces the
        # unconditioned rows of its basis; a row for the stated indication replaces the "any"
        # rows of its basis.
        met = {r.basis for r in rows if r.conditioned}
        rows = [r for r in rows if r.conditioned or r.basis not in met]
        if indication:
            specific = {r.basis for r in rows if r.indication != "any"}
            rows = [r for r in rows if r.indication != "any" or r.basis not in specific]
        return tuple(rows)

    def _check(
        self, drug: str, quantity: Quantity, indication: str | None, weight_kg: Decimal | None,
        egfr: Decimal | None = None, population: str | None = None, route: str | None = None,
        phase: str | None = None, weekly_stated: bool = False,
    ) -> tuple[bool, str]:  # fmt: skip
        rows = self._applicable(drug, indication, population, route, egfr, phase, weight_kg)
        if not rows:
            return True, f"no dose limit on file for {drug}"
        forms = dose_basis(quantity)
        if not forms:
            return True, "not a dose the limit table covers"
        freq = _frequency_of(quantity)
        freq_ok = {
            id(r) for r in rows if r.frequency == "any" or freq is None or r.frequency == freq
        }
        if not (indication and _ONCOLOGY_RE.search(indication)):
            freq_rows = [r for r in rows if not r.oncologic] or rows
        else:
            freq_rows = rows
        if (
            quantity.per is None
            and not weekly_stated
            and all(r.frequency == "weekly" for r in freq_rows)
        ):
            # "7.5 mg", "7.5 mg every morning", "nightly", "on alternate days": the parser found
            # no weekly schedule, and taking a weekly-only drug daily has been fatal.
            return False, (f"{drug} is dosed once weekly; this dose states no weekly schedule "
                           f"(write it as, e.g., 'once weekly')")  # fmt: skip
        # Each basis the dose can be read in (and, with a weight, mg/kg/day × weight for a
        # mg/day dose) is a family of alternative rows; every family present must admit it.
        families: list[tuple[str, Decimal, Decimal, list[tuple[LimitRow, Decimal, Decimal]]]] = []
        for basis, low, high in forms:
            fam = [(r, r.min, r.max) for r in rows if r.basis == basis]
            if fam:
                families.append((basis, low, high, fam))
            if weight_kg is not None and basis == "mg/day":
                per_kg = [(r, r.min * weight_kg, r.max * weight_kg)
                          for r in rows if r.basis == "mg/kg/day"]  # fmt: skip
                if per_kg:
                    families.append((f"mg/kg/day × {weight_kg} kg", low, high, per_kg))
        if freq is not None and not any(id(r) in freq_ok for r in freq_rows):
            allowed = sorted({r.frequency for r in freq_rows})
            return False, f"{drug} is dosed {' or '.join(allowed)}, not {freq}"
        if not families:
            return True, f"no {forms[0][0]} limit on file for {drug}"
        notes = []
        for label, low, high, fam in families:
            fits = [r for r, lo, hi in fam if id(r) in freq_ok and lo <= low and high <= hi]
            if not fits:
                ranges = "; ".join(f"{r.describe()} = {lo.normalize():f}–{hi.normalize():f}"
                                   if label.startswith("mg/kg/day ×") else r.describe()
                                   for r, lo, hi in fam)  # fmt: skip
                return False, f"outside the dose limits ({label}: {ranges})"
            notes.append(fits[0].describe())
        return True, "within " + "; ".join(notes)


def _context_number(value: object, name: str) -> Decimal:
    """A patient-context number (eGFR, age) as a Decimal, or a clear ValueError."""
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not d.is_finite() or d < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return d


def _decimal(value: object, field: str, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise LimitsFileError(f"{where}: '{field}' must be a decimal string, got {value!r}")
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise LimitsFileError(f"{where}: '{field}' is not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise LimitsFileError(f"{where}: '{field}' must be a finite number >= 0, got {value!r}")
    return d


def _row(raw: object, i: int, origin: str) -> LimitRow:
    where = f"{origin}: limit row {i + 1}"
    if not isinstance(raw, dict):
        raise LimitsFileError(f"{where}: expected a table, got {type(raw).__name__}")
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise LimitsFileError(f"{where}: missing {', '.join(missing)}")
    drug = raw["drug"]
    if not isinstance(drug, str) or not drug.strip() or drug != drug.lower():
        raise LimitsFileError(f"{where}: 'drug' must be a lower-case generic name, got {drug!r}")
    where = f"{where} ({drug})"
    for key in ("basis", "route", "indication", "population", "frequency", "source",
                "section", "note", "phase"):  # fmt: skip
        if key in raw and not isinstance(raw[key], str):
            raise LimitsFileError(f"{where}: '{key}' must be a string")
    basis = raw["basis"]
    if basis not in BASES:
        raise LimitsFileError(f"{where}: unknown basis {basis!r}; use one of {sorted(BASES)}")
    lo, hi = _decimal(raw["min"], "min", where), _decimal(raw["max"], "max", where)
    if lo > hi:
        raise LimitsFileError(f"{where}: min {lo} is greater than max {hi}")
    route = raw.get("route", "any")
    if route not in _ROUTES:
        raise LimitsFileError(f"{where}: unknown route {route!r}; use one of {sorted(_ROUTES)}")
    population = raw.get("population", "any")
    if population not in _POPULATIONS:
        raise LimitsFileError(f"{where}: unknown population {population!r}")
    frequency = raw.get("frequency", "any")
    if not _FREQ_RE.fullmatch(frequency):
        raise LimitsFileError(f"{where}: unknown frequency {frequency!r}")
    phase = raw.get("phase", "any")
    if phase not in _PHASES:
        raise LimitsFileError(f"{where}: unknown phase {phase!r}; use one of {sorted(_PHASES)}")
    kidney = {k: _decimal(raw[k], k, where) if k in raw else None
              for k in ("egfr_below", "egfr_at_least")}  # fmt: skip
    weight_unknown_only = raw.get("weight_unknown_only", False)
    if not isinstance(weight_unknown_only, bool):
        raise LimitsFileError(f"{where}: 'weight_unknown_only' must be true or false")
    return LimitRow(
        drug=drug.strip(),
        basis=basis,
        min=lo,
        max=hi,
        route=route,
        indication=raw.get("indication", "any").strip() or "any",
        population=population,
        frequency=frequency,
        source=raw.get("source", ""),
        section=raw.get("section", ""),
        note=raw.get("note", ""),
        egfr_below=kidney["egfr_below"],
        egfr_at_least=kidney["egfr_at_least"],
        phase=phase,
        weight_unknown_only=weight_unknown_only,
    )


def load_limits(path: str | Path | None = None) -> LimitTable:
    """Read and validate the limit table (None = the one packaged with guardrails)."""
    try:
        if path is None:
            origin = "guardrails/limits.toml"
            data = resources.files("guardrails").joinpath("limits.toml").read_bytes()
        else:
            origin = str(path)
            data = Path(path).read_bytes()
    except OSError as exc:
        raise LimitsFileError(f"cannot read the dose-limit table {origin}: {exc}") from None
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LimitsFileError(f"{origin} is not valid TOML: {exc}") from None
    raw_rows = doc.get("limit", [])
    if not isinstance(raw_rows, list) or not raw_rows:
        raise LimitsFileError(f"{origin}: no [[limit]] rows")
    return LimitTable(rows=tuple(_row(r, i, origin) for i, r in enumerate(raw_rows)))
