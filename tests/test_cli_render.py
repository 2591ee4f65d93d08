"""`dosewise ask` output: rich-rendered Markdown in a terminal, plain text in a pipe."""

from __future__ import annotations

from cli import answer_text

ANSWER = (
    "_Note: weight not given._\n\n"
    "**Azathioprine for lupus nephritis maintenance: 2 mg/kg/day [1].**\n\n"
    "## Dosing\n"
    "- Start at `50 mg/day` [2].\n"
    "- See [the label](https://example.org/label).\n"
)


def test_piped_answer_is_plain_text_with_every_number_and_marker_kept() -> None:
    text = answer_text(ANSWER, terminal=False)
    assert "**" not in text and "##" not in text and "`" not in text
    assert not any(line.startswith("_") for line in text.splitlines())
    for kept in (
        "2 mg/kg/day [1].",
        "Dosing",
        "- Start at 50 mg/day [2].",
        "Note: weight not given.",
    ):
        assert kept in text
    assert "the label (https://example.org/label)" in text


def test_plain_text_leaves_inner_underscores_and_list_stars_alone() -> None:
    text = answer_text("* 6_TGN stays\n* 2 * 3 mg stays\n", terminal=False)
    assert text == "* 6_TGN stays\n* 2 * 3 mg stays\n"


def test_terminal_answer_is_rendered_by_rich_without_markdown_markers() -> None:
    text = answer_text(ANSWER, terminal=True)
    assert "\x1b[" in text  # styled: bold first line, heading colour
    assert "**" not in text and "## Dosing" not in text
    assert "2 mg/kg/day [1]" in text and "Dosing" in text
