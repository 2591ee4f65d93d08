"""Cold paths load only what they need: `check --passages`, `stats` and `--help` never import
torch or sentence-transformers; `ask` does not either once the query model is exported; and
`dosewise ingest` leaves the lexical index and vocabulary built, so the first question after an
import reads them instead of every chunk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli import app

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sentence_transformers", "transformers")
# The CLI as `dosewise` runs it; the last stderr line names the heavy modules it imported.
RUN = f"""
import atexit, sys
atexit.register(lambda: print("HEAVY=" + ",".join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr))
from cli import app
sys.exit(app())
"""


@pytest.fixture
def env(
    tmp_path: Path, tiny_corpus: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)
    values = {
        "DOSEWISE_DATA_DIR": str(tmp_path / "data"),
        "DOSEWISE_CORPUS_DIR": str(tiny_corpus),
        "DOSEWISE_COLLECTION": "coldtest",
        "DOSEWISE_EMBEDDING_MODEL_PATH": embedder.model_path,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def _run(
    args: list[str], env: dict[str, str], cwd: Path
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    full = dict(
        os.environ,
        **env,
        PYTHONPATH=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    proc = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in proc.stderr.splitlines() if line.startswith("HEAVY=")]
    assert lines, proc.stderr[-2000:]
    return proc, [m for m in lines[-1][len("HEAVY=") :].split(",") if m]


def _ingest(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["ingest", "--no-progress"])
    assert result.exit_code == 0, result.output


def test_check_with_passages_imports_no_model(env: dict[str, str], tmp_path: Path) -> None:
    passages = tmp_path / "passages.json"
    passages.write_text(
        json.dumps([{"n": 1, "text": "Azathioprine 2 mg/kg/day orally [@x]."}]), encoding="utf-8"
    )
    answer = tmp_path / "answer.md"
    answer.write_text("Give 2 mg/kg/day [1].\n", encoding="utf-8")
    proc, heavy = _run(
        [
            "check",
            "--question",
            "aza dose?",
            "--answer-file",
            str(answer),
            "--passages",
            str(passages),
        ],
        env,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout
    assert heavy == []


def test_stats_and_help_import_no_model(env: dict[str, str], tmp_path: Path) -> None:
    _ingest(env)
    proc, heavy = _run(["stats"], env, tmp_path)
    assert proc.returncode == 0 and "documents: 3" in proc.stdout, proc.stdout + proc.stderr
    assert heavy == []
    proc, heavy = _run(["--help"], env, tmp_path)
    assert proc.returncode == 0 and "ingest" in proc.stdout
    assert heavy == []


@pytest.mark.slow  # a fresh process ingests and answers
def test_ask_after_ingest_answers_without_torch(env: dict[str, str], tmp_path: Path) -> None:
    _ingest(env)  # exports the query model (once per model) and prepares the lexical index
    proc, heavy = _run(
        ["ask", "What is the azathioprine dose in lupus nephritis?", "--json", "--no-audit"],
        env,
        tmp_path,
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert json.loads(proc.stdout)["status"] in ("verified", "abstained", "blocked")
    assert heavy == []


def test_ingest_builds_the_lexical_index_and_vocabulary(env: dict[str, str], embedder: Any) -> None:
    from assistant.retrieval import HybridRetriever
    from ingest.store import open_index
    from settings import Settings

    _ingest(env)
    settings = Settings()
    index = open_index(settings.store, embedder)
    folder = settings.data_dir / "bm25" / str(index.generation)
    assert (folder / "chunk_ids.json").is_file() and (folder / "vocabulary.json").is_file()
    ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
    assert sorted(ids) == sorted(c.id for c in index.all_chunks())

    calls = {"all_chunks": 0}
    real_all_chunks = index.all_chunks

    def counting_all_chunks() -> Any:
        calls["all_chunks"] += 1
        return real_all_chunks()

    index.all_chunks = counting_all_chunks  # type: ignore[method-assign]
    retriever = HybridRetriever(index, embedder, data_dir=settings.data_dir)
    vocabulary = retriever.vocabulary()
    assert "azathioprine" in vocabulary.drugs
    assert calls["all_chunks"] == 0  # loaded, not rebuilt from every chunk


def test_the_answer_path_imports_no_langchain_runnables() -> None:
    """An ask without an LLM composes deterministically: LangChain's runnable, chat-model and
    text-splitter machinery (~1.5 s of imports: tracers, callbacks, langsmith's schemas) loads
    only for the LLM path, ``as_runnable``, ``as_retriever``, ``as_langchain`` and chunking."""
    code = (
        "import sys\n"
        "import assistant.chain, assistant.retrieval, assistant.compose\n"
        "import ingest.embeddings, ingest.store\n"
        "print(','.join(m for m in ('langchain_core.runnables.base',"
        " 'langchain_core.runnables.config', 'langchain_core.language_models.chat_models',"
        " 'langsmith', 'langchain_text_splitters') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ""
