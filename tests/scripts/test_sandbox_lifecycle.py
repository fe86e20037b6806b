"""`ops sandbox up | status | down` on a sandbox of its own: up, a second up, a crash, down."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import app
from ops.paths import REPO_ROOT
from ops.processes import is_running
from ops.sandbox import components as c
from ops.sandbox import manager
from ops.sandbox.state import SandboxState, load_state
from ops.tcp_ports import port_is_free
from tests.conftest import sandbox_dir_env

pytestmark = pytest.mark.integration
runner = CliRunner()
ROOT = REPO_ROOT / ".sandbox-test-lifecycle"


@pytest.fixture(scope="module")
def lifecycle_root() -> Iterator[Path]:
    with sandbox_dir_env(ROOT):
        try:
            # The process lifecycle; containers (the default where an engine can be had):
            # test_sandbox_containers.py.
            result = runner.invoke(app, ["sandbox", "up", "--processes", "--json"])
            assert result.exit_code == 0, result.output
            yield ROOT
        finally:
            manager.down(ROOT)


def _procs(state: SandboxState) -> dict[str, int]:
    return {comp.name: comp.get_proc(state).pid for comp in c.COMPONENTS}  # type: ignore[union-attr]


def test_up_brings_every_component_up(lifecycle_root: Path) -> None:
    result = runner.invoke(app, ["sandbox", "status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert {comp["name"] for comp in report["components"]} == set(c.COMPONENT_NAMES)
    assert all(comp["state"] == "up" for comp in report["components"])


def test_second_up_changes_nothing(lifecycle_root: Path) -> None:
    before = _procs(load_state(lifecycle_root))
    result = runner.invoke(app, ["sandbox", "up"])
    assert result.exit_code == 0, result.output
    assert _procs(load_state(lifecycle_root)) == before


def test_crashed_component_shows_down_and_up_restarts_it(lifecycle_root: Path) -> None:
    state = load_state(lifecycle_root)
    standby = state.apps["standby"].proc
    assert standby is not None
    os.kill(standby.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(standby) and time.monotonic() < deadline:
        time.sleep(0.05)

    result = runner.invoke(app, ["sandbox", "status", "--json"])
    assert result.exit_code == 9
    rows = {row["name"]: row for row in json.loads(result.stdout)["components"]}
    assert rows["app-standby"]["state"] == "down"
    assert rows["app-primary"]["state"] == "up"

    result = runner.invoke(app, ["sandbox", "up"])
    assert result.exit_code == 0, result.output
    new_state = load_state(lifecycle_root)
    assert new_state.apps["standby"].proc is not None
    assert new_state.apps["standby"].proc.pid != standby.pid
    assert runner.invoke(app, ["sandbox", "status"]).exit_code == 0


def test_logs_show_a_components_output(lifecycle_root: Path) -> None:
    result = runner.invoke(app, ["sandbox", "logs", "postgres", "-n", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["component"] == "postgres"
    bad = runner.invoke(app, ["sandbox", "logs", "nginx"])
    assert bad.exit_code == 2 and "unknown component" in bad.output  # bad input, not an unhealthy sandbox


def test_down_stops_ours_frees_ports_and_spares_others(lifecycle_root: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    state = load_state(lifecycle_root)
    procs = [comp.get_proc(state) for comp in c.COMPONENTS]
    ports = [p for comp in c.COMPONENTS for p in comp.ports(state)]

    result = runner.invoke(app, ["sandbox", "down", "--json"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["stopped"]) == set(c.COMPONENT_NAMES)
    assert not any(is_running(p) for p in procs)
    deadline = time.monotonic() + 10
    while not all(port_is_free(p) for p in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in ports if not port_is_free(p)] == []
    assert bystander.poll() is None
    bystander.kill()
    bystander.wait()

    again = runner.invoke(app, ["sandbox", "down", "--json"])
    assert json.loads(again.stdout)["stopped"] == []
