"""The import table in ARCHITECTURE.md, checked against the code.

Every import statement (module level or lazy, inside a function) of every package and top-level
module is read with `ast`; a row's "never imports" names must not appear, and for the rows whose
"may import" column is a closed list (stdlib plus named libraries), nothing else may. The table is
parsed from the document itself, so the document and the code cannot drift apart silently.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = (
    "guardrails",
    "ingest",
    "assistant",
    "evals",
    "bench",
    "api",
    "tokens",
    "settings",
    "cli",
    "app",
)
# Names in the table that stand for several import names.
ALIASES = {
    "langchain": ("langchain", "langchain_core", "langchain_chroma", "langchain_huggingface"),
    "drug-named-entity-recognition": ("drug_named_entity_recognition",),
    "every package of ours": ("guardrails", "ingest", "assistant", "evals", "bench", "api"),
}


def _table() -> list[tuple[tuple[str, ...], str, str]]:
    """(subjects, may-import cell, never-imports cell) per row of the import table."""
    text = (REPO / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        subjects = tuple(
            name.rstrip("/").removesuffix(".py") for name in re.findall(r"`([^`]+)`", cells[0])
        )
        rows.append((subjects, cells[1], cells[2]))
    return rows


def _names(cell: str) -> set[str]:
    cell = re.sub(r"\([^)]*\)", "", cell)  # "(data file only)", "(its data: ...)"
    names: set[str] = set()
    for item in (x.strip().strip("`").rstrip("/").removesuffix(".py") for x in cell.split(",")):
        for part in item.split("/"):
            part = part.strip()
            if part.startswith("-"):  # "langchain-core/-chroma/-huggingface"
                continue
            names.update(ALIASES.get(part, (part.replace("-", "_"),)))
    return {n for n in names if n}


def _files(subject: str) -> list[Path]:
    if (REPO / subject).is_dir():
        return sorted((REPO / subject).rglob("*.py"))
    return [REPO / f"{subject}.py"]


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, at module level) of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                (a.name.split(".")[0], node.lineno, id(node) in module_level) for a in node.names
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno, id(node) in module_level))
    return found


def test_the_table_covers_every_package_and_module_of_ours() -> None:
    subjects = {s for row in _table() for s in row[0]}
    assert subjects >= set(OURS) - {"settings"}, sorted(set(OURS) - subjects)


@pytest.mark.parametrize("subjects,may,never", _table(), ids=lambda v: str(v)[:40])
def test_no_package_imports_what_the_table_forbids(
    subjects: tuple[str, ...], may: str, never: str
) -> None:
    each_other = never.startswith("each other")
    forbidden = set(subjects) if each_other else _names(never)
    # "(cli may call evals/bench lazily; bench may use evals: ...)": (importer, imported) -> lazy only
    excepted = {
        (who, target): bool(lazy)
        for who, targets, lazy in re.findall(r"(\w+) may (?:call|use) ([\w/]+)( lazily)?", never)
        for target in targets.split("/")
    }
    closed = may.startswith("stdlib") and "everything" not in may
    allowed = _names(may) | set(sys.stdlib_module_names) | {"__future__"}
    wrong = []
    for subject in subjects:
        for path in _files(subject):
            for name, line, top in _imports(path):
                if name == subject:
                    continue
                where = f"{path.relative_to(REPO)}:{line} imports {name}"
                lazy_only = excepted.get((subject, name))
                allowed_here = lazy_only is not None and not (lazy_only and top)
                if name in forbidden and not allowed_here:
                    wrong.append(where)
                elif closed and name not in allowed and name not in (subject,):
                    wrong.append(where + " (not in its may-import list)")
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_a_lazy_import_inside_a_function(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\ndef f():\n    from assistant.chain import Assistant\n")
    assert ("assistant", 4, False) in _imports(probe)
    assert ("os", 1, True) in _imports(probe)
