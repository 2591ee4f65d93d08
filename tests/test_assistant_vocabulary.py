"""Reading a question: drugs (brands, abbreviations, typos), indications, populations, intent."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.vocabulary import Vocabulary, answer_section, classify_intent, given_routes

CORPUS_DRUGS = [
    "azathioprine",
    "prednisone",
    "allopurinol",
    "mycophenolate mofetil",
    "methotrexate",
]
CORPUS_INDICATIONS = ["lupus nephritis", "systemic lupus erythematosus", "renal transplant"]


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.from_names(CORPUS_DRUGS, CORPUS_INDICATIONS)


@pytest.mark.parametrize(
    ("question", "drug"),
    [
        ("Imuran dose for lupus?", "azathioprine"),
        ("AZA in LN maintenance", "azathioprine"),
        ("How much azathiprine in lupus?", "azathioprine"),  # typo
        ("CellCept dose in lupus nephritis", "mycophenolate mofetil"),  # corpus's own name
        ("MTX weekly dose in RA", "methotrexate"),
        ("Zyloprim starting dose", "allopurinol"),
    ],
)
def test_brand_abbreviation_and_typo_resolve_to_corpus_drug(
    vocab: Vocabulary, question: str, drug: str
) -> None:
    assert vocab.facets(question).drug == drug


def test_drug_known_but_absent_from_corpus_is_uncovered_not_matched(vocab: Vocabulary) -> None:
    facets = vocab.facets("What is the tacrolimus dose after kidney transplant?")
    assert facets.drugs == ()
    assert facets.uncovered_drugs == ("tacrolimus",)


def test_off_topic_question_has_no_drug(vocab: Vocabulary) -> None:
    facets = vocab.facets("What is the capital of France?")
    assert facets.drugs == () and facets.uncovered_drugs == ()


def test_lupus_nephritis_is_preferred_over_generic_lupus(vocab: Vocabulary) -> None:
    assert vocab.facets("azathioprine in lupus nephritis").indications == ("lupus nephritis",)
    assert vocab.facets("azathioprine for SLE").indications == ("systemic lupus erythematosus",)


def test_autoimmune_diseases_is_broad_not_a_filter(vocab: Vocabulary) -> None:
    facets = vocab.facets(
        "What is the usage and dosage of azathioprine (Imuran) in treating autoimmune diseases "
        "and preventing organ rejection?"
    )
    assert facets.broad_indication
    assert facets.indications == ("transplant rejection",)
    assert facets.intent == "dose"


@pytest.mark.parametrize(
    ("question", "intent"),
    [
        ("What is the recommended dose of azathioprine for lupus?", "dose"),
        ("what if TPMT is intermediate?", "pharmacogenomics"),
        ("and in pregnancy?", "pregnancy"),
        ("Can I give it with allopurinol?", "interaction"),
        ("How often should blood counts be checked?", "monitoring"),
        ("How long should maintenance continue?", "duration"),
        ("Who should not take azathioprine?", "contraindication"),
        ("What are the side effects?", "adverse"),
        ("Tell me about azathioprine", "general"),
    ],
)
def test_intent_classification(question: str, intent: str) -> None:
    assert classify_intent(question) == intent


def test_phenotype_and_population_are_read(vocab: Vocabulary) -> None:
    facets = vocab.facets("Dose in a pregnant patient whose TPMT is intermediate?")
    assert facets.phenotypes == (("tpmt", "intermediate"),)
    assert facets.populations == ("pregnancy",)


def test_indication_matching_generic_lupus_covers_nephritis(vocab: Vocabulary) -> None:
    assert vocab.indication_matches("lupus nephritis", "systemic lupus erythematosus")
    assert vocab.indication_matches("renal transplant", "transplant rejection")
    assert not vocab.indication_matches("systemic lupus erythematosus", "lupus nephritis")


@pytest.mark.parametrize(
    ("path", "section"),
    [
        (("Title", "Dosing", "Intermediate metabolizer"), "Pharmacogenomics"),
        (("Title", "Monitoring", "Maintenance phase"), "Monitoring"),
        (("Title", "Dosing", "Lupus nephritis maintenance"), "Dosing"),
        (("Title", "Special populations", "Pregnancy"), "Special populations"),
        (("Azathioprine drug interactions", "Xanthine oxidase inhibitors"), "Interactions"),
        (("Title", "Outcomes"), "Background"),
    ],
)
def test_heading_path_maps_to_answer_section(path: tuple[str, ...], section: str) -> None:
    assert answer_section(path) == section


# -- questions that name no drug, routes, intents ------------------------------------------------
@pytest.fixture(scope="module")
def indexed() -> Vocabulary:
    from ingest.model import Chunk

    def chunk(doc: str, drugs: tuple[str, ...], inds: tuple[str, ...]) -> Chunk:
        return Chunk(id=f"{doc}-1", doc_id=doc, title=doc, section_path=(doc,), text="x",
                     start=0, end=1, content_hash="h", drugs=drugs, indications=inds)  # fmt: skip

    return Vocabulary.from_chunks(
        [
            chunk("aza-lupus", ("azathioprine", "prednisone"), ("lupus nephritis",)),
            chunk("mmf-ln", ("mycophenolate mofetil",), ("lupus nephritis",)),
            chunk("mmf-ln-2", ("mycophenolate mofetil",), ("lupus nephritis",)),
            chunk("mp-all", ("mercaptopurine",), ("acute lymphoblastic leukemia",)),
            chunk("pred", ("prednisone",), ("autoimmune hepatitis",)),
        ]
    )


@pytest.mark.parametrize(
    "question",
    ["How common is TPMT deficiency?", "6-MMP threshold for hepatotoxicity",
     "target 6-TGN level", "hepatosplenic T-cell lymphoma risk with thiopurines in IBD"],
)  # fmt: skip
def test_thiopurine_topic_without_a_drug_resolves_to_the_thiopurines(
    indexed: Vocabulary, question: str
) -> None:
    facets = indexed.resolve_topic(indexed.facets(question), question)
    assert facets.drugs == ("azathioprine", "mercaptopurine")
    assert facets.resolved_from


def test_indication_only_question_resolves_to_the_corpus_drugs_for_it(indexed: Vocabulary) -> None:
    q = "how long is lupus nephritis maintenance?"
    facets = indexed.resolve_topic(indexed.facets(q), q)
    # Documents whose subject is the drug, most documents first; companions are not subjects.
    assert facets.drugs == ("mycophenolate mofetil", "azathioprine")


def test_drug_class_without_a_drug_resolves_to_its_corpus_members(indexed: Vocabulary) -> None:
    q = "EULAR glucocorticoid maintenance ceiling in SLE?"
    assert indexed.resolve_topic(indexed.facets(q), q).drugs == ("prednisone",)


@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "anifrolumab dose for lupus nephritis",
     "warfarin dose in lupus nephritis", "amoxicillin for otitis media"],
)  # fmt: skip
def test_off_topic_or_uncovered_drug_question_is_not_resolved(
    indexed: Vocabulary, question: str
) -> None:
    assert indexed.resolve_topic(indexed.facets(question), question).drugs == ()


@pytest.mark.parametrize(
    ("question", "route"),
    [("prednisolone eye drops dose", "eye drops"), ("ophthalmic prednisolone", "eye drops"),
     ("hydrocortisone cream strength", "topical"), ("inhaled budesonide dose", "inhaled"),
     ("subcutaneous methotrexate dose", "subcutaneous")],
)  # fmt: skip
def test_route_or_formulation_in_the_question_is_a_facet(
    vocab: Vocabulary, question: str, route: str
) -> None:
    assert route in vocab.facets(question).routes


def test_plain_dose_question_names_no_route(vocab: Vocabulary) -> None:
    assert vocab.facets("azathioprine dose for class IV lupus nephritis").routes == ()


def test_route_is_uncovered_only_when_no_passage_names_it() -> None:
    from assistant.vocabulary import uncovered_routes

    oral = ["Prednisolone tablets 5 mg/day orally."]
    assert uncovered_routes(("eye drops",), oral) == ("eye drops",)
    assert uncovered_routes(("eye drops",), oral + ["Prednisolone 1% eye drops."]) == ()
    assert uncovered_routes(("injection",), ["Methotrexate subcutaneous 15 mg weekly."]) == ()


def test_allopurinol_as_the_only_drug_is_a_dose_question_not_an_interaction(
    vocab: Vocabulary,
) -> None:
    assert vocab.facets("allopurinol starting dose for gout").intent == "dose"
    assert vocab.facets("azathioprine with allopurinol").intent == "interaction"


@pytest.mark.parametrize(
    ("question", "intent"),
    [("LFT frequency on aza maintenance?", "monitoring"),
     ("target 6-TGN level for azathioprine", "monitoring"),
     ("How long before conception should mycophenolate be stopped?", "pregnancy")],
)  # fmt: skip
def test_monitoring_and_pregnancy_wordings_set_the_intent(question: str, intent: str) -> None:
    assert classify_intent(question) == intent


def test_a_route_named_for_another_drug_is_not_reported_as_this_drugs_route() -> None:
    texts = ["Prednisone after IV methylprednisolone pulses. Prednisolone 30 mg/day, tapered."]
    assert given_routes(texts, "prednisolone") == ()
    assert given_routes(texts + ["Prednisolone tablets by mouth."], "prednisolone") == ("oral",)
    assert given_routes(texts) == ("IV",)


def test_a_labels_indications_and_usage_section_is_background_not_dosing() -> None:
    assert answer_section(("Label: Examplix", "Indications and Usage")) == "Background"
    assert answer_section(("Label: Examplix", "Dosage and Administration")) == "Dosing"


def test_a_layout_row_may_hold_a_scoped_row_checked_like_the_others(tmp_path: Path) -> None:
    from assistant.vocabulary import _DATA, _load_clinical, clinical

    dose = clinical().layout("dose")
    assert dose.scoped is not None and dose.scoped.direct == dose.direct
    assert set(dose.scoped.lines) <= set(dose.lines)  # only what was asked: fewer sections
    bad = _DATA.read_text(encoding="utf-8").replace(
        'scoped = { duration = false, lines = { "Dosing" = 3 } }',
        'scoped = { lines = { "Dosage tables" = 3 } }',
        1,
    )
    path = tmp_path / "vocabulary.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ValueError, match="unknown sections"):
        _load_clinical(path)


def test_gfr_names_renal_impairment(vocab: Vocabulary) -> None:
    assert "renal impairment" in vocab.facets("mycophenolate dose when GFR is below 25").populations
