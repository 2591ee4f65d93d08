"""The real thing: `streamlit run app.py` on loopback, driven by Debian's headless Chromium.

Asks the lupus question, checks that the answer, a citation marker, the Sources panel and the
verification badge are visible, saves artifacts/lupus_answer.png (and lupus_sources.png with the
Sources panel open) and writes the measured cold start (process start → first answer visible) to
artifacts/cold_start.json. Needs /usr/bin/chromium (CI installs it via .ci/run).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit_server import CHROMIUM, CHROMIUM_ARGS, free_port, stop, wait_healthy

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "artifacts"
LUPUS_Q = "What is the recommended dose of azathioprine for treating lupus?"


# The newest chat message's top has stayed in the first half of the viewport for a whole second
# (polled: Streamlit scrolls a chat to its bottom while the answer is laid out, and the app
# brings the answer's top back; on a loaded machine that takes a few seconds).
_NEW_ANSWER_STAYS_IN_VIEW = """() => {
  const all = document.querySelectorAll('[data-testid="stChatMessage"]');
  const top = all[all.length - 1].getBoundingClientRect().top;
  if (!(top > -8 && top < window.innerHeight / 2)) { window.__inViewSince = null; return false; }
  window.__inViewSince = window.__inViewSince || Date.now();
  return Date.now() - window.__inViewSince >= 1000;
}"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    if not CHROMIUM.exists():
        pytest.skip(
            "/usr/bin/chromium is missing (apt-get install chromium; CI does it in .ci/run)"
        )
    pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")
    from ingest import run_ingest
    from settings import Settings

    root = tmp_path_factory.mktemp("dosewise-browser")
    corpus = root / "corpus"
    real = sorted((REPO / "corpus").glob("*.md"))
    if real:
        shutil.copytree(REPO / "corpus", corpus)
    else:  # no real corpus yet: the two fixture documents of the AppTest suite
        from test_app import AZA_DOC, MTX_DOC

        corpus.mkdir()
        (corpus / "aza.md").write_text(AZA_DOC, encoding="utf-8")
        (corpus / "mtx.md").write_text(MTX_DOC, encoding="utf-8")
    data = root / "data"
    settings = Settings(data_dir=data, corpus_dir=corpus)
    run_ingest(
        sorted(corpus.glob("*.md")),
        settings.store,
        embedder,
        chunk_size=settings.chunk_size,
        data_dir=data,
        progress=False,
    )
    return data


@pytest.fixture(scope="module")
def server(data_dir: Path) -> Iterator[tuple[str, float]]:
    """(base URL, process start time) of a fresh `streamlit run`."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        DOSEWISE_DATA_DIR=str(data_dir),
        DOSEWISE_AUDIT_LOG=str(data_dir / "audit.jsonl"),
        DOSEWISE_LLM_BACKEND="none",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--server.headless", "true",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc, timeout_s=120)
        yield f"http://127.0.0.1:{port}/", started
    finally:
        stop(proc, timeout_s=20)


@contextlib.contextmanager
def _chat_page(url: str) -> Iterator[Any]:
    """A fresh 1280x1000 headless Chromium page on the app, its chat box on screen."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=180_000)
            yield page
        finally:
            browser.close()


def test_lupus_question_in_a_real_browser_shows_answer_citation_and_badge(
    server: tuple[str, float],
) -> None:
    from playwright.sync_api import expect

    url, started = server
    with _chat_page(url) as page:
        box = page.get_by_test_id("stChatInputTextArea")
        first_screen = time.monotonic() - started
        page.screenshot(path=str(ARTIFACTS / "first_screen.png"))
        disclaimer = page.get_by_text("not a substitute for clinical judgement").first
        expect(disclaimer).to_be_visible()
        box.fill(LUPUS_Q)
        asked = time.monotonic()
        box.press("Enter")

        badge = page.get_by_text("numbers verified").first
        expect(badge).to_be_visible(timeout=180_000)
        cold_start = time.monotonic() - started
        answer_s = time.monotonic() - asked

        answer = page.get_by_test_id("stChatMessage").last
        # The new answer's first (bold) line is in view, not the bottom of a long answer.
        page.wait_for_function(_NEW_ANSWER_STAYS_IN_VIEW, timeout=20_000, polling=100)
        page.screenshot(path=str(ARTIFACTS / "lupus_answer_viewport.png"))
        expect(answer).to_contain_text("azathioprine", ignore_case=True)
        expect(answer).to_contain_text("mg/kg/day")
        expect(answer).to_contain_text("[1]")
        sources = answer.get_by_text("Sources (", exact=False).first
        expect(sources).to_be_visible()
        # Streamlit scrolls inside its own container, so a "full page" shot is just the
        # viewport: make the viewport tall enough for the whole answer instead.
        page.set_viewport_size({"width": 1280, "height": 2000})
        page.get_by_test_id("stChatMessage").first.evaluate(
            "e => e.scrollIntoView({block: 'start'})"
        )
        page.wait_for_timeout(500)  # let the icon font and scroll settle before the shot
        page.screenshot(path=str(ARTIFACTS / "lupus_answer.png"))

        sources.click()
        expect(answer.get_by_text("Reference:", exact=False).first).to_be_visible()
        sources.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "lupus_sources.png"))
    (ARTIFACTS / "cold_start.json").write_text(
        json.dumps(
            {
                "first_screen_s": round(first_screen, 1),
                "first_answer_s": round(cold_start, 1),
                "answer_after_enter_s": round(answer_s, 1),
            }
        ),
        encoding="utf-8",
    )
    print(
        f"cold start: first screen {first_screen:.1f} s, first answer {cold_start:.1f} s "
        f"({answer_s:.1f} s after Enter)"
    )


USAGE_Q = (
    "What is the usage and dosage of Azothioprine (Imuran) in treating autoimmune diseases and "
    "preventing organ rejection?"
)


def test_usage_question_answer_opens_at_its_first_line(server: tuple[str, float]) -> None:
    """The longer reference answer: after Enter the clinician sees its bold first line, not
    the follow-up buttons at its end. Saves artifacts/usage_answer*.png."""
    from playwright.sync_api import expect

    url, _ = server
    with _chat_page(url) as page:
        box = page.get_by_test_id("stChatInputTextArea")
        box.fill(USAGE_Q)
        box.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        expect(answer.get_by_text("numbers verified").first).to_be_visible(timeout=180_000)
        page.wait_for_function(_NEW_ANSWER_STAYS_IN_VIEW, timeout=20_000, polling=100)
        expect(answer.locator("strong").first).to_be_in_viewport()
        page.screenshot(path=str(ARTIFACTS / "usage_answer_viewport.png"))
        page.set_viewport_size({"width": 1280, "height": 3200})
        answer.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "usage_answer.png"))
