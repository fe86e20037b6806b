"""The one confirmation policy (ops/confirm.py): every command of the Typer app is declared in
`confirm.COMMANDS`, and every command declared as changing an environment takes `--plan` and `--yes`
and goes through `confirm.gate`. A new command that is not declared, or a changing one that skips
the gate, fails here. Then the gate's behaviour, and one command end to end on production's shape."""

from __future__ import annotations

import ast
import inspect
import io
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ops import confirm
from ops.cli import app
from ops.errors import ConfirmationRequired
from tests.betterstack_fake import FakeBetterStack
from tests.drills.lab import serve_httpx_handler

pytestmark = pytest.mark.unit


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """Every command a person can run, by the words typed after `ops` (a group that runs something
    itself, like `ops failover`, counts as a command too)."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(path), command
        return
    if path and command.callback is not None:
        yield " ".join(path), command
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(typer.main.get_command(app)))


def _calls_gate(func: Any) -> bool:
    """Does the command's own code (nested functions included) call `confirm.gate`?"""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(func))))
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "gate"
               and isinstance(node.func.value, ast.Name) and node.func.value.id == "confirm"
               for node in ast.walk(tree))


def test_every_command_is_declared_once_as_changing_adding_reading_or_sandbox() -> None:
    undeclared = sorted(set(COMMANDS) - set(confirm.COMMANDS))
    assert not undeclared, f"declare these in ops/confirm.py COMMANDS (and apply the policy if they change " \
                           f"anything): {undeclared}"
    stale = sorted(set(confirm.COMMANDS) - set(COMMANDS))
    assert not stale, f"ops/confirm.py COMMANDS names commands that do not exist: {stale}"


@pytest.mark.parametrize("path", sorted(p for p, k in confirm.COMMANDS.items() if k is confirm.Kind.CHANGES))
def test_every_changing_command_has_plan_and_yes_and_goes_through_the_gate(path: str) -> None:
    command = COMMANDS[path]
    options = {opt for param in command.params for opt in param.opts}
    wanted = {"--plan", "--yes", "-y", "--env"}
    assert wanted <= options, f"ops {path}: missing {sorted(wanted - options)}"
    plan = next(p for p in command.params if "--plan" in p.opts)
    yes = next(p for p in command.params if "--yes" in p.opts)
    # One idiom, one wording: the options are the policy's own, not look-alikes with other meanings.
    assert plan.help == confirm.PLAN_OPTION.help and yes.help == confirm.YES_OPTION.help, path
    assert _calls_gate(command.callback), f"ops {path} changes an environment but never calls confirm.gate"


@pytest.mark.parametrize("path", sorted(p for p, k in confirm.COMMANDS.items() if k is confirm.Kind.SANDBOX))
def test_sandbox_commands_cannot_reach_an_environment(path: str) -> None:
    assert not any("--env" in p.opts for p in COMMANDS[path].params), f"ops {path} takes --env: it is not " \
                                                                       "sandbox-only, declare it as what it is"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_gate_shows_the_plan_first_and_stops_on_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: a prompt would be exit 4
    assert confirm.gate("production", True, "x", lambda: shown.append("plan"), plan_only=True, yes=False) is False
    assert confirm.gate("staging", False, "x", lambda: shown.append("plan"), plan_only=False, yes=False) is True
    assert confirm.gate("production", True, "x", lambda: shown.append("plan"), plan_only=False, yes=True) is True
    assert shown == ["plan", "plan", "plan"]


def test_the_gate_on_production_asks_for_the_name_or_refuses_without_a_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr("sys.stdin", io.StringIO("production\n"))  # a pipe is not a person
    with pytest.raises(ConfirmationRequired, match="no terminal") as refused:
        confirm.gate("production", True, "deploy v2", lambda: shown.append("plan"), plan_only=False, yes=False)
    assert refused.value.exit_code == 4 and shown == ["plan"]  # shown before the refusal
    monkeypatch.setattr("sys.stdin", _Terminal("prod\n"))
    with pytest.raises(ConfirmationRequired, match="not confirmed"):
        confirm.gate("production", True, "deploy v2", lambda: None, plan_only=False, yes=False)
    monkeypatch.setattr("sys.stdin", _Terminal("production\n"))
    assert confirm.gate("production", True, "deploy v2", lambda: None, plan_only=False, yes=False) is True


def test_monitors_resume_on_production_plans_refuses_then_acts_with_yes(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """One command end to end through the policy, with the provider faked at its HTTP transport."""
    fake = FakeBetterStack()
    ids = {host: fake.add("monitors", {"url": f"https://{host}.example/health", "paused": True})["id"]
           for host in ("app", "api")}
    outputs = tmp_path / "production.json"
    outputs.write_text(json.dumps({"environment": "production", "public_url": "https://x.invalid", "servers": [],
                                   "r2_endpoint": "https://r2", "buckets": {"backups": "b"}, "monitor_ids": ids,
                                   "connection_strings": {"main": {"direct": "postgresql://o@h/db"}}}))
    monkeypatch.setenv("OPS_STACK_OUTPUTS_PRODUCTION", str(outputs))
    monkeypatch.setenv("BETTERSTACK_API_TOKEN", "t")
    runner = CliRunner()

    def paused() -> list[bool]:
        return [bool(fake.items[i]["attributes"]["paused"]) for i in ids.values()]

    with serve_httpx_handler(fake) as url:
        monkeypatch.setenv("OPS_BETTERSTACK_API_URL", url + "/api/v2")
        planned = runner.invoke(app, ["monitors", "resume", "--env", "production", "--plan", "--json"])
        assert planned.exit_code == 0, planned.output
        assert json.loads(planned.stdout)["applied"] is False and len(json.loads(planned.stdout)["plan"]) == 2
        assert paused() == [True, True]
        refused = runner.invoke(app, ["monitors", "resume", "--env", "production", "--json"])
        assert refused.exit_code == 4, refused.output
        assert "no terminal" in refused.output and "--yes" in refused.output and refused.stdout.strip() == ""
        assert paused() == [True, True]
        done = runner.invoke(app, ["monitors", "resume", "--env", "production", "--yes", "--json"])
        assert done.exit_code == 0, done.output
    assert paused() == [False, False]


def test_every_change_a_workflow_makes_is_confirmed_with_yes() -> None:
    """CI has no terminal: a changing command there without --yes would exit 4 on production."""
    from ops.paths import REPO_ROOT

    found = []
    for workflow in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml")):
        for line in workflow.read_text().splitlines():
            words = line.split("ops ", 1)[1].split() if "bin/ops " in line and "run:" in line else []
            path = next((p for p in sorted(confirm.COMMANDS, key=len, reverse=True)
                         if words[:len(p.split())] == p.split()), None)
            if path and confirm.COMMANDS[path] is confirm.Kind.CHANGES:
                found.append(path)
                assert "--yes" in words and "--plan" not in words, f"{workflow.name}: {line.strip()}"
    assert {"deploy", "db migrate", "monitors resume", "backup prune", "db refresh"} <= set(found)
