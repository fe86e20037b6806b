"""`ops status` and `ops logs` on the drill sandbox: the overview says 0 when all is well and 8 with the
reason when not, each part answering while another's dependency is down (PostgreSQL stopped, the object
store stopped, an app process killed); the logs show what the app just logged, also while following.
The production-shaped runs are in tests/drills/test_lab_status.py."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ops import wiring
from ops.processes import stop_process
from ops.sandbox import manager
from ops.sandbox.state import load_state

pytestmark = pytest.mark.drill

PARTS = ("hosts", "traffic", "failover", "database", "backups", "locks", "monitors")


def ops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def overview(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = ops(env, "status", "--env", "local", "--json")
    assert done.returncode in (0, 8), done.stderr
    return done.returncode, json.loads(done.stdout)


@contextmanager
def stopped(root: Path, component: str) -> Iterator[None]:
    """One sandbox component stopped for the block, and the sandbox whole again after."""
    state = load_state(root)
    proc = {"postgres": state.postgres.proc, "s3": state.s3.proc}.get(component) or state.apps[component].proc
    # Down as after a crash: SIGKILL after 2 s (a smart shutdown would wait for the apps' pooled connections).
    assert stop_process(proc, timeout=2), f"{component} was not running"
    try:
        yield
    finally:
        manager.up(root)


@pytest.fixture()
def verified_backup(drill_root: Path, drill_env: dict[str, str]) -> Iterator[str]:
    """A verified backup of the sandbox (what a healthy environment has), removed after."""
    made = ops(drill_env, "backup", "create", "--env", "local", "--json")
    assert made.returncode == 0, made.stderr
    backup_id = json.loads(made.stdout)["backup"]["id"]
    checked = ops(drill_env, "backup", "verify", backup_id, "--env", "local", "--json")
    assert checked.returncode == 0, checked.stderr
    yield backup_id
    store = wiring.objects(wiring.resolve("local", root=drill_root, live=False))
    for key in store.list_keys(f"local/{backup_id}/"):
        store.delete(key)


def test_status_is_0_when_all_is_well_and_8_naming_each_part_whose_dependency_is_down(
        drill_root: Path, drill_env: dict[str, str], verified_backup: str) -> None:
    code, data = overview(drill_env)
    # An earlier drill of the session (failover --db latest-backup, then failback) may leave the sandbox
    # serving from its restored database: status rightly names that (moving back is planned
    # maintenance) and exits 8. Anything else needing attention fails the test.
    away = [a for a in data["attention"] if "(not the home main: moving data back is planned maintenance)" in a]
    assert data["attention"] == away and code == (8 if away else 0), (code, data["attention"])
    assert all(data[p]["answered"] for p in PARTS), data
    assert {h["host"]: (h["reachable"], h["ready"]) for h in data["hosts"]["hosts"]} == {
        "app-primary": (True, True), "app-standby": (True, True)}
    assert data["traffic"]["records"] == {"app": "primary", "api": "primary"} and not data["traffic"]["split"]
    assert data["failover"]["state"] == "idle" and data["database"]["up"] is True
    assert data["backups"]["verified"] == verified_backup and data["backups"]["age_hours"] < 1
    assert data["monitors"]["monitors"] == {"app-primary": "up", "app-standby": "up"}

    with stopped(drill_root, "postgres"):
        code, data = overview(drill_env)
    assert code == 8
    assert data["database"]["up"] is False and "database unreachable" in data["database"]["error"], data["database"]
    # The live database: main, or main_failover when an earlier drill left the sandbox on it.
    assert any(a.startswith(("database main: down", "database main_failover: down")) for a in data["attention"]), \
        data["attention"]
    # The rest still answered: hosts (the apps say why they are not ready), DNS, the object store's parts.
    assert all(data[p]["answered"] for p in PARTS), data
    assert data["traffic"]["records"] == {"app": "primary", "api": "primary"}
    assert data["backups"]["verified"] == verified_backup
    assert any("the app is not ready" in a for a in data["attention"]), data["attention"]

    with stopped(drill_root, "s3"):
        code, data = overview(drill_env)
    assert code == 8
    for part in ("failover", "backups", "locks"):
        assert data[part]["answered"] is False and data[part]["depends_on"].startswith("the object store"), data[part]
    assert data["database"]["up"] is True and "could not be read" in data["database"]["note"], data["database"]
    assert data["hosts"]["answered"] and data["traffic"]["answered"] and data["monitors"]["answered"], data
    assert data["traffic"]["records"] == {"app": "primary", "api": "primary"}


def test_status_names_a_dead_app_and_logs_show_the_apps_own_lines_once_and_following(
        drill_root: Path, drill_env: dict[str, str]) -> None:
    with stopped(drill_root, "standby"):
        code, data = overview(drill_env)
        assert code == 8
        standby = next(h for h in data["hosts"]["hosts"] if h["host"] == "app-standby")
        assert standby["ready"] is False and data["monitors"]["monitors"]["app-standby"] == "down", data
        assert data["monitors"]["monitors"]["app-primary"] == "up"

    marker = f"/status-drill-{uuid.uuid4().hex}"
    public = load_state(drill_root).public_url()
    assert httpx.get(public + marker, timeout=10).status_code == 404
    done = ops(drill_env, "logs", "--env", "local", "--host", "app-primary", "-n", "200", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["hosts"]
    assert [h["host"] for h in found] == ["app-primary"] and any(marker in line for line in found[0]["lines"])

    # PYTHONFAULTHANDLER: if it ever does not end after its SIGINT, a SIGABRT prints every thread's stack.
    following = subprocess.Popen([sys.executable, "-m", "ops", "logs", "--env", "local", "--follow", "-n", "1"],
                                 env={**drill_env, "PYTHONFAULTHANDLER": "1"}, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        later = f"/status-drill-follow-{uuid.uuid4().hex}"
        seen: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(later in line for line in seen):
            httpx.get(public + later, timeout=10)
            assert following.stdout is not None
            seen.append(following.stdout.readline())
        assert any(line.startswith("app-primary | ") and later in line for line in seen), seen[-5:]
    finally:
        following.send_signal(signal.SIGINT)
        try:
            _out, err = following.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            following.send_signal(signal.SIGABRT)
            _out, err = following.communicate(timeout=30)
            raise AssertionError("ops logs --follow did not end within 30 s of its SIGINT; its stacks:\n"
                                 + err[-4000:]) from None
    assert following.returncode == 130 and "nothing to resume" in err, err
