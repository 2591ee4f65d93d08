"""`dosewise check`: the guard on an answer file, exit 0 pass / 1 blocked / 2 usage error."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cli import app

PASSAGES = [
    {
        "n": 1,
        "text": "Azathioprine lupus nephritis maintenance: 2 mg/kg/day [@guide].",
        "drugs": ["azathioprine"],
    }
]


def _files(tmp_path: Path, answer: str) -> tuple[str, str]:
    a = tmp_path / "answer.md"
    a.write_text(answer, encoding="utf-8")
    p = tmp_path / "passages.json"
    p.write_text(json.dumps(PASSAGES), encoding="utf-8")
    return str(a), str(p)


def _check(tmp_path: Path, answer: str, *extra: str) -> tuple[int, str]:
    a, p = _files(tmp_path, answer)
    args = ["check", "--question", "azathioprine dose in lupus nephritis?", "--answer-file", a]
    res = CliRunner().invoke(app, [*args, "--passages", p, *extra])
    return res.exit_code, res.output


def test_supported_answer_passes_with_exit_0(tmp_path: Path) -> None:
    code, out = _check(tmp_path, "Maintenance: 2 mg/kg/day [1].", "--json")
    assert code == 0, out
    data = json.loads(out)
    assert data["passed"] and data["drug"] == "azathioprine"
    assert [c["status"] for c in data["claims"]] == ["supported"]
    (claim,) = data["claims"]
    # What the number doses, from the statement that supports it.
    assert claim["drug"] == "azathioprine" and claim["role"] == "maintenance"
    assert claim["statement_id"] and "lupus nephritis" in claim["statement"]


def test_figure_stated_in_another_role_is_blocked(tmp_path: Path) -> None:
    code, out = _check(tmp_path, "Starting dose: 2 mg/kg/day [1].", "--json")
    assert code == 1
    (claim,) = json.loads(out)["claims"]
    assert claim["status"] == "unsupported" and "maintenance" in claim["reason"]


def test_invented_number_is_blocked_with_exit_1(tmp_path: Path) -> None:
    code, out = _check(tmp_path, "Maintenance: 6 mg/kg/day [1].")
    assert code == 1
    assert "BLOCKED" in out and "6 mg/kg/day" in out


def test_missing_answer_file_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["check", "--question", "q", "--answer-file", str(tmp_path / "none.md")]
    )
    assert res.exit_code == 2


def test_malformed_passages_file_is_a_usage_error(tmp_path: Path) -> None:
    a, p = _files(tmp_path, "2 mg/kg/day [1].")
    Path(p).write_text('[{"n": 1}]', encoding="utf-8")
    res = CliRunner().invoke(app, ["check", "--question", "q", "--answer-file", a, "--passages", p])
    assert res.exit_code == 2
