"""Deterministic dose calculator: patient doses from per-kg ranges and percentage adjustments
found in the passages, every step written out.

Rules, explicit because a clinician reads the result:

- Only numbers found in the passages are used; nothing is assumed. The passages are read as dose
  statements (:mod:`guardrails.statements`): a base is a statement of ``drug`` whose role is a
  dose (initial, maintenance, usual) and that states no condition; a titration step, target,
  threshold, maximum or outcome figure is never multiplied by a weight.
- ``2 mg/kg/day × 72 kg = 144 mg/day``: products in ``Decimal``, rounded half-up to 0.1 mg
  (:data:`ROUNDING`; per-kg results to 0.01 mg/kg) only at the end of each derivation. A range
  result is always low–high: the smallest and largest product of the ends, so 144 mg/day ×
  "one-third to one-quarter" is 36–48 mg/day, never 48–36.
- Adjustments: percentage statements of ``drug`` with the role *reduction to* (applied as
  written) or *reduction by* (applied as what remains: by 30–50 % gives 50–70 %), whose condition
  holds for this patient - an intermediate TPMT or NUDT15 phenotype, a co-medication the patient
  takes - are applied to each base dose (per-kg and absolute): ``150 mg/day × 25 % = 37.5
  mg/day``. When several apply, each is shown alone and all together.
- Poor metabolizers get no computed dose (sources advise an alternative agent or drastic,
  specialist-led reduction), and no weight means no per-kg derivation.
- Every result is checked against the limit table; ``within_limits``/``limit_note`` say how.
  A reduction (every percentage at most 100 %) of a dose that is itself within the limits is
  within them: it cannot exceed the maximum, and falling below a row's usual minimum is the
  point of the reduction (an intermediate metabolizer's 30 % of 2 mg/kg/day).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache, partial
from itertools import combinations, product

from guardrails.drugs import same_drug
from guardrails.errors import PatientInputError
from guardrails.lexicon import DRUG_ALIASES
from guardrails.limits import LimitTable
from guardrails.model import Derivation, Passage, PatientContext, Quantity, Role
from guardrails.quantities import format_quantity
from guardrails.statements import statements_of

__all__ = [
    "MAX_WEIGHT_KG",
    "PER_KG_ROUNDING",
    "ROUNDING",
    "calculate",
    "derivation_for",
    "derivations_for",
    "validate_patient",
]

ROUNDING = Decimal("0.1")  # mg; half-up
PER_KG_ROUNDING = Decimal("0.01")  # mg/kg: 2 mg/kg × one-third = 0.67 mg/kg, not 0.7
MAX_WEIGHT_KG = Decimal(300)
_HUNDRED = Decimal(100)

_PHENOTYPES: dict[str, str] = {}
for _canon, _aliases in {
    "normal": ("normal", "nm", "normal metabolizer", "normal metaboliser", "extensive",
               "extensive metabolizer", "wild type", "wild-type", "wildtype", "*1/*1",
               "homozygous wild-type", "normal activity", "high activity"),
    "intermediate": ("intermediate", "im", "intermediate metabolizer", "intermediate metaboliser",
                     "heterozygous", "het", "reduced", "reduced activity",
                     "possible intermediate metabolizer", "intermediate activity",
                     "heterozygote", "carrier", "partial deficiency", "partially deficient"),
    "poor": ("poor", "pm", "poor metabolizer", "poor metaboliser", "homozygous",
             "homozygous variant", "deficient", "absent", "low", "absent activity",
             "low or deficient activity", "low activity", "no activity", "deficiency",
             "complete deficiency", "homozygous deficient", "tpmt deficient", "null"),
    "unknown": ("unknown", "not tested", "untested", "not known", "pending", "", "?", "n/a",
                "indeterminate"),
}.items():  # fmt: skip
    for _alias in _aliases:
        _PHENOTYPES[_alias] = _canon


def _phenotype(value: object, gene: str) -> str:
    if value is None:
        return "unknown"
    if not isinstance(value, str):
        raise PatientInputError(f"{gene} phenotype must be text such as 'normal', got {value!r}")
    key = re.sub(r"\s+", " ", value.strip().lower())
    if key not in _PHENOTYPES:
        raise PatientInputError(
            f"Unknown {gene} phenotype {value!r}: use normal, intermediate, poor or unknown "
            "(aliases such as 'IM', 'heterozygous' or 'poor metabolizer' are accepted)."
        )
    return _PHENOTYPES[key]


def _weight(value: object) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PatientInputError(f"Weight must be a number of kilograms, got {value!r}.")
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise PatientInputError(
                    f"Weight must be a finite number of kilograms, got {value}."
                )
            w = Decimal(repr(value))
        elif isinstance(value, (int, Decimal)):
            w = Decimal(value)
        elif isinstance(value, str):
            w = Decimal(value.strip().removesuffix("kg").strip())
        else:
            raise PatientInputError(f"Weight must be a number of kilograms, got {value!r}.")
    except InvalidOperation:
        raise PatientInputError(f"Weight must be a number of kilograms, got {value!r}.") from None
    if not w.is_finite():
        raise PatientInputError(f"Weight must be a finite number of kilograms, got {value!r}.")
    if w <= 0:
        raise PatientInputError(f"Weight must be greater than 0 kg, got {w} kg.")
    if w > MAX_WEIGHT_KG:
        raise PatientInputError(
            f"Weight {w} kg is above {MAX_WEIGHT_KG} kg; check the value (kilograms, not pounds)."
        )
    return w


def _comedications(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items: Iterable[object] = value.split(",") if isinstance(value, str) else value  # type: ignore[assignment]
    try:
        items = list(items)
    except TypeError:
        raise PatientInputError(f"Co-medications must be a list of names, got {value!r}.") from None
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise PatientInputError(f"Co-medication names must be text, got {item!r}.")
        name = item.strip().lower()
        if name:
            name = DRUG_ALIASES.get(name, name)  # brands and abbreviations: the one drug table
            if name not in out:
                out.append(name)
    return tuple(out)


def _bounded(value: object, what: str, unit: str, low: Decimal, high: Decimal) -> Decimal | None:
    """A positive number in a plausible range ("45", 45, "45 mL/min"), or None when not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise PatientInputError(f"{what} must be a number of {unit}, got {value!r}.")
    text = (
        value.strip()
        if isinstance(value, str)
        else repr(value)
        if isinstance(value, float)
        else value
    )
    if isinstance(text, str):
        text = re.sub(
            r"\s*(?:ml/min(?:/1\.73\s*m(?:2|²))?|years?|y|yrs?)\s*$", "", text, flags=re.I
        )
    try:
        number = Decimal(text)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise PatientInputError(f"{what} must be a number of {unit}, got {value!r}.") from None
    if not number.is_finite() or not low <= number <= high:
        raise PatientInputError(
            f"{what} {value!r} is outside {low}–{high} {unit}; check the value and its unit."
        )
    return number


def validate_patient(
    weight_kg: object,
    tpmt: object,
    nudt15: object,
    comedications: object,
    *,
    egfr: object = None,
    crcl: object = None,
    age_years: object = None,
) -> PatientContext:
    """A checked :class:`PatientContext`; :class:`PatientInputError` says what to fix.

    Kidney function as eGFR (mL/min/1.73 m², 1–200) or creatinine clearance (mL/min, 1–250),
    age in years (0–120)."""
    return PatientContext(
        weight_kg=_weight(weight_kg),
        tpmt=_phenotype(tpmt, "TPMT"),
        nudt15=_phenotype(nudt15, "NUDT15"),
        comedications=_comedications(comedications),
        egfr=_bounded(egfr, "eGFR", "mL/min/1.73 m²", Decimal(1), Decimal(200)),
        crcl=_bounded(crcl, "Creatinine clearance", "mL/min", Decimal(1), Decimal(250)),
        age_years=_bounded(age_years, "Age", "years", Decimal(0), Decimal(120)),
    )


# ---------------------------------------------------------------------------------------------


def _round(d: Decimal, per_kg: bool = False) -> Decimal:
    return d.quantize(PER_KG_ROUNDING if per_kg else ROUNDING, rounding=ROUND_HALF_UP)


def _scaled(q: Quantity, lo: Decimal, hi: Decimal, *, per_kg: bool) -> Quantity:
    proto = Quantity(text="", span=(0, 0), low=lo, high=hi, unit=q.unit, per=q.per,
                     per_kg=per_kg, per_m2=q.per_m2, kind="dose", raw_low=lo, raw_high=hi,
                     raw_unit=q.unit, per_count=q.per_count)  # fmt: skip
    text = format_quantity(proto)
    return Quantity(text=text, span=(0, len(text)), low=lo, high=hi, unit=q.unit, per=q.per,
                    per_kg=per_kg, per_m2=q.per_m2, kind="dose", raw_low=lo, raw_high=hi,
                    raw_unit=q.unit, per_count=q.per_count)  # fmt: skip


def _condition_holds(condition: str, patient: PatientContext) -> str | None:
    """Why ``condition`` holds for this patient (the adjustment's label), or None."""
    key, _, value = condition.partition(":")
    if key in ("tpmt", "nudt15"):
        phenotype = patient.tpmt if key == "tpmt" else patient.nudt15
        if value == "intermediate" and phenotype == "intermediate":
            return "intermediate TPMT/NUDT15 phenotype"
        return None
    if key == "comedication":
        return f"co-medication with {value}" if value in patient.comedications else None
    return None  # kidney, liver, weight bands: not part of the patient context yet


def _inputs(
    passages: Sequence[Passage], patient: PatientContext, drug: str
) -> tuple[list[tuple[Quantity, int]], list[tuple[Quantity, int, str]]]:
    """Base doses of ``drug`` and the reductions that apply to this patient, from the passages'
    dose statements: only dose roles are bases (never a titration step, a target, a threshold
    or an outcome figure), and a reduction applies only when its condition holds."""
    bases: list[tuple[Quantity, int]] = []
    adjustments: list[tuple[Quantity, int, str]] = []
    for p in passages:
        for st in statements_of(p):
            q = st.quantity
            if st.drug is None or not same_drug(st.drug, drug):
                continue
            if q.kind == "dose" and q.unit == "mg" and not q.per_m2:
                if st.role.is_dose and not st.conditions:
                    bases.append((q, p.n))
            elif q.kind == "percent" and st.role in (Role.REDUCTION_TO, Role.REDUCTION_BY):
                for condition in st.conditions:
                    why = _condition_holds(condition, patient)
                    if why is not None:
                        if st.role is Role.REDUCTION_BY:
                            q = _remaining(q)
                        adjustments.append((q, p.n, why))
                        break
    return bases, adjustments


def _remaining(q: Quantity) -> Quantity:
    """ "Reduce by 30–50 %" gives 50–70 % of the dose: the share that remains."""
    lo, hi = _HUNDRED - q.high, _HUNDRED - q.low
    text = f"(100 % − {q.text})"
    return Quantity(text=text, span=q.span, low=lo, high=hi, unit="%", kind="percent",
                    raw_low=lo, raw_high=hi, raw_unit="%")  # fmt: skip


_Key = tuple[Decimal, Decimal, "str | None", bool, int]
_Start = tuple[Quantity, tuple[str, ...], tuple[Quantity, ...], int]
_Context = tuple["Decimal | None", "Decimal | None"]  # the patient's kidney function and age


def _key(q: Quantity) -> _Key:
    return (q.low, q.high, q.per, q.per_kg, q.per_count)


def _finish(
    q: Quantity, steps: tuple[str, ...], inputs: tuple[Quantity, ...], n: int, drug: str,
    limits: LimitTable | None, w: Decimal | None, context: _Context = (None, None),
) -> Derivation:  # fmt: skip
    egfr, age = context
    ok, note = (
        (True, "no limit table") if limits is None
        else limits.check(drug, q, egfr=egfr, age_years=age)
    )  # fmt: skip
    if ok and limits is not None and w is not None and not q.per_kg:
        ok, note = limits.check(drug, q, weight_kg=w, egfr=egfr, age_years=age)
    return Derivation(result=q, steps=steps, inputs=inputs, passage_n=n, drug=drug,
                      within_limits=ok, limit_note=note)  # fmt: skip


def _adjusted(
    start: _Start, combo: tuple[tuple[Quantity, int, str], ...], lo: Decimal, hi: Decimal,
    drug: str, limits: LimitTable | None, w: Decimal | None,
    context: _Context = (None, None),
) -> Derivation:  # fmt: skip
    base, steps, inputs, n = start
    result = _scaled(base, lo, hi, per_kg=base.per_kg)
    new_steps = list(steps)
    for pct, pn, why in combo:
        new_steps.append(f"for {why}: × {format_quantity(pct)} (from [{pn}])")
    new_steps[-1] += f": {base.text or format_quantity(base)} → {result.text}"
    all_inputs = inputs + tuple(p for p, _, _ in combo)
    if limits is not None and all(max(p.low, p.high) <= _HUNDRED for p, _, _ in combo):
        start_d = _finish(base, steps, inputs, n, drug, limits, w, context)
        if start_d.within_limits:
            note = f"a reduction of {format_quantity(base)}, which is {start_d.limit_note}"
            return Derivation(result=result, steps=tuple(new_steps), inputs=all_inputs,
                              passage_n=n, drug=drug, within_limits=True,
                              limit_note=note)  # fmt: skip
    return _finish(result, tuple(new_steps), all_inputs, n, drug, limits, w, context)


@lru_cache(maxsize=256)
def _plans(
    passages: tuple[Passage, ...], patient: PatientContext, limits: LimitTable | None, drug: str
) -> dict[_Key, list[Callable[[], Derivation]]]:
    """Every derivable dose, keyed by value, each way of reaching it (first found first); the
    Derivation (text, steps, limit check) is only built when asked for, which keeps the guard
    fast when few claims are derived."""
    plans: dict[_Key, list[Callable[[], Derivation]]] = {}
    if "poor" in (patient.tpmt, patient.nudt15):
        return plans
    bases, adjustments = _inputs(passages, patient, drug)
    w = patient.weight_kg
    # Limit rows for a kidney function or an age apply to this patient's derived doses.
    context: _Context = (patient.kidney_function, patient.age_years)
    starts: list[_Start] = []
    for q, n in bases:
        starts.append((q, (), (q,), n))
        if q.per_kg and w is not None:
            total = _scaled(q, _round(q.low * w), _round(q.high * w), per_kg=False)
            step = f"{format_quantity(q)} × {w} kg = {total.text} (from [{n}])"
            plans.setdefault(_key(total), []).append(
                partial(_finish, total, (step,), (q,), n, drug, limits, w, context)
            )
            starts.append((total, (step,), (q,), n))
    # One adjustment per trigger at a time (a source's 25 % and another's one-quarter are
    # alternatives, not a product); triggers combine with each other.
    groups: dict[str, list[tuple[Quantity, int, str]]] = {}
    for adj in adjustments:
        groups.setdefault(adj[2], []).append(adj)
    combos: list[tuple[tuple[Quantity, int, str], ...]] = []
    for size in range(1, len(groups) + 1):
        for chosen in combinations(groups.values(), size):
            combos.extend(product(*chosen))
    for combo in combos:
        for st in starts:
            base = st[0]
            lo, hi = base.low, base.high
            for pct, _, _ in combo:
                # Interval product: "one-third to one-quarter" is written high-to-low.
                ends = [a * b / _HUNDRED for a in (lo, hi) for b in (pct.low, pct.high)]
                lo, hi = min(ends), max(ends)
            lo, hi = _round(lo, base.per_kg), _round(hi, base.per_kg)
            key = (lo, hi, base.per, base.per_kg, base.per_count)
            plans.setdefault(key, []).append(
                partial(_adjusted, st, combo, lo, hi, drug, limits, w, context)
            )
    # Per-patient limits in mg: a mg/kg/day limit × weight, shown like any other derivation.
    if limits is not None and w is not None:
        for row in limits.rows_for(drug):
            if row.basis == "mg/kg/day":
                lim = Quantity(text="", span=(0, 0), low=row.max, high=row.max, unit="mg",
                               per="day", per_kg=True, kind="dose", raw_low=row.max,
                               raw_high=row.max, raw_unit="mg")  # fmt: skip
                total = _scaled(lim, _round(row.max * w), _round(row.max * w), per_kg=False)
                step = f"limit {format_quantity(lim)} × {w} kg = {total.text} ({row.describe()})"
                plans.setdefault(_key(total), []).append(partial(
                    Derivation, result=total, steps=(step,), inputs=(lim,), passage_n=0,
                    drug=drug, within_limits=True, limit_note="the per-patient limit itself",
                ))  # fmt: skip
    return plans


def calculate(
    passages: Sequence[Passage], patient: PatientContext, limits: LimitTable | None, drug: str
) -> tuple[Derivation, ...]:
    """Patient doses derived from the passages; empty when nothing can be derived."""
    plans = _plans(tuple(passages), patient, limits, drug.lower().strip())
    return tuple(builds[0]() for builds in plans.values())


def derivation_for(
    passages: Sequence[Passage],
    patient: PatientContext,
    limits: LimitTable | None,
    drug: str,
    q: Quantity,
) -> Derivation | None:
    """The derivation whose result equals dose ``q`` (same value, basis and frequency)."""
    if q.kind != "dose" or q.unit != "mg" or q.per_m2:
        return None
    builds = _plans(tuple(passages), patient, limits, drug.lower().strip()).get(_key(q))
    return builds[0]() if builds else None


def derivations_for(
    passages: Sequence[Passage],
    patient: PatientContext,
    limits: LimitTable | None,
    drug: str,
    q: Quantity,
) -> tuple[Derivation, ...]:
    """Every way the passages derive dose ``q`` (the guard matches a written derivation line
    against each, since two paths to the same value read differently)."""
    if q.kind != "dose" or q.unit != "mg" or q.per_m2:
        return ()
    builds = _plans(tuple(passages), patient, limits, drug.lower().strip()).get(_key(q), ())
    return tuple(build() for build in builds)
