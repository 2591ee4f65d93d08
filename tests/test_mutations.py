"""Mutation test: correct answers pass; every meaning-changing mutant of them is blocked.

Answers are written the way a composer copies numbers from its passages, with [n] markers.
Passages are in the corpus's style (and, when corpus/*.md exists, taken from it). The catch
rate and false-block rate are printed (run with -s) and must be 100 % and 0 %.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from guardrails import (
    Passage,
    PatientContext,
    check_answer,
    load_limits,
    mutate_answer,
    validate_patient,
)
from guardrails.mutations import MUTATION_KINDS, SCOPE_KINDS, scope_mutants

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@dataclass(frozen=True)
class Case:
    name: str
    answer: str
    passages: tuple[Passage, ...]
    patient: PatientContext | None = None
    drug: str | None = None


def P(n: int, text: str, *drugs: str) -> Passage:
    return Passage(n=n, text=text, drugs=drugs)


AZA_LN = P(1, "Azathioprine LN maintenance, secondary summary: 2 mg/kg/day, typically 100–200 "
              "mg/day in adults. LN maintenance companion steroid: with azathioprine, give "
              "low-dose prednisone at 2.5–5 mg/day. LN maintenance with azathioprine: at least "
              "3–5 years.", "azathioprine", "prednisone")  # fmt: skip
AZA_SLE = P(2, "Azathioprine for non-renal SLE: 1–3 mg/kg/day, typically 50–200 mg/day in "
               "adults. Adult starting dose: 50–100 mg/day, then titrate upward. Blood counts "
               "weekly for the first 8 weeks. With allopurinol, reduce azathioprine to 25% of the "
               "standard dose.", "azathioprine")  # fmt: skip
CPIC = P(3, "Azathioprine, CPIC, normal metabolizer: start at 2–3 mg/kg/day. Intermediate "
            "metabolizer: start at 30–80% of the normal dose. Intermediate for both TPMT and "
            "NUDT15: start at 20–50% of the normal dose. TPMT homozygous deficiency: about 1 in "
            "178 to 1 in 3736 people; heterozygous: about 3–14%.", "azathioprine")  # fmt: skip
MTX = P(1, "Methotrexate for rheumatoid arthritis, US label: 7.5 mg once weekly to start. The "
           "weekly dose ordinarily should not exceed 20 mg/week. Psoriasis: 10–25 mg/week as a "
           "single weekly dose.", "methotrexate")  # fmt: skip
ALLO = P(1, "Allopurinol label: patients taking 300–600 mg/day of allopurinol need azathioprine "
            "or mercaptopurine reduced to about one-third to one-quarter of the usual dose.",
         "allopurinol", "azathioprine", "mercaptopurine")  # fmt: skip
TGN = P(1, "Azathioprine, secondary summary, inflammatory bowel disease target range: 235–400 "
           "pmol/8×10^8 RBC. Keep 6-MMP below 5700 pmol/8×10^8 RBC.", "azathioprine")  # fmt: skip
FLARES = P(1, "In the maintenance trial, renal flares occurred at 0.24 vs 0.89 per patient-year "
              "with azathioprine versus placebo.", "azathioprine")  # fmt: skip
CYC = P(1, "Cyclophosphamide, Euro-Lupus low-dose regimen: 500 mg IV fixed dose every 2 weeks "
           "for 6 doses. NIH regimen: 500–1000 mg/m2 IV once monthly for 6 months.",
        "cyclophosphamide")  # fmt: skip

MONITOR = P(3, "CPIC: test TPMT and NUDT15 before starting azathioprine. Another source: blood "
               "counts every 1–2 weeks.", "azathioprine")  # fmt: skip

PATIENT_72 = validate_patient(72, "normal", "normal", [])
PATIENT_75_ALLO = validate_patient(75, "normal", "normal", ["allopurinol"])
PATIENT_70_IM = validate_patient(70, "intermediate", "normal", [])

CASES = [
    Case("aza lupus nephritis summary",
         "Lupus nephritis maintenance: azathioprine 2 mg/kg/day (usually 100–200 mg/day in "
         "adults) [1] with prednisone 2.5–5 mg/day [1], for at least 3–5 years [1]; non-renal "
         "lupus: 1–3 mg/kg/day [2].", (AZA_LN, AZA_SLE)),
    Case("full answer in the design-sketch layout",
         "**Lupus nephritis maintenance: azathioprine 2 mg/kg/day (usually 100–200 mg/day in "
         "adults) [1] with prednisone 2.5–5 mg/day [1], for at least 3–5 years [1]; non-renal "
         "lupus: 1–3 mg/kg/day [2].**\nCheck TPMT (and NUDT15) before the first dose [3].\n\n"
         "✅ 9 of 9 numbers verified · Sources: 3\n\n### Dosing\n"
         "- Maintenance after induction: 2 mg/kg/day [1]; typical adult range 100–200 mg/day [1].\n"
         "- Start at 50–100 mg/day and titrate [2].\n\n"
         "### For this patient (72 kg, TPMT normal)\n"
         "- 2 mg/kg/day × 72 kg = **144 mg/day** (derived from [1]; within the limit of up to "
         "3 mg/kg/day = 216 mg/day)\n\n### Monitoring\n"
         "- Blood counts weekly for the first 8 weeks [2]; another source advises every 1–2 "
         "weeks [3].\n\n**Sources**\n1. Guideline · KDIGO 2024 lupus nephritis guideline\n",
         (AZA_LN, AZA_SLE, MONITOR), PATIENT_72, "azathioprine"),
    Case("aza dosing bullets with monitoring",
         "### Dosing\n- Non-renal SLE: azathioprine 1–3 mg/kg/day, typically 50–200 mg/day [2].\n"
         "- Start at 50–100 mg/day and titrate [2].\n### Monitoring\n"
         "- Blood counts weekly for the first 8 weeks [2].", (AZA_LN, AZA_SLE)),
    Case("aza patient derivation",
         "### For this patient (72 kg, TPMT normal)\n"
         "- Azathioprine 2 mg/kg/day × 72 kg = 144 mg/day (derived from [1]).",
         (AZA_LN,), PATIENT_72, "azathioprine"),
    Case("aza with allopurinol derivation",
         "With allopurinol, reduce azathioprine to 25% of the standard dose [2]: for 75 kg, "
         "azathioprine 2 mg/kg/day [1] gives 150 mg/day, reduced to 37.5 mg/day.",
         (AZA_LN, AZA_SLE), PATIENT_75_ALLO, "azathioprine"),
    Case("cpic intermediate metabolizer",
         "CPIC: normal metabolizers start azathioprine at 2–3 mg/kg/day [3]; intermediate "
         "metabolizers start at 30–80% of the normal dose [3], and 20–50% when intermediate for "
         "both genes [3].", (CPIC,)),
    Case("tpmt frequencies",
         "TPMT homozygous deficiency affects about 1 in 178 to 1 in 3736 people, and about "
         "3–14% are heterozygous [1].", (P(1, CPIC.text, "azathioprine"),)),
    Case("methotrexate weekly",
         "Methotrexate for rheumatoid arthritis: 7.5 mg once weekly to start [1], not more than "
         "20 mg/week [1]; psoriasis 10–25 mg/week [1].", (MTX,)),
    Case("allopurinol interaction fractions",
         "With allopurinol 300–600 mg/day, azathioprine is reduced to about one-third to "
         "one-quarter of the usual dose [1].", (ALLO,)),
    Case("thioguanine nucleotide target",
         "Azathioprine target 6-TGN 235–400 pmol/8×10^8 RBC [1]; keep 6-MMP below 5700 "
         "pmol/8×10^8 RBC [1].", (TGN,)),
    Case("flare rates per patient-year",
         "Azathioprine maintenance: renal flares 0.24 vs 0.89 per patient-year [1].", (FLARES,)),
    Case("cyclophosphamide regimens",
         "Euro-Lupus: cyclophosphamide 500 mg IV every 2 weeks for 6 doses [1]; NIH: 500–1000 "
         "mg/m2 IV once monthly for 6 months [1].", (CYC,)),
]  # fmt: skip


@pytest.fixture(scope="module")
def limits():
    return load_limits()


def run(case: Case, limits, answer: str | None = None):
    return check_answer(answer if answer is not None else case.answer, case.passages,
                        patient=case.patient, limits=limits, drug=case.drug)  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_unmutated_answer_passes(case, limits):
    v = run(case, limits)
    assert v.passed, [(c.claim.text, c.status.value, c.reason) for c in v.failed] or v.error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_mutant_is_blocked(case, limits):
    mutants = mutate_answer(case.answer)
    assert mutants
    escaped = [(m.kind, m.original, m.mutated_text[m.span[0] : m.span[1] + 12])
               for m in mutants if run(case, limits, m.mutated_text).passed]  # fmt: skip
    assert escaped == []


def test_every_mutant_changes_the_answer_text():
    for case in CASES:
        for m in mutate_answer(case.answer):
            assert m.mutated_text != case.answer and m.kind in MUTATION_KINDS


def test_all_mutation_kinds_are_exercised():
    kinds = {m.kind for case in CASES for m in mutate_answer(case.answer)}
    assert kinds == set(MUTATION_KINDS)


def test_catch_and_false_block_rates(limits, capsys):
    total = caught = 0
    by_kind: dict[str, list[int]] = {}
    false_blocks = sum(not run(c, limits).passed for c in CASES)
    for case in CASES:
        for m in mutate_answer(case.answer):
            blocked = not run(case, limits, m.mutated_text).passed
            total += 1
            caught += blocked
            by_kind.setdefault(m.kind, [0, 0])
            by_kind[m.kind][0] += blocked
            by_kind[m.kind][1] += 1
    with capsys.disabled():
        print(
            f"\nmutation test: {caught}/{total} mutants blocked "
            f"({100 * caught / total:.1f} %), false blocks {false_blocks}/{len(CASES)}"
        )
        print("  " + ", ".join(f"{k} {c}/{n}" for k, (c, n) in sorted(by_kind.items())))
    assert caught == total and false_blocks == 0


# ---------------------------------------------------------------------------------------------
# Answers built from the real corpus: each bullet, restated with a [1] marker, against the
# section it comes from (chunks never span headings).

_FRONT_RE = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_SOURCE_MARK_RE = re.compile(r"\s*\[@[^\]]+\]")


def _corpus_cases() -> list[Case]:
    if not CORPUS.is_dir():
        return []
    cases = []
    for path in sorted(CORPUS.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        front = _FRONT_RE.match(text)
        drugs_line = re.search(r"^drugs:\s*\[(.*?)\]", front.group(0), re.M) if front else None
        drugs = tuple(d.strip() for d in drugs_line.group(1).split(",")) if drugs_line else ()
        body = text[front.end() :] if front else text
        for section in re.split(r"\n(?=#{1,6} )", body):
            passage = Passage(1, section, doc_id=path.stem, drugs=drugs)
            for line in section.splitlines():
                if line.startswith("- ") and re.search(r"\d", _SOURCE_MARK_RE.sub("", line)):
                    answer = _SOURCE_MARK_RE.sub("", line[2:]).rstrip(".") + " [1]."
                    cases.append(Case(f"{path.stem}: {answer[:40]}", answer, (passage,)))
    return cases


CORPUS_CASES = _corpus_cases()


def _supporting_span(verdict, span):
    claim = next(c for c in verdict.claims if c.claim.span[0] == span[0])
    return claim.status, claim.source_span


@pytest.mark.skipif(not CORPUS_CASES, reason="corpus/*.md not present")
def test_corpus_answers_pass_and_their_mutants_are_blocked(limits, capsys):
    """Restated corpus bullets pass. A mutant may only get through when its new value is what
    the same cited section states elsewhere for the same drug (a coincidence verification by
    citation cannot see, e.g. transplant 1–3 -> 1–4 mg/kg/day where the section also gives
    1–4): it must then be SUPPORTED by a different source span than the original claim."""
    false_blocks, escaped, coincident, total = [], [], 0, 0
    for case in CORPUS_CASES:
        v = run(case, limits)
        if not v.passed:
            false_blocks.append((case.name, [(c.claim.text, c.reason) for c in v.failed]))
            continue
        for m in mutate_answer(case.answer):
            total += 1
            mv = run(case, limits, m.mutated_text)
            if not mv.passed:
                continue
            status, new_span = _supporting_span(mv, m.span)
            _, old_span = _supporting_span(v, m.span)
            if (
                status.value == "supported"
                and new_span
                and old_span
                and (new_span[1] <= old_span[0] or new_span[0] >= old_span[1])
            ):
                coincident += 1
            else:
                escaped.append((case.name, m.kind, m.original, status.value))
    blocked = total - coincident - len(escaped)
    with capsys.disabled():
        print(
            f"\ncorpus mutation test: {len(CORPUS_CASES)} answers, {len(false_blocks)} false "
            f"blocks, {blocked}/{total} mutants blocked ({100 * blocked / max(total, 1):.1f} %), "
            f"{coincident} equal a value stated elsewhere in the cited section"
        )
        for fb in false_blocks:
            print("  FALSE BLOCK", fb)
        for e in escaped:
            print("  ESCAPED", e)
    assert false_blocks == [] and escaped == []
    assert coincident <= total // 50  # coincidences stay rare (< 2 %)


@pytest.mark.skipif(not CORPUS_CASES, reason="corpus/*.md not present")
def test_scope_mutants_of_corpus_answers_are_blocked(limits, capsys):
    """A true figure moved to another drug, role or indication (the passages distinguishing
    them) is blocked; the unmutated answers pass (checked above)."""
    by_kind: dict[str, list[int]] = {k: [0, 0] for k in SCOPE_KINDS}
    escaped = []
    for case in CORPUS_CASES:
        for m in scope_mutants(case.answer, case.passages):
            blocked = not run(case, limits, m.mutated_text).passed
            by_kind[m.kind][0] += blocked
            by_kind[m.kind][1] += 1
            if not blocked:
                escaped.append((m.kind, m.mutated_text[:120]))
    with capsys.disabled():
        print("\nscope mutants: " + ", ".join(f"{k} {c}/{n}" for k, (c, n) in by_kind.items()))
    assert all(n >= 20 for _, n in by_kind.values()), by_kind
    assert escaped == []


def test_scope_mutants_keep_every_number_and_change_the_text():
    case = Case(
        "t",
        "Renal transplant: azathioprine 3–5 mg/kg/day at first [1].",
        (
            Passage(
                1, "Renal transplant: azathioprine 3–5 mg/kg/day at first.", drugs=("azathioprine",)
            ),
        ),
    )
    kinds = {m.kind: m.mutated_text for m in scope_mutants(case.answer, case.passages)}
    assert set(kinds) == set(SCOPE_KINDS)
    for text in kinds.values():
        assert "3–5 mg/kg/day" in text and text != case.answer
    assert "a maintenance dose of 3–5" in kinds["role_swap"]
    assert "lupus nephritis" in kinds["indication_swap"]
