"""Reading a question: drugs (brands, abbreviations, typos), indications, populations, intent."""

from __future__ import annotations

import pytest

from assistant.vocabulary import Vocabulary, answer_section, classify_intent

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
