"""Dose statements at ingest: extracted for every chunk, persisted with the index generation,
counted by role; and drug names from the lexicon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.lexicon import DrugLexicon
from ingest.model import StoreConfig
from ingest.pipeline import run_ingest
from ingest.statements import StatementStore


@pytest.fixture(scope="module")
def lexicon() -> DrugLexicon:
    return DrugLexicon()


def test_lexicon_knows_generics_brands_and_abbreviations(lexicon: DrugLexicon) -> None:
    text = "Glucophage, vancomycin, Keppra; MMF, AZA and 6-MP; CellCept or mycophenolate mofetil."
    assert lexicon.drugs_in(text) == (
        "metformin", "vancomycin", "levetiracetam", "mycophenolate", "azathioprine",
        "mercaptopurine",
    )  # fmt: skip
    assert lexicon.generic("Imuran") == "azathioprine"
    assert lexicon.generic("Eliquis") == "apixaban"


def test_lexicon_ignores_ordinary_dosing_words(lexicon: DrugLexicon) -> None:
    text = "The usual adult dose is 2 tablets daily with water; check blood counts and iron."
    assert lexicon.find(text) == []


def test_lexicon_spans_point_at_the_written_name(lexicon: DrugLexicon) -> None:
    text = "Start Imuran 50 mg."
    (m,) = lexicon.find(text)
    assert text[m.start : m.end] == "Imuran" and m.generic == "azathioprine"


def test_lexicon_without_the_package_still_has_our_table() -> None:
    ours = DrugLexicon(use_package=False)
    assert ours.drugs_in("MTX and vancomycin") == ("methotrexate",)


def _ingest(corpus: Path, tmp_path: Path, embedder: Any) -> Any:
    store = StoreConfig(path=str(tmp_path / "data" / "chroma"), collection="stmts")
    return run_ingest([corpus], store, embedder, chunk_size=400, data_dir=tmp_path / "data",
                      progress=False)  # fmt: skip


def test_ingest_persists_statements_per_generation(tiny_corpus: Path, tmp_path: Path, embedder: Any) -> None:
    _ingest(tiny_corpus, tmp_path, embedder)
    store = StatementStore.in_dir(tmp_path / "data")
    stats = store.stats()
    assert stats["statements"] > 5
    assert stats["by_role"].get("initial", 0) >= 1 and stats["by_role"].get("reduction to", 0) >= 1
    assert 0 <= stats["unknown_share"] < 0.5
    assert {"azathioprine", "methotrexate", "mercaptopurine"} <= set(store.drug_counts())
    assert stats["generation"] == "1"

    # Unchanged: nothing rewritten, same counts.
    before = store.role_counts()
    _ingest(tiny_corpus, tmp_path, embedder)
    assert store.role_counts() == before

    # A deleted file takes its statements with it; a changed one replaces them.
    (tiny_corpus / "mtx-ra.md").unlink()
    _ingest(tiny_corpus, tmp_path, embedder)
    assert "methotrexate" not in store.drug_counts()
    assert store.generation() == "2"


def test_statements_are_backfilled_for_an_index_built_before_them(
    tiny_corpus: Path, tmp_path: Path, embedder: Any
) -> None:
    _ingest(tiny_corpus, tmp_path, embedder)
    db = tmp_path / "data" / "statements.sqlite"
    total = StatementStore(db).stats()["statements"]
    db.unlink()
    report = _ingest(tiny_corpus, tmp_path, embedder)
    assert report.chunks_added == 0 and report.chunks_unchanged > 0
    assert StatementStore(db).stats()["statements"] == total


def test_a_missing_store_reads_as_empty(tmp_path: Path) -> None:
    store = StatementStore.in_dir(tmp_path / "nothing")
    assert store.stats()["statements"] == 0 and store.drug_counts() == {}
