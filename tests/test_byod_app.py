"""The app's sidebar upload: a real upload is saved under the data folder, indexed with the
corpus under the ingest lock, the index status shows the new generation, and a question about
the uploaded drug is answered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from ingest import run_ingest
from settings import Settings

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
TIMEOUT = 240
PROTOCOL = (
    "Vancomycin protocol\n\nDOSAGE AND ADMINISTRATION\nThe loading dose of vancomycin is "
    "25 mg/kg intravenously. Maintenance is 15 mg/kg every 12 hours.\n"
)


@pytest.fixture
def app(
    tmp_path: Path, tiny_corpus: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    data = tmp_path / "data"
    settings = Settings(data_dir=data, corpus_dir=tiny_corpus)
    # Indexed earlier from outside the corpus folder: an upload must not drop it.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "apixaban.txt").write_text(
        "Apixaban guide\n\nDOSING\nThe usual dose of apixaban is 5 mg twice daily.\n",
        encoding="utf-8",
    )
    run_ingest([tiny_corpus, earlier], settings.store, embedder, chunk_size=settings.chunk_size,
               data_dir=data, progress=False)  # fmt: skip
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data))
    monkeypatch.setenv("DOSEWISE_CORPUS_DIR", str(tiny_corpus))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    monkeypatch.setenv("DOSEWISE_LLM_BACKEND", "none")
    monkeypatch.setenv("DOSEWISE_CHROMA_MODE", "embedded")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(str(m.value) for m in at.sidebar.markdown)


def test_an_uploaded_protocol_is_indexed_and_answered(app: AppTest, tmp_path: Path) -> None:
    before = _sidebar_text(app)
    app.sidebar.file_uploader[0].set_value(
        [("vancomycin protocol.txt", PROTOCOL.encode(), "text/plain"),
         ("../../empty.txt", b"", "text/plain")]
    ).run()  # fmt: skip
    add = next(b for b in app.sidebar.button if b.label == "Add to the index")
    add.click().run()
    assert not app.exception, app.exception
    saved = tmp_path / "data" / "uploads" / "vancomycin-protocol.txt"
    assert saved.read_text(encoding="utf-8") == PROTOCOL
    assert not (tmp_path / "empty.txt").exists() and not (tmp_path / "data" / "empty.txt").exists()
    notes = [s.value for s in app.sidebar.success] + [w.value for w in app.sidebar.warning]
    assert any("Indexed 1 file(s)" in n and "generation 2" in n for n in notes), notes
    assert any("empty.txt: empty file" in n for n in notes), notes
    assert _sidebar_text(app) != before  # the document count went up
    assert "Documents: **5**" in _sidebar_text(app)  # 3 corpus, the earlier import, the upload
    app.chat_input[0].set_value("What is the loading dose of vancomycin?").run()
    assert not app.exception, app.exception
    text = "\n".join(str(m.value) for m in app.chat_message[-1].markdown)
    assert "25 mg/kg" in text and "vancomycin" in text.lower()
    app.chat_input[0].set_value("What is the usual dose of apixaban?").run()
    text = "\n".join(str(m.value) for m in app.chat_message[-1].markdown)
    assert "5 mg twice daily" in text  # the earlier import is still answered
