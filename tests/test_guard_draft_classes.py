"""Classes of wrong numbers real LLM drafts slipped past the guard (evals/llm_drafts.jsonl), one
behaviour each: what is blocked now, and the legitimate text beside it that must still pass."""

from __future__ import annotations

from decimal import Decimal

import pytest

from guardrails import Passage, PatientContext, Status, check_answer, load_limits
from guardrails.quantities import unread_tokens

LIMITS = load_limits()


def _p(n: int, text: str, drugs: tuple[str, ...] = ("azathioprine",), section: str = "") -> Passage:
    return Passage(n=n, text=text, doc_id="doc", section=section, drugs=drugs)


def _failed(answer: str, passages: list[Passage], **kw: object) -> list[str]:
    v = check_answer(answer, passages, limits=LIMITS, **kw)  # type: ignore[arg-type]
    assert not v.error
    return [c.claim.text for c in v.failed]


# --- digits the parser cannot read --------------------------------------------------------------

TRANSPLANT = _p(1, "Renal transplant: azathioprine 3–5 mg/kg/day from the day of transplantation.")
METABOLITES = _p(
    2,
    "Thiopurine metabolites: 6-TGN 235–450 pmol/8×10^8 RBC; 6-MMP above 5700 pmol/8×10^8 RBC. "
    "NUDT15 and TPMT genotype first; a 10-fold lower dose in poor metabolizers.",
)


@pytest.mark.parametrize(
    ("answer", "token"),
    [
        ("Azathioprine 3–5 mg/kg/day after the 19th day of life.", "19th"),
        ("Check LFTs for 11 days or DOTN12 days.", "DOTN12"),
        ("A 30-day dose of 20-TGN of mercaptopurine.", "20-TGN"),
        ("Give it as a 5-fold lower dose.", "5-fold"),
    ],
)
def test_a_digit_the_parser_cannot_read_is_blocked(answer: str, token: str) -> None:
    v = check_answer(answer, [TRANSPLANT, METABOLITES], limits=LIMITS, drug="azathioprine")
    bad = [c for c in v.failed if c.claim.text == token]
    assert not v.passed and bad, [c.claim.text for c in v.claims]
    assert bad[0].status is Status.UNSUPPORTED and "cannot read" in bad[0].reason


def test_an_unreadable_token_alone_still_blocks() -> None:
    # No quantity at all in the answer: the early "nothing to check" pass must not skip it.
    v = check_answer("Repeat at DOTN12.", [TRANSPLANT])
    assert not v.passed and [c.claim.text for c in v.failed] == ["DOTN12"]


@pytest.mark.parametrize(
    "answer",
    [
        "Measure 6-TGN and 6-MMP; 6-TGN 235–450 pmol/8×10^8 RBC is the target.",
        "Test TPMT*3A, TPMT*3C/*3A and CYP2C9*2 carriers; NUDT15 too.",
        "Azathioprine (6-MP is its metabolite) and 6-mercaptopurine; HLA-B*5801 and G6PD.",
        "Check HbA1c, IgG4 and vitamin B12; 5-FU and 5-ASA are other drugs; COVID-19 and IL-6.",
        "Per the 2019 guidance (eular-2019-ln), updated 2021–2024, on 3/12/2024 and 03/2024.",
        "See Table 2, section 4.2.1 and Figure 3 [2].",
        "A 10-fold lower dose in poor metabolizers [2].",
    ],
)
def test_names_dates_sections_and_copied_tokens_are_not_unread(answer: str) -> None:
    v = check_answer(answer, [TRANSPLANT, METABOLITES], limits=LIMITS, drug="azathioprine")
    assert all(c.claim.kind != "unread" for c in v.claims), [c.claim.text for c in v.claims]


def test_an_ordinal_a_passage_writes_in_words_is_a_copy() -> None:
    p = _p(1, "Azathioprine is a second-line agent from the third trimester on.")
    assert _failed("Azathioprine is a 2nd-line agent from the 3rd trimester on.", [p]) == []
    assert _failed("Azathioprine is a 4th-line agent.", [p]) == ["4th-line"]


def test_a_token_copied_from_an_uncited_passage_is_not_supported_by_it() -> None:
    # "[1]" cites the transplant passage only: the 10-fold of passage 2 is not in scope.
    assert _failed("A 10-fold lower dose [1].", [TRANSPLANT, METABOLITES]) == ["10-fold"]


def test_unread_tokens_spans() -> None:
    text = "the 19th day, NUDT15, DOTN12 (20-TGN) and 2019"
    assert [text[a:b] for a, b in unread_tokens(text)] == ["19th", "DOTN12", "20-TGN"]


# --- a time that dates an invented dose --------------------------------------------------------

TAPER = _p(1, "AIH, AASLD: prednisone 30 mg/day tapered to 10 mg/day over 4 weeks.",
           drugs=("prednisone",))  # fmt: skip
Q_PRED = {"drug": "prednisone", "question": "prednisone taper in AIH?"}


def test_a_time_dating_a_dose_no_passage_gives_is_blocked() -> None:
    # 40 mg/day is in no passage; "4 weeks" is the source's, but it times another course.
    assert _failed("Prednisone 40 mg/day for 4 weeks.", [TAPER], **Q_PRED) == [
        "40 mg/day",
        "4 weeks",
    ]
    got = check_answer("Prednisone 40 mg/day by week 4.", [TAPER], limits=LIMITS, **Q_PRED)
    assert [c.claim.text for c in got.failed] == ["40 mg/day", "4"]


def test_the_source_course_and_a_derived_dose_keep_their_time() -> None:
    assert (
        _failed("Prednisone 30 mg/day tapered to 10 mg/day over 4 weeks.", [TAPER], **Q_PRED) == []
    )
    # 2 mg/kg/day x 70 kg = 140 mg/day is the guard's own arithmetic: its time is not invented.
    p = _p(1, "AIH: azathioprine 2 mg/kg/day for 4 weeks.")
    ans = "Azathioprine 2 mg/kg/day × 70 kg = 140 mg/day for 4 weeks."
    patient = PatientContext(weight_kg=Decimal(70))
    assert (
        _failed(ans, [p], drug="azathioprine", question="aza dose in AIH?", patient=patient) == []
    )


# --- a failure regimen's dose given for another course -----------------------------------------

FAILURE = _p(
    1,
    "In the AASLD failure regimen the azathioprine partner dose is 150 mg/day.",
    section="Autoimmune hepatitis > Treatment failure",
)


@pytest.mark.parametrize(
    "question",
    ["aza monotherapy dose after multiple AIH relapses", "aza dose in AIH with renal failure?"],
)
def test_a_failure_regimen_dose_does_not_answer_another_course(question: str) -> None:
    ans = "AIH, AASLD: azathioprine 150 mg/day."
    assert _failed(ans, [FAILURE], drug="azathioprine", question=question) == ["150 mg/day"]


@pytest.mark.parametrize(
    "question",
    [
        "Autoimmune hepatitis treatment failure: what azathioprine dose?",
        "what if she fails treatment?",
    ],
)
def test_a_failure_regimen_dose_answers_a_failure_question(question: str) -> None:
    ans = "AIH, AASLD: azathioprine 150 mg/day."
    assert _failed(ans, [FAILURE], drug="azathioprine", question=question) == []
    # The sentence may say it too.
    ans = "After treatment failure, azathioprine 150 mg/day."
    assert _failed(ans, [FAILURE], drug="azathioprine", question="aza dose in AIH?") == []


# --- a dose in a sentence that rules its drug out; a taper's end -------------------------------

AIH = [
    _p(1, "AIH prednisone monotherapy, AASLD: 60 mg/day tapered to 20 mg/day over 4 weeks, for "
          "patients who should not take azathioprine.", drugs=("azathioprine", "prednisone")),
    _p(2, "AIH, AASLD guidance: azathioprine 50 mg/day at first.", drugs=("azathioprine",)),
    _p(3, "AIH combination, BSG: prednisolone 30 mg/day, reduced to 10 mg/day over 4 weeks.",
       drugs=("prednisolone",)),
]  # fmt: skip
Q_AIH = {"drug": "azathioprine", "question": "How long is azathioprine continued in AIH?"}


def test_a_dose_for_patients_who_should_not_take_the_drug_is_not_that_drugs() -> None:
    ans = "AIH, EASL: 50 mg/day, for patients who should not take azathioprine."
    # 50 mg/day is azathioprine's in the passages: not the dose of a sentence that rules it out.
    assert _failed(ans, AIH, **Q_AIH) == ["50 mg/day"]
    # The ruled-out drug's own statement is another drug's figure: it passes on the companion's.
    ans = "AIH, AASLD: 60 mg/day tapered to 20 mg/day over 4 weeks, for patients who should not take azathioprine."
    v = check_answer(ans, AIH, limits=LIMITS, **Q_AIH)  # type: ignore[arg-type]
    assert [c.claim.text for c in v.claims if c.claim.kind == "dose" and c.status.verified] == [
        "60 mg/day",
        "20 mg/day",
    ]


def test_a_taper_must_end_where_the_source_taper_ends() -> None:
    # 30 mg/day is where the BSG taper starts; "tapered to 30 mg/day" ends a taper there.
    ans = "AIH: prednisolone 50 mg/day tapered to 30 mg/day."
    assert "30 mg/day" in _failed(ans, AIH, drug="prednisolone", question="AIH prednisolone?")
    ans = "AIH: prednisolone 30 mg/day, reduced to 10 mg/day over 4 weeks."
    assert _failed(ans, AIH, drug="prednisolone", question="AIH prednisolone?") == []


# --- a sentence that sets two indications against each other ----------------------------------

RA = _p(1, "Azathioprine for RA, starting dose: about 1 mg/kg/day (50–100 mg), once daily.")


def test_the_number_takes_the_indication_of_its_own_part_of_a_contrast() -> None:
    ans = (
        "In rheumatoid arthritis the outlook is better, but it is hard to give azathioprine "
        "(50–100 mg) to patients with a renal transplant."
    )
    assert _failed(ans, [RA], drug="azathioprine") == ["50–100 mg"]


def test_a_contrast_keeps_the_indication_its_number_is_given_for() -> None:
    ans = "In renal transplant the dose differs, but in rheumatoid arthritis azathioprine starts at 50–100 mg."
    assert _failed(ans, [RA], drug="azathioprine") == []
    ans = "Azathioprine 50–100 mg in rheumatoid arthritis, but not in a renal transplant."
    assert _failed(ans, [RA], drug="azathioprine") == []
    # A part that names no indication leaves the sentence's.
    ans = "In rheumatoid arthritis and renal transplant alike, azathioprine 50–100 mg, but monitor."
    assert _failed(ans, [RA], drug="azathioprine") == []


# --- a drug named in a compound word ------------------------------------------------------------


def test_a_compound_word_names_its_drug() -> None:
    from guardrails.drugs import _drugs_in_by_regex, drugs_in

    for text in ("continue azathioprine-based treatment", "Azathioprine-induced leukopenia"):
        assert [n for _, n in drugs_in(text)] == ["azathioprine"]
        assert [n for _, n in _drugs_in_by_regex(text, frozenset())] == ["azathioprine"]
    assert drugs_in("azathioprine-x") == []


def test_a_duration_of_an_azathioprine_based_course_is_not_prednisolones() -> None:
    p = _p(1, "AIH, secondary summary: continue azathioprine-based treatment for at least 2 years.",
           drugs=("azathioprine", "prednisolone"))  # fmt: skip
    q = {"drug": "prednisolone", "question": "EASL initial prednisolone dose per kg in AIH"}
    assert _failed("The AIH treatment lasts for 2 years.", [p], **q) == ["2 years"]
    q = {"drug": "azathioprine", "question": "How long is azathioprine continued in AIH?"}
    assert _failed("The AIH treatment lasts for 2 years.", [p], **q) == []


# --- the time to start a drug given as the time to stop it -------------------------------------

EASL = _p(1, "AIH, EASL: add azathioprine about 2 weeks after starting the steroid.")
Q_STOP = {"drug": "azathioprine", "question": "How long is azathioprine continued in AIH?"}


def test_when_to_start_is_not_how_long_to_keep() -> None:
    ans = "Azathioprine treatment is stopped for an average of 2 weeks after treatment initiation."
    assert _failed(ans, [EASL], **Q_STOP) == ["2 weeks"]
    assert _failed("Azathioprine is added about 2 weeks after the steroid.", [EASL], **Q_STOP) == []
    # "continue for" and "stop after" time the same course.
    p = _p(1, "AIH: continue azathioprine for at least 2 years.")
    assert _failed("Stop azathioprine after at least 2 years.", [p], **Q_STOP) == []


# --- a figure the answer denies ---------------------------------------------------------------

LN = _p(1, "LN maintenance with azathioprine, secondary summary: at least 3–5 years.")
Q_LN = {"drug": "azathioprine", "question": "How long is azathioprine LN maintenance?"}


def test_a_figure_the_answer_denies_is_not_supported_by_the_source_stating_it() -> None:
    ans = "Azathioprine is not an agent that has a duration of treatment of 3–5 years."
    assert _failed(ans, [LN], **Q_LN) == ["3–5 years"]


@pytest.mark.parametrize(
    "ans",
    [
        "LN maintenance with azathioprine lasts at least 3–5 years.",
        "Azathioprine should not be stopped before 3–5 years of LN maintenance.",
        "Do not stop azathioprine before 3–5 years.",
        "Azathioprine is not an induction agent; LN maintenance lasts at least 3–5 years.",
    ],
)
def test_bounding_negations_and_other_clauses_deny_nothing(ans: str) -> None:
    assert _failed(ans, [LN], **Q_LN) == []


# --- a sentence that names a source is held to it ------------------------------------------------

AIH_SOURCES = [
    _p(1, "- AIH, AASLD guidance: azathioprine 50 mg/day at first, raised towards 1–2 mg/kg/day "
          "as tolerated [@aasld-2019-aih].\n"
          "- AIH combination, BSG: azathioprine 1 mg/kg/day given alongside the prednisolone "
          "taper [@bsg-2011-aih].\n"
          "- AIH, EASL: prednisolone 0.5–1 mg/kg/day as initial therapy [@easl-2015-aih].",
       drugs=("azathioprine", "prednisolone")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "figure", "whose"),
    [
        ("AIH, AASLD: azathioprine 1 mg/kg/day given alongside the prednisolone taper.",
         "1 mg/kg/day", "bsg"),
        ("AIH, BSG: prednisolone 0.5–1 mg/kg/day as initial therapy.", "0.5–1 mg/kg/day", "easl"),
    ],
)  # fmt: skip
def test_a_figure_given_to_a_source_that_does_not_state_it_is_blocked(
    answer: str, figure: str, whose: str
) -> None:
    v = check_answer(answer, AIH_SOURCES, limits=LIMITS)
    assert [c.claim.text for c in v.failed] == [figure]
    assert f"is from {whose}" in v.failed[0].reason


@pytest.mark.parametrize(
    "answer",
    [
        "AIH, BSG: azathioprine 1 mg/kg/day given alongside the prednisolone taper.",
        "AIH, EASL: prednisolone 0.5–1 mg/kg/day as initial therapy.",
        # No source named: the figure needs a passage, not a particular source.
        "In AIH, azathioprine 1 mg/kg/day alongside the taper; prednisolone 0.5–1 mg/kg/day.",
        # Each clause is held to its own source.
        "Per BSG, azathioprine 1 mg/kg/day; per EASL, prednisolone 0.5–1 mg/kg/day.",
    ],
)
def test_a_figure_given_to_the_source_that_states_it_passes(answer: str) -> None:
    assert _failed(answer, AIH_SOURCES) == []


MONITORING = _p(
    1,
    "- Azathioprine blood counts, UK SmPC: after the first 8 weeks, monthly or at least every "
    "3 months [@imuran-smpc].\n"
    "- Azathioprine as a conventional DMARD, BSR/BHPR: once stable, tests at least every "
    "12 weeks [@bsr-2017-dmard].",
)


def test_an_interval_is_held_to_its_named_source_too() -> None:
    ans = "Azathioprine, UK SmPC: once stable, tests at least every 12 weeks."
    assert _failed(ans, [MONITORING]) == ["12 weeks"]
    q = {"drug": "azathioprine", "question": "LFT frequency on aza maintenance?"}
    assert _failed(ans, [MONITORING], **q) == ["12 weeks"]
    for ok in (
        "Azathioprine, BSR/BHPR: once stable, tests at least every 12 weeks.",
        "Azathioprine, UK SmPC: after the first 8 weeks, monthly or at least every 3 months.",
    ):
        assert _failed(ok, [MONITORING]) == []
        assert _failed(ok, [MONITORING], **q) == []


THIOPURINE_LEVELS = [
    _p(1, "- Thiopurines in IBD, meta-analysis: remission was more likely with 6-TGN above about "
          "230–260 pmol/8×10^8 RBC [@osterman-2006].\n"
          "- Thiopurine in IBD, AGA: keep 6-MMP below 5700 pmol/8×10^8 RBC [@aga-2017-tdm].",
       drugs=("mercaptopurine",)),
]  # fmt: skip


def test_a_source_is_read_from_its_citation_and_trial_names_count() -> None:
    assert _failed("IBD, AGA: 6-TGN above 230–260 pmol/8×10^8 RBC.", THIOPURINE_LEVELS) == [
        "230–260 pmol/8×10^8 RBC"
    ]
    for ok in (
        "IBD, meta-analysis: 6-TGN above 230–260 pmol/8×10^8 RBC.",
        # The passage names the meta-analysis; its citation names Osterman: both are its source.
        "Osterman: 6-TGN above 230–260 pmol/8×10^8 RBC.",
        "6-TGN above 230–260 pmol/8×10^8 RBC (osterman-2006).",
    ):
        assert _failed(ok, THIOPURINE_LEVELS) == [], ok


LN_MAINTENANCE = [
    _p(1, "- Azathioprine LN maintenance after induction: 2 mg/kg/day [@acr-2012-ln; "
          "@maintain-2010; @alms-maintenance-2011].\n"
          "- Azathioprine LN maintenance, KDIGO: 1.5–2 mg/kg/day [@kdigo-2024-ln]."),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "ok"),
    [
        ("In the MAINTAIN trial azathioprine was dosed at 2 mg/kg/day.", True),
        ("ALMS maintenance: azathioprine 2 mg/kg/day.", True),
        ("Per kdigo-2024-ln, azathioprine 1.5–2 mg/kg/day.", True),
        ("Per kdigo-2024-ln, azathioprine 2 mg/kg/day.", False),
        ("In the Euro-Lupus trial azathioprine was dosed at 2 mg/kg/day.", False),
    ],
)
def test_every_id_of_a_multi_citation_is_a_source(answer: str, ok: bool) -> None:
    assert (_failed(answer, LN_MAINTENANCE) == []) is ok


# --- the question's source, for a sentence that names none ---------------------------------------

TRANSPLANT_LABELS = [
    _p(1, "- Azathioprine for renal transplant, initial dose: 3–5 mg/kg/day from the day of "
          "transplantation [@imuran-label].\n"
          "- Azathioprine renal transplant maintenance: 1–3 mg/kg/day [@imuran-label].\n"
          "- Azathioprine for RA, starting dose: 50–100 mg once daily [@imuran-label]."),
    _p(2, "- Azathioprine transplant dose, UK SmPC: up to 5 mg/kg/day orally or intravenously on "
          "the first day [@imuran-smpc]."),
]  # fmt: skip
PER_SMPC = {"drug": "azathioprine", "question": "aza transplant dose on day one per SmPC"}


def test_another_sources_dose_is_misattributed_where_the_asked_source_gives_its_own() -> None:
    v = check_answer("The answer is: 3–5 mg/kg/day from the day of transplantation.",
                     TRANSPLANT_LABELS, limits=LIMITS, **PER_SMPC)  # type: ignore[arg-type]  # fmt: skip
    assert [c.claim.text for c in v.failed] == ["3–5 mg/kg/day"]
    assert "smpc gives '5 mg/kg/day'" in v.failed[0].reason


@pytest.mark.parametrize(
    ("answer", "question"),
    [
        # The question names no source: any passage's figure answers it.
        ("The answer is: 3–5 mg/kg/day.", "aza transplant dose on day one"),
        # The sentence names the source it quotes.
        ("The US label gives 3–5 mg/kg/day from the day of transplantation.", PER_SMPC["question"]),
        # The asked source's own figure.
        ("Up to 5 mg/kg/day on the first day.", PER_SMPC["question"]),
        # The SmPC gives no maintenance figure here, and no fixed-mg one: nothing contradicted.
        ("Maintenance is 1–3 mg/kg/day.", PER_SMPC["question"]),
        ("In RA, start 50–100 mg once daily.", "aza RA starting dose per SmPC"),
    ],
)
def test_a_dose_the_asked_source_gives_no_rival_for_passes(answer: str, question: str) -> None:
    assert _failed(answer, TRANSPLANT_LABELS, drug="azathioprine", question=question) == []


def test_the_asked_source_governs_only_the_kind_of_figure_asked() -> None:
    # A duration question naming KDIGO: a maintenance dose in passing is not "KDIGO's dose".
    ans = "Azathioprine LN maintenance after induction: 2 mg/kg/day."
    q = "minimum total duration of LN immunosuppression KDIGO"
    assert _failed(ans, LN_MAINTENANCE, drug="azathioprine", question=q) == []
    q = "azathioprine lupus nephritis maintenance dose per KDIGO"
    assert _failed(ans, LN_MAINTENANCE, drug="azathioprine", question=q) == ["2 mg/kg/day"]


def test_the_composers_evidence_tags_name_no_source() -> None:
    # "[secondary summary · draft]" is the kind of source a cited passage is, not a source named
    # for the sentence's figures; written out in the sentence, the same words are one.
    ans = (
        "Sources differ on LN maintenance: 2 mg/kg/day [1] [secondary summary · draft] vs "
        "1.5–2 mg/kg/day [1] [guideline · draft]."
    )
    assert _failed(ans, LN_MAINTENANCE) == []
    assert _failed("Per a secondary summary, 1.5–2 mg/kg/day [1].", LN_MAINTENANCE) == [
        "1.5–2 mg/kg/day"
    ]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Per ACR and the UK SmPC", ("smpc", "acr")),
        ("an acr of 30 mg/mmol; maintain the dose; Stevens-Johnson syndrome", ()),
        ("In the MAINTAIN trial (maintain-2010) and Euro-Lupus", ("maintain", "euro-lupus")),
        ("BSR/BHPR; the US mercaptopurine label; imuran-label", ("us label", "bsr")),
    ],
)
def test_source_names_and_the_words_that_are_not_them(text: str, names: tuple[str, ...]) -> None:
    from guardrails.statements import sources_in

    assert sources_in(text) == names


# --- a population frequency under a question naming a source ----------------------------------

TPMT_LABEL_FREQUENCIES = (
    "- TPMT, US label: about 0.3% of patients (1 in 300) carry two loss-of-function alleles and "
    "have little or no activity [@mercaptopurine-label].\n"
    "- TPMT, US label: about 10% of patients carry one loss-of-function allele "
    "[@mercaptopurine-label].\n"
)
TPMT_CPIC_POOR = (
    "- TPMT, CPIC: homozygous deficiency affects about 1 in 178 to 1 in 3736 people depending on "
    "ancestry [@cpic-2018].\n"
)
TPMT_CPIC_INTERMEDIATE = (
    "- TPMT, CPIC: heterozygous intermediate activity affects about 3–14% of people [@cpic-2018]."
)
TPMT_FREQUENCIES = [_p(1, TPMT_LABEL_FREQUENCIES + TPMT_CPIC_POOR + TPMT_CPIC_INTERMEDIATE)]
PER_CPIC = "CPIC: what fraction of people are TPMT heterozygous?"


@pytest.mark.parametrize(
    ("answer", "figures", "theirs"),
    [
        ("- 0.3% of patients (1 in 300) carry two loss-of-function alleles.",
         ["0.3%", "1 in 300"], "'1 in 178 to 1 in 3736' for tpmt:poor"),
        ("About 10% of patients carry one loss-of-function allele.", ["10%"],
         "'3–14%' for tpmt:intermediate"),
    ],
)  # fmt: skip
def test_another_sources_frequency_is_misattributed_where_the_asked_source_gives_its_own(
    answer: str, figures: list[str], theirs: str
) -> None:
    v = check_answer(
        answer, TPMT_FREQUENCIES, limits=LIMITS, drug="azathioprine", question=PER_CPIC
    )
    assert [c.claim.text for c in v.failed] == figures
    assert all(f"cpic gives {theirs}" in c.reason for c in v.failed)


@pytest.mark.parametrize(
    ("answer", "question", "cpic"),
    [
        # The asked source's own figures, each phenotype's.
        ("Homozygous deficiency affects about 1 in 178 to 1 in 3736 people.", PER_CPIC,
         TPMT_CPIC_POOR + TPMT_CPIC_INTERMEDIATE),
        ("About 3–14% of people are heterozygous, with intermediate activity.", PER_CPIC,
         TPMT_CPIC_POOR + TPMT_CPIC_INTERMEDIATE),
        # CPIC gives no frequency of two-allele carriers here: the label's is no rival of its
        # heterozygous one.
        ("- 0.3% of patients (1 in 300) carry two loss-of-function alleles.", PER_CPIC,
         TPMT_CPIC_INTERMEDIATE),
        # The question names no source: any passage's figure answers it.
        ("- 0.3% of patients (1 in 300) carry two loss-of-function alleles.",
         "what fraction of people have two non-functional TPMT alleles?",
         TPMT_CPIC_POOR + TPMT_CPIC_INTERMEDIATE),
        # The sentence names the source it quotes.
        ("The US label: 0.3% of patients (1 in 300) carry two loss-of-function alleles.", PER_CPIC,
         TPMT_CPIC_POOR + TPMT_CPIC_INTERMEDIATE),
    ],
)  # fmt: skip
def test_a_frequency_the_asked_source_gives_no_rival_for_passes(
    answer: str, question: str, cpic: str
) -> None:
    passages = [_p(1, TPMT_LABEL_FREQUENCIES + cpic)]
    assert _failed(answer, passages, drug="azathioprine", question=question) == []


@pytest.mark.parametrize(
    ("text", "phenotypes"),
    [
        ("TPMT: carries two loss-of-function alleles", {"poor"}),
        ("TPMT: one non-functional allele", {"intermediate"}),
        ("TPMT homozygous deficiency", {"poor"}),
        ("the allele was reported twice", set()),
    ],
)
def test_allele_counts_read_as_phenotypes(text: str, phenotypes: set[str]) -> None:
    from guardrails.statements import phenotype_values

    assert phenotype_values(text) == phenotypes
