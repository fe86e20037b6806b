"""What an on-call engineer reads: no internal jargon, the exit codes in `ops --help`, help before action.

The requirement documents the project was built from are called "seeds" internally; an engineer
at 3 a.m. has never seen them, so no help text, output, runbook or price source may cite them.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ops import errors
from ops.cli import app
from ops.failover import usecase

pytestmark = pytest.mark.unit
runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

# Words that only make sense to someone who read the internal requirement documents.
JARGON = re.compile(r"\bseeds?\b|\bseed's\b|\bseed \d{3}\b|\btwelve (deployment )?items\b", re.IGNORECASE)


def _flatten(text: str) -> str:
    """Rich draws help in boxes and wraps it: drop the box glyphs and join the lines so a phrase
    split over two lines ("twelve" / "items") is still found."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _command_paths(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    # Typer vendors its own click: a group is whatever has sub-commands.
    subcommands: dict[str, object] = getattr(command, "commands", None) or {}
    for name, sub in subcommands.items():
        yield from _command_paths(sub, (*path, name))


def _all_paths() -> list[tuple[str, ...]]:
    return list(_command_paths(typer.main.get_command(app)))


def test_the_walk_reaches_nested_commands() -> None:
    # Guards the jargon test below against walking nothing: nested groups are visited.
    paths = _all_paths()
    assert ("failover", "status") in paths
    assert ("backup",) in paths and any(p[:1] == ("backup",) and len(p) == 2 for p in paths)


@pytest.mark.parametrize("path", _all_paths(), ids=lambda p: " ".join(("ops", *p)))
def test_no_jargon_in_any_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    text = _flatten(result.output)
    assert "Usage:" in text
    hits = [m.group(0) for m in JARGON.finditer(text)]
    assert not hits, f"`ops {' '.join(path)} --help` says {hits}: {text}"


@pytest.mark.parametrize("runbook", sorted((ROOT / "runbooks").glob("*.md")), ids=lambda p: p.name)
def test_no_jargon_in_runbooks(runbook: Path) -> None:
    lines = [f"{n}: {line}" for n, line in enumerate(runbook.read_text().splitlines(), 1) if JARGON.search(line)]
    # Also across line breaks (a wrapped "twelve\nitems").
    assert not lines and not JARGON.search(_flatten(runbook.read_text())), f"{runbook.name}: {lines}"


def test_price_sources_name_real_sources() -> None:
    def sources(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "source" and isinstance(value, str):
                    yield value
                yield from sources(value)
        elif isinstance(node, list):
            for item in node:
                yield from sources(item)

    found = list(sources(json.loads((ROOT / "stacks" / "data" / "prices.json").read_text())))
    assert found, "prices.json has no 'source' fields to check"
    assert not [s for s in found if JARGON.search(s)]


def _message_strings(path: Path) -> Iterator[tuple[int, str]]:
    """String literals that can reach a person (messages, help, output), i.e. every string
    constant except docstrings, which only developers read."""
    tree = ast.parse(path.read_text())
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_jargon_in_messages_of_ops_and_stacks() -> None:
    files = [*sorted((ROOT / "scripts" / "ops").rglob("*.py")), *sorted((ROOT / "stacks").rglob("*.py"))]
    hits = [f"{f.relative_to(ROOT)}:{line}: {text!r}" for f in files for line, text in _message_strings(f)
            if JARGON.search(text)]
    assert not hits, "\n".join(hits)


def test_failover_plan_names_what_it_tunes_without_jargon() -> None:
    # The latest-backup step is printed by `ops failover --plan`: it must say what it applies.
    steps = usecase.plan("latest-backup")
    assert not [s for s in steps if JARGON.search(s)], steps


def test_root_help_lists_every_exit_code_of_the_error_tree() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = _flatten(result.output)
    assert "Exit codes" in text, text
    table = text[text.index("Exit codes"):]
    codes = {0, *errors.EXIT_CODES.values()}
    # Each code of the tree (and 0) with words saying what it means, e.g. "6 lock held".
    missing = [c for c in sorted(codes) if not re.search(rf"(?<![\d.]){c} [a-z]", table)]
    assert not missing, f"exit codes {missing} missing from `ops --help`: {table}"
    # The drawn tree in errors.py and the help agree on the meaning of the refused/confirmation codes.
    assert re.search(rf"{errors.RefusedError.exit_code} refused", table)
    assert re.search(rf"{errors.ConfirmationRequired.exit_code} needs confirmation", table)


def test_failover_alone_shows_help_and_fails_over_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPS_SANDBOX_DIR", str(tmp_path))
    ran: list[object] = []
    monkeypatch.setattr(usecase, "failover", lambda *a, **k: ran.append((a, k)))
    result = runner.invoke(app, ["failover"])
    assert result.exit_code in (0, 2), result.output
    assert "Usage: ops failover" in _flatten(result.output)
    assert "--db" in result.output and "status" in result.output
    assert ran == []


def test_failover_with_arguments_still_runs(tmp_path, monkeypatch) -> None:
    # Showing help only for a bare `ops failover`: an explicit flag still acts (here: --plan).
    monkeypatch.setenv("OPS_SANDBOX_DIR", str(tmp_path))
    result = runner.invoke(app, ["failover", "--plan", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plan"][0] == "switch traffic to the standby"
