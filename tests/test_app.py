"""The Streamlit chat (app.py) driven through streamlit.testing.v1.AppTest on a real small index.

The index is built once per session from two fixture documents written below (our own words,
figures cited to their primary sources); the embedding model is conftest's session ``embedder``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from assistant.model import AnswerResult, Citation, ClaimView
from settings import Settings

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "app.py"
TIMEOUT = 240
LUPUS_Q = "What is the recommended dose of azathioprine for treating lupus?"

AZA_DOC = """\
---
id: aza-lupus-fixture
title: Azathioprine in lupus (test fixture)
drugs: [azathioprine]
indications: [lupus nephritis, systemic lupus erythematosus]
audience: clinician
last_reviewed: 2026-11-01
review_status: draft
sources:
  - id: kdigo-2024-ln
    kind: guideline
    reference: "KDIGO 2024 Clinical Practice Guideline for the Management of Lupus Nephritis. Kidney Int. 2024;105(1S):S1-S69."
  - id: eular-2016-pregnancy
    kind: guideline
    reference: "Gotestam Skorpen C, et al. The EULAR points to consider for use of antirheumatic drugs before pregnancy, and during pregnancy and lactation. Ann Rheum Dis. 2016;75(5):795-810."
  - id: imuran-label
    kind: label
    reference: "Imuran (azathioprine) tablets, US prescribing information. Sebela Pharmaceuticals; 2018."
  - id: cpic-2018
    kind: cpic
    reference: "Relling MV, et al. Clinical Pharmacogenetics Implementation Consortium Guideline for Thiopurine Dosing Based on TPMT and NUDT15 Genotypes: 2018 Update. Clin Pharmacol Ther. 2019;105(5):1095-1105."
---
# Azathioprine in lupus

## Dosing
For maintenance therapy of lupus nephritis after induction, azathioprine is given at
2 mg/kg/day [@kdigo-2024-ln]. The usual adult daily dose is 100-200 mg/day [@kdigo-2024-ln].

## Pregnancy
Azathioprine may be continued during pregnancy at doses up to 2 mg/kg/day [@eular-2016-pregnancy].

## Interactions
With allopurinol, reduce the azathioprine dose to 25% of the usual dose [@imuran-label].

## Pharmacogenomics
For TPMT poor metabolizers with a non-malignant condition, choose an alternative agent to azathioprine [@cpic-2018].
"""

MTX_DOC = """\
---
id: mtx-ra-fixture
title: Methotrexate in rheumatoid arthritis (test fixture)
drugs: [methotrexate]
indications: [rheumatoid arthritis]
audience: clinician
last_reviewed: 2026-10-15
review_status: draft
sources:
  - id: acr-2021-ra
    kind: guideline
    reference: "Fraenkel L, et al. 2021 American College of Rheumatology Guideline for the Treatment of Rheumatoid Arthritis. Arthritis Care Res. 2021;73(7):924-939."
  - id: eular-2016-pregnancy
    kind: guideline
    reference: "Gotestam Skorpen C, et al. The EULAR points to consider for use of antirheumatic drugs before pregnancy, and during pregnancy and lactation. Ann Rheum Dis. 2016;75(5):795-810."
---
# Methotrexate in rheumatoid arthritis

## Dosing
Oral methotrexate is taken once weekly, 15-25 mg/week [@acr-2021-ra].

## Pregnancy
Methotrexate is contraindicated in pregnancy; stop it 3 months before conception [@eular-2016-pregnancy].
"""


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    from ingest import run_ingest

    root = tmp_path_factory.mktemp("dosewise-app")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "aza-lupus-fixture.md").write_text(AZA_DOC, encoding="utf-8")
    (corpus / "mtx-ra-fixture.md").write_text(MTX_DOC, encoding="utf-8")
    data = root / "data"
    settings = Settings(data_dir=data, corpus_dir=corpus)
    report = run_ingest(
        sorted(corpus.glob("*.md")),
        settings.store,
        embedder,
        chunk_size=settings.chunk_size,
        data_dir=data,
        progress=False,
    )
    assert not report.skipped, report.skipped
    return data


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


@pytest.fixture
def app(data_dir: Path, audit_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(audit_path))
    monkeypatch.setenv("DOSEWISE_LLM_BACKEND", "none")
    monkeypatch.setenv("DOSEWISE_CHROMA_MODE", "embedded")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def last_message(at: AppTest) -> dict[str, Any]:
    return at.session_state["messages"][-1]


def texts(elements: Any) -> list[str]:
    return [e.value for e in elements]


def all_markdown(at: AppTest) -> str:
    return "\n".join(texts(at.markdown))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_lupus_question_renders_answer_with_citations_badge_and_sources(
    app: AppTest, no_network: list[str]
) -> None:
    ask(app, LUPUS_Q)
    result: AnswerResult = last_message(app)["result"]
    assert result.status == "verified"
    body = all_markdown(app)
    assert "2 mg/kg/day" in body
    assert "[1]" in body
    assert f"{len(result.claims)} of {len(result.claims)} numbers verified" in body
    labels = [e.label for e in app.expander]
    assert any(label.startswith("Sources (") for label in labels)
    assert any(label.startswith("Numbers (") for label in labels)
    # the Sources panel shows the full primary reference and a highlighted excerpt
    assert "KDIGO 2024 Clinical Practice Guideline" in body.replace("\\", "")
    assert ":orange-background[**" in body


def test_follow_up_question_stays_on_the_same_drug(app: AppTest) -> None:
    ask(app, LUPUS_Q)
    ask(app, "and in pregnancy?")
    result: AnswerResult = last_message(app)["result"]
    assert result.drug == "azathioprine"
    assert result.status == "verified"
    assert {c.doc_id for c in result.citations} == {"aza-lupus-fixture"}
    assert "2 mg/kg/day" in result.answer
    # both turns stay on screen
    assert len(app.chat_message) == 4


def test_patient_weight_produces_a_derived_daily_dose(app: AppTest) -> None:
    app.sidebar.number_input[0].set_value(72).run()
    assert not app.sidebar.error
    ask(app, LUPUS_Q)
    result: AnswerResult = last_message(app)["result"]
    assert "For this patient" in result.answer
    assert "144 mg/day" in result.answer
    derived = [c for c in result.claims if c.status == "derived" and "144" in c.text]
    assert derived and "72" in derived[0].derivation
    numbers = next(e for e in app.expander if e.label.startswith("Numbers ("))
    numbers_text = "\n".join(texts(numbers.markdown))
    assert "derived" in numbers_text and "72" in numbers_text
    # Each supported number says what it doses, as its source states it.
    supported = [c for c in result.claims if c.status == "supported" and c.statement]
    assert supported and all(c.role and c.drug == "azathioprine" for c in supported)
    assert f"{supported[0].role} dose" in numbers_text and "guideline" in numbers_text


def test_example_and_follow_up_buttons_ask_their_question(app: AppTest) -> None:
    example = next(b for b in app.button if b.key == "example-0")
    example.click().run()
    assert not app.exception
    assert app.session_state["messages"][0]["content"] == example.label
    first: AnswerResult = last_message(app)["result"]
    assert first.status == "verified" and first.followups
    followup = next(b for b in app.button if b.key == "followup-1-0")
    followup.click().run()
    assert not app.exception
    assert app.session_state["messages"][2]["content"] == first.followups[0]
    assert len(app.session_state["messages"]) == 4


@pytest.mark.parametrize("weight", [-5, 0, 900])
def test_impossible_weight_shows_a_message_and_is_not_used(app: AppTest, weight: int) -> None:
    app.sidebar.number_input[0].set_value(weight).run()
    assert not app.exception
    assert app.sidebar.error, "an impossible weight must be explained in the sidebar"
    ask(app, LUPUS_Q)
    assert "For this patient" not in last_message(app)["result"].answer


def test_blocked_llm_draft_shows_the_deterministic_answer_and_names_the_failed_number(
    data_dir: Path, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    from assistant import Assistant

    invented = (
        "**Azathioprine 7 mg/kg/day [1] for lupus nephritis maintenance.**\n\n"
        "### Dosing\n- 7 mg/kg/day [1]"
    )

    def factory(*, index: Any, embedder: Any, limits: Any, settings: Any) -> Any:
        llm = FakeListChatModel(responses=[invented] * 4)
        return Assistant(index, embedder, limits, llm=llm, k=settings.retrieval_k)

    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(audit_path))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["_assistant_factory"] = factory
    at.run()
    ask(at, LUPUS_Q)
    result: AnswerResult = last_message(at)["result"]
    assert result.claims and all(c.text != "7 mg/kg/day" for c in result.claims)
    assert any(c.text == "2 mg/kg/day" and c.status == "supported" for c in result.claims)
    assert "7 mg/kg/day" in result.note
    # the note is its own warning; the displayed answer is the deterministic one
    assert any("7 mg/kg/day" in w for w in texts(at.warning)), texts(at.warning)
    answer_md = [m for m in texts(at.markdown) if "2 mg/kg/day [1]" in m]
    assert answer_md and not any("7 mg/kg/day" in m for m in answer_md)


def test_thumbs_and_comment_are_stored_in_the_audit_file(app: AppTest, audit_path: Path) -> None:
    ask(app, LUPUS_Q)
    record_id = last_message(app)["record_id"]
    assert record_id
    app.feedback[0].set_value(0).run()  # thumbs down
    app.text_input[0].set_value("dose looks low for my patient")
    next(b for b in app.button if b.label == "Send comment").click().run()
    lines = read_jsonl(audit_path)
    blob = [json.dumps(line) for line in lines]
    feedback = [b for b in blob if record_id in b and "dose looks low" in b]
    assert feedback, blob
    assert any(LUPUS_Q in b for b in blob), "the answer itself must be in the audit log"


@pytest.mark.parametrize("question", ["   ", "x" * 4001, "?!?! 123 ..."])
def test_empty_huge_or_garbage_input_gets_a_friendly_message(app: AppTest, question: str) -> None:
    ask(app, question)
    result: AnswerResult = last_message(app)["result"]
    assert result.status == "rejected"
    assert texts(app.info), "the rejection must be shown as a message"
    assert not [e for e in app.expander if e.label.startswith("Sources (")]


def test_missing_index_says_to_run_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert any("dosewise ingest" in e.value for e in at.error)
    assert not at.chat_input


def test_audit_failure_warns_but_still_shows_the_answer(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the audit directory should be", encoding="utf-8")
    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(blocker / "audit.jsonl"))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    ask(at, LUPUS_Q)
    assert last_message(at)["result"].status == "verified"
    assert "2 mg/kg/day" in all_markdown(at)
    assert any("audit" in w.lower() for w in texts(at.warning))


def test_corpus_and_llm_text_cannot_inject_html(
    data_dir: Path, audit_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    result = AnswerResult(
        status="verified",
        answer=f"**Dose 2 mg/kg/day [1]** {evil} ![t](http://example.invalid/p.png)",
        summary="",
        citations=(
            Citation(
                n=1,
                doc_id="d",
                title=f"Title {evil}",
                section="Dosing",
                excerpt=f"Give 2 mg/kg/day {evil} $x$",
                source_reference="Ref",
                highlights=((5, 16),),
            ),
        ),
        claims=(ClaimView(text="2 mg/kg/day", status="supported", citation_n=1, span=(7, 18)),),
        question="q",
    )

    class FakeAssistant:
        def ask(self, question: str, **_: Any) -> AnswerResult:
            return result

    monkeypatch.setenv("DOSEWISE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DOSEWISE_AUDIT_LOG", str(audit_path))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["_assistant_factory"] = lambda **_: FakeAssistant()
    at.run()
    ask(at, "What is the dose of azathioprine?")
    rendered = all_markdown(at)
    # "\\<" renders as a literal "<": what must never reach the page is an unescaped one
    assert not re.search(r"(?<!\\)<", rendered), rendered
    assert "http://example.invalid" not in rendered
    assert ":orange-background[**2 mg/kg/day**]" in rendered.replace("\\", "")
    assert "unsafe_allow_html" not in APP.read_text(encoding="utf-8")


def test_a_conversation_that_switches_to_an_uncovered_drug_abstains_naming_it(app: AppTest) -> None:
    ask(app, LUPUS_Q)
    assert last_message(app)["result"].status == "verified"
    ask(app, "And what about vancomycin?")
    result: AnswerResult = last_message(app)["result"]
    assert result.status == "abstained"
    assert "vancomycin" in result.answer and "mg/kg/day" not in result.answer
    # The follow-up after it stays on the uncovered drug, never the earlier azathioprine.
    ask(app, "and in children?")
    follow: AnswerResult = last_message(app)["result"]
    assert follow.status == "abstained" and "vancomycin" in follow.answer


def test_a_tpmt_poor_patient_gets_the_warning_first(app: AppTest) -> None:
    app.sidebar.selectbox[0].set_value("poor").run()
    assert not app.sidebar.error
    ask(app, LUPUS_Q)
    result: AnswerResult = last_message(app)["result"]
    assert result.status == "verified"
    first = result.answer.split("\n", 1)[0]
    assert first.startswith("**For this patient (TPMT poor metaboliser):")
    assert "alternative agent" in first
