"""A true figure that does not answer the question is not verified: the question's indication,
phase, population, phenotype, organ and asked source fill in what the answer's sentence leaves
unsaid; a statement's conditions must hold; durations, time points and bare counts mean what the
words around them say. Without a question the guard reads as before (the composer's path)."""

from __future__ import annotations

from guardrails import Status, check_answer
from guardrails.model import Passage, Role
from guardrails.statements import asked_scope, extract_statements

MMF = Passage(
    1,
    "- Mycophenolate mofetil for LN induction, EULAR: 2000–3000 mg/day [@eular-2019-ln].\n"
    "- Mycophenolate mofetil, US label, kidney transplant: 1000 mg twice daily [@cellcept-label].\n"
    "- Mycophenolate mofetil, US label, heart transplant: 1500 mg twice daily [@cellcept-label].\n"
    "- Mycophenolate mofetil in the ALMS induction trial: target 3000 mg/day for 24 weeks "
    "[@alms-induction-2009].",
    doc_id="mmf",
    drugs=("mycophenolate",),
)
AZA = Passage(
    2,
    "- Azathioprine for RA, starting dose: about 1 mg/kg/day (50–100 mg) [@imuran-label].\n"
    "- Azathioprine renal transplant, US label: 3–5 mg/kg/day initially, then 1–3 mg/kg/day "
    "for maintenance [@imuran-label].\n"
    "- Azathioprine for non-renal SLE, secondary summary: typically 50–200 mg/day in adults "
    "[@drorac-lupus-2025].\n"
    "- Azathioprine in children with inflammatory bowel disease: 2 mg/kg/day [@acg-2018-crohns].",
    doc_id="aza",
    drugs=("azathioprine",),
)
PRED = Passage(
    3,
    "- Lupus nephritis maintenance, KDIGO: prednisone 2.5–5 mg/day alongside azathioprine "
    "[@kdigo-2024-ln].\n"
    "- AIH combination regimen, AASLD: prednisone 30 mg/day in week 1, tapered to 10 mg/day by "
    "week 4 [@aasld-2010-aih].\n"
    "- Blood counts weekly in month 1, then monthly [@cellcept-label].",
    doc_id="pred",
    drugs=("prednisone", "azathioprine"),
)
PGX = Passage(
    4,
    "- Azathioprine, CPIC, TPMT or NUDT15 normal metabolizer: start at the normal dose, "
    "2–3 mg/kg/day [@cpic-2018].\n"
    "- Azathioprine, CPIC, TPMT or NUDT15 intermediate metabolizer: start at 30–80% of the normal "
    "dose [@cpic-2018].\n"
    "- TPMT, secondary summary: roughly 0.3% homozygous deficient and 10% intermediate "
    "[@drorac-aza-2025].\n"
    "- With allopurinol, reduce azathioprine to 25% of the usual dose [@zyloprim-label].",
    doc_id="pgx",
    drugs=("azathioprine", "allopurinol"),
)
PASSAGES = [MMF, AZA, PRED, PGX]


def check(answer: str, question: str | None, drug: str = "azathioprine"):
    return check_answer(answer, PASSAGES, drug=drug, question=question)


def failed(v) -> list[str]:
    return [f"{c.claim.text}: {c.reason}" for c in v.failed]


def test_without_a_question_the_guard_reads_as_before() -> None:
    assert check("The dose is 2000–3000 mg/day.", None, "mycophenolate").passed


def test_question_indication_scopes_a_sentence_that_names_none() -> None:
    v = check("The answer is: 2000–3000 mg/day.", "MMF liver tx dose?", "mycophenolate")
    assert not v.passed and "lupus nephritis" in v.failed[0].reason
    assert check("The answer is: 2000–3000 mg/day.", "MMF lupus nephritis induction dose?",
                 "mycophenolate").passed  # fmt: skip


def test_a_sentence_naming_the_asked_indication_and_another_is_about_the_asked_one() -> None:
    answer = "Azathioprine for RA, starting dose: 3–5 mg/kg/day from the day of transplantation."
    v = check(answer, "What is the Imuran starting dose for RA?")
    assert not v.passed and "transplant" in v.failed[0].reason
    assert check(answer, "Azathioprine starting dose after renal transplant?").passed


def test_non_renal_lupus_is_not_lupus_nephritis() -> None:
    # The LN companion prednisone dose does not answer a non-renal SLE question, ...
    v = check("The answer is: 2.5–5 mg/day.",
              "At what maintenance prednisone dose is azathioprine considered in non-renal SLE?",
              "prednisone")  # fmt: skip
    assert not v.passed and "non-renal" in v.failed[0].reason
    # ... and a non-renal SLE figure does not answer a lupus nephritis question.
    v = check("Azathioprine in SLE and lupus nephritis: 50–200 mg/day.",
              "Imuran lupus nephritis maintenance dose per KDIGO")  # fmt: skip
    assert not v.passed and "non-renal" in v.failed[0].reason
    assert check("Azathioprine in SLE: 50–200 mg/day.", "azathioprine dose in SLE").passed


def test_question_phase_scopes_a_dose_whose_sentence_names_no_role() -> None:
    q = "Azathioprine maintenance dose after renal transplant?"
    v = check("The usual dose is 3–5 mg/kg/day.", q)
    assert not v.passed and "initial" in v.failed[0].reason
    assert check("The usual dose is 1–3 mg/kg/day.", q).passed
    # The sentence's own role wins over the question's.
    assert check("Start at 3–5 mg/kg/day, later 1–3 mg/kg/day.", q).passed


def test_question_population_scopes_a_sentence_that_names_none() -> None:
    assert not check("Give 50–200 mg/day.", "azathioprine dose for children with SLE").passed
    assert check("Give 50–200 mg/day.", "azathioprine dose for adults with SLE").passed


def test_transplanted_organ_must_match() -> None:
    v = check("Mycophenolate mofetil, kidney transplant: 1500 mg twice daily.",
              "CellCept dose after kidney transplant", "mycophenolate")  # fmt: skip
    assert not v.passed and "heart" in v.failed[0].reason
    assert check("Mycophenolate mofetil, heart transplant: 1500 mg twice daily.",
                 "CellCept dose after heart transplant", "mycophenolate").passed  # fmt: skip


def test_a_figure_given_as_the_asked_source_must_come_from_it() -> None:
    q = "aza transplant dose on day one per SmPC"
    v = check("The SmPC day-one dose is 3–5 mg/kg/day.", q)
    assert not v.passed and "smpc" in v.failed[0].reason
    # Not given as the SmPC's: the sentence makes no claim about the source.
    assert check("Renal transplant: 3–5 mg/kg/day at first.", q).passed


def test_phenotype_of_the_sentence_or_question_must_match_the_statement() -> None:
    v = check("TPMT poor metabolizer: start at 2–3 mg/kg/day.", "TPMT poor metabolizer dosing")
    assert not v.passed and "tpmt" in v.failed[0].reason
    assert check("TPMT normal metabolizer: start at 2–3 mg/kg/day.",
                 "azathioprine starting dose, normal TPMT").passed  # fmt: skip
    # "TPMT or NUDT15": alternatives; the question's TPMT heterozygote is one of them.
    assert check(
        "Start at 30–80% of the normal dose.", "TPMT heterozygous azathioprine dose"
    ).passed
    assert not check("Start at 30–80% of the normal dose.", "azathioprine starting dose").passed


def test_a_reduction_holds_only_with_its_co_medication() -> None:
    v = check("Give 25% of the usual dose.", "azathioprine dose reduction?")
    assert not v.passed and "allopurinol" in v.failed[0].reason
    assert check("Give 25% of the usual dose.", "azathioprine with allopurinol?").passed


def test_a_duration_keeps_its_drug() -> None:
    v = check("Azathioprine target 3000 mg/day for 24 weeks.", "aza LN induction?")
    assert not v.passed
    assert any("mycophenolate" in c.reason for c in v.failed if c.claim.text == "24 weeks")


def test_a_time_point_dates_the_dose_before_it() -> None:
    q = "AIH prednisone taper?"
    v = check("Prednisone 30 mg/day tapered to 10 mg/day by week 1.", q, "prednisone")
    assert not v.passed and [c.claim.text for c in v.failed] == ["1"]
    assert check("Prednisone 30 mg/day in week 1, tapered to 10 mg/day by week 4.", q,
                 "prednisone").passed  # fmt: skip


def test_a_bare_count_needs_the_same_neighbour_word() -> None:
    v = check("The answer is: 1.", "mycophenolate monitoring?", "mycophenolate")
    assert not v.passed
    assert check("Blood counts weekly in month 1.", "mycophenolate monitoring?",
                 "mycophenolate").passed  # fmt: skip


def test_a_time_point_matches_the_same_duration() -> None:
    passage = Passage(
        1,
        "AIH: prednisone 30 mg/day reduced to 10 mg/day over 4 weeks [@a].",
        drugs=("prednisone",),
    )
    v = check_answer("Prednisone 30 mg/day reduced to 10 mg/day by week 4.", [passage],
                     drug="prednisone", question="AIH prednisone taper")  # fmt: skip
    assert v.passed, failed(v)


def test_an_indication_only_dose_is_not_the_general_dose() -> None:
    q = "CPIC normal metabolizer azathioprine starting dose"
    v = check("A high starting dose is 50–100 mg.", q)
    assert not v.passed and "rheumatoid arthritis" in v.failed[0].reason
    assert check("In RA, a starting dose is 50–100 mg.", q).passed


def test_statement_phenotype_is_the_one_next_to_its_number() -> None:
    sts = extract_statements("TPMT: roughly 0.3% homozygous deficient and 10% intermediate.")
    assert [st.conditions for st in sts] == [("tpmt:poor",), ("tpmt:intermediate",)]


def test_followed_by_and_the_usual_starting_dose_are_role_cues() -> None:
    sts = extract_statements("Azathioprine 100 mg/day, followed by 50 mg/day.",
                             drugs=("azathioprine",))  # fmt: skip
    assert [st.role for st in sts] == [Role.USUAL, Role.MAINTENANCE]
    (st,) = extract_statements("Azathioprine 50 mg/day, the usual US starting dose.",
                               drugs=("azathioprine",))  # fmt: skip
    assert st.role is Role.INITIAL


def test_asked_scope_reads_the_question() -> None:
    s = asked_scope("TPMT poor metabolizer: maintenance dose for children with lupus nephritis "
                    "after a kidney transplant, per KDIGO")  # fmt: skip
    assert s.role is Role.MAINTENANCE and s.population == "pediatric"
    assert s.phenotypes == ("tpmt:poor",) and s.sources == ("kdigo",)
    assert s.organs == ("kidney",) and "lupus nephritis" in s.indications
    # Two phases asked: the question asks the regimen, no one phase.
    assert asked_scope("induction and maintenance dose of MMF in LN").role is None
    assert asked_scope("azathioprine dose").empty


def test_unsupported_claims_keep_their_status() -> None:
    v = check("The answer is: 2000–3000 mg/day.", "MMF liver tx dose?", "mycophenolate")
    assert v.failed[0].status is Status.UNSUPPORTED


def test_a_duration_dates_only_the_same_range() -> None:
    passage = Passage(
        1,
        "- MMF for LN induction, KDIGO: 1000–1500 mg twice daily for about 6 months [@k].\n"
        "- MMF for LN maintenance, KDIGO: 750–1000 mg twice daily [@k].",
        drugs=("mycophenolate",),
    )
    q = "mycophenolate lupus nephritis dosing"
    v = check_answer("MMF for LN maintenance: 750–1000 mg twice daily for about 6 months.",
                     [passage], drug="mycophenolate", question=q)  # fmt: skip
    assert [c.claim.text for c in v.failed] == ["6 months"]
    v = check_answer("MMF for LN induction: 1000–1500 mg twice daily for about 6 months.",
                     [passage], drug="mycophenolate", question=q)  # fmt: skip
    assert v.passed, failed(v)
