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


def test_lexicon_cached_table_is_the_package_table_and_is_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.lexicon as lexicon_module

    if lexicon_module._package_file() is None:
        pytest.skip("drug-named-entity-recognition is not installed")
    first = DrugLexicon(cache_dir=tmp_path)
    first.prepare()
    (cached,) = tmp_path.glob("*.json")
    built = first._table

    # A second process reads the cached table, not the package file, and finds the same drugs.
    def no_package(path: Any) -> dict[str, str]:
        raise AssertionError("the package file was read although the cache holds the table")

    monkeypatch.setattr(lexicon_module, "_package_dictionary", no_package)
    second = DrugLexicon(cache_dir=tmp_path)
    assert second._table == built
    text = "Glucophage, vancomycin, Keppra; MMF and CellCept."
    assert second.find(text) == first.find(text) != []
    assert second.closest("Metroprolol") == first.closest("Metroprolol") == "metoprolol"

    # Another table of ours is another file: an old one is never read for it.
    other = DrugLexicon({"zzdrug": "vancomycin"}, cache_dir=tmp_path)
    monkeypatch.undo()
    assert other.generic("zzdrug") == "vancomycin"
    assert len(list(tmp_path.glob("*.json"))) == 2

    # A damaged file is made again from the package.
    cached.write_text("{not json", encoding="utf-8")
    assert DrugLexicon(cache_dir=tmp_path)._table == built


def test_lexicon_works_when_its_cache_folder_cannot_be_written(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")  # a file where the folder would be
    lexicon = DrugLexicon(cache_dir=blocked / "lexicon")
    lexicon.prepare()
    assert lexicon.generic("Imuran") == "azathioprine"


def _ingest(corpus: Path, tmp_path: Path, embedder: Any) -> Any:
    store = StoreConfig(path=str(tmp_path / "data" / "chroma"), collection="stmts")
    return run_ingest([corpus], store, embedder, chunk_size=400, data_dir=tmp_path / "data",
                      progress=False)  # fmt: skip


def test_ingest_persists_statements_per_generation(
    tiny_corpus: Path, tmp_path: Path, embedder: Any
) -> None:
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


# -- every document kind --------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _statements_of(paths: list[Path], labels: list[Path] = []) -> list[Any]:  # noqa: B006
    from ingest.chunking import chunk_document
    from ingest.loaders import load_corpus
    from ingest.statements import statements_for_chunk

    docs, skipped = load_corpus(paths, labels=labels)
    assert not skipped
    return [(c, st) for d in docs for c in chunk_document(d, 900) for st in statements_for_chunk(c)]


def test_label_statements_read_their_loinc_sections_and_table_rows() -> None:
    found = _statements_of([], [REPO / "tests" / "fixtures" / "spl" / "examplix_plr.xml"])
    by = {(c.section.split(" > ")[-1][:12], st.quantity.text): st for c, st in found}
    assert by[("2.2 Dosage M", "100 mg once daily")].role.value == "initial"  # "starting" row
    assert by[("2.2 Dosage M", "75 mg once daily")].role.value == "usual"  # a dose level
    assert by[("2.2.1 Liver ", "5")].role.value == "threshold"  # ALT above 5 × ULN
    renal = by[("2.3 Dosage i", "50 mg once daily")]
    assert "kidney:impaired" in renal.conditions
    assert all(st.evidence == "label" for _, st in found)
    trials = [st for c, st in found if "Clinical Trials" in c.section]
    assert trials and all(st.role.value == "outcome figure" for st in trials)


def test_imported_text_and_html_get_statements_as_local_documents(tmp_path: Path) -> None:
    (tmp_path / "protocol.txt").write_text(
        "Vancomycin protocol\n\nLoading dose: vancomycin 25 mg/kg IV once. Maintenance: 15 mg/kg "
        "every 12 hours. Do not exceed 2 g per dose.\n",
        encoding="utf-8",
    )
    (tmp_path / "gent.html").write_text(
        "<html><body><h1>Gentamicin</h1><h2>Dosing</h2><p>Start gentamicin at 5 mg/kg once daily."
        "</p><h2>Monitoring</h2><p>Check a trough level after 24 hours; target below 1 mg/L.</p>"
        "</body></html>",
        encoding="utf-8",
    )
    found = _statements_of([tmp_path])
    roles = {st.quantity.text: st.role.value for _, st in found}
    assert roles["25 mg/kg"] == "initial"
    assert roles["15 mg/kg every 12 hours"] == "maintenance"
    assert roles["2 g per dose"] == "maximum"
    assert roles["5 mg/kg once daily"] == "initial"
    assert all(st.evidence == "local document" for _, st in found)
