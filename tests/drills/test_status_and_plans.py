"""On the sandbox: `ops failover status` says idle, in progress (mode and resume command) and failed
over as each becomes true, and `--plan` on deploy, rollback and failback changes nothing (state file,
processes, Caddy's upstreams, ops' own objects: history, locks, journals) while saying what a real
run then does. The production-shaped counterparts are in tests/scripts/test_exit_codes.py."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ops import wiring
from ops.deploy.usecase import read_history, rollback_target
from ops.failover.usecase import STEPS
from ops.sandbox.state import load_state, state_path
from ops.sandbox.traffic_caddy import CaddyUpstreams

pytestmark = pytest.mark.drill


def ops(env: dict[str, str], *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    full = {**env, **({"OPS_FAILPOINT": failpoint} if failpoint else {})}
    return subprocess.run([sys.executable, "-m", "ops", *args], env=full, capture_output=True, text=True,
                          timeout=300, check=False)


def status(env: dict[str, str]) -> dict[str, Any]:
    done = ops(env, "failover", "status", "--env", "local", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def snapshot(root: Path) -> dict[str, Any]:
    """Everything a deploy, rollback or failback could change."""
    state = load_state(root)
    store = wiring.objects(wiring.resolve("local", root=root, live=False))
    with CaddyUpstreams(state.caddy_admin_url()) as caddy:
        upstreams = caddy.current_upstreams()
    return {"state": hashlib.sha256(state_path(root).read_bytes()).hexdigest(), "upstreams": upstreams,
            "pids": {role: app.proc.pid if app.proc else None for role, app in state.apps.items()},
            "ops": {k: hashlib.sha256(store.get_bytes(k) or b"").hexdigest() for k in store.list_keys("_ops/local/")}}


def test_status_tells_the_truth_and_plans_change_nothing(drill_root: Path, drill_env: dict[str, str]) -> None:
    idle = status(drill_env)
    assert idle["state"] == "idle" and idle["serving"] == "primary" and idle["in_progress"] is None

    # deploy --plan: per host its version now -> the target, the slot, the traffic; nothing changes.
    version = f"plan-{os.getpid()}"
    before = snapshot(drill_root)
    planned = ops(drill_env, "deploy", "--env", "local", "--version", version, "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert snapshot(drill_root) == before
    state = load_state(drill_root)
    assert [(h["role"], h["from"], h["to"]) for h in plan["hosts"]] == [
        ("standby", state.apps["standby"].version, version), ("primary", state.apps["primary"].version, version)]
    assert "moves" in plan["hosts"][1]["traffic"] and plan["hosts"][0]["traffic"].startswith("none")
    human = ops(drill_env, "deploy", "--env", "local", "--version", version, "--plan")
    assert human.returncode == 0 and "nothing changed" in human.stdout + human.stderr
    # ... and the real deploy does what the plan said.
    deployed = ops(drill_env, "deploy", "--env", "local", "--version", version, "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert [(h["role"], h["from"], h["to"]) for h in json.loads(deployed.stdout)["hosts"]] == [
        (h["role"], h["from"], h["to"]) for h in plan["hosts"]]

    before = snapshot(drill_root)
    rolled = ops(drill_env, "rollback", "--env", "local", "--plan", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert snapshot(drill_root) == before
    store = wiring.objects(wiring.resolve("local", root=drill_root, live=False))
    current, target = rollback_target(read_history(store, "local"))
    assert (json.loads(rolled.stdout)["from"], json.loads(rolled.stdout)["version"]) == (current, target) \
        and current == version

    # A failover killed after its first step: in progress, with its mode and the command that finishes it.
    args = ("failover", "--env", "local", "--watch-seconds", "1", "--json")
    assert ops(drill_env, *args, failpoint="failover.after.switch-traffic").returncode == -9
    midway = status(drill_env)
    assert midway["state"] == "in-progress" and midway["serving"] == "standby" and midway["db_mode"] == "none"
    assert midway["done"] == ["switch-traffic"] and midway["pending"] == list(STEPS[1:])
    assert midway["resume"] == "ops failover --env local --db none"
    said = ops(drill_env, "failover", "status", "--env", "local")
    assert "resume with: ops failover --env local --db none" in said.stderr
    refused = ops(drill_env, "failback", "--env", "local", "--plan")
    assert refused.returncode == 2 and "a failover with --db none is in progress" in refused.stderr

    assert ops(drill_env, "failover", "--env", "local", "--watch-seconds", "1").returncode == 0
    over = status(drill_env)
    assert over["state"] == "failed-over" and over["serving"] == "standby" and over["db_mode"] == "none"
    assert over["since"] == over["traffic_record"]["since"] and "Caddy -> standby" in over["switched"]
    assert over["resume"] == "ops failback --env local"
    assert "FAILED OVER: traffic on the standby since" in ops(drill_env, "failover", "status").stderr

    before = snapshot(drill_root)
    planned_back = ops(drill_env, "failback", "--env", "local", "--plan", "--json")
    assert planned_back.returncode == 0, planned_back.stderr
    assert snapshot(drill_root) == before
    steps = {s["step"]: s["does"] for s in json.loads(planned_back.stdout)["steps"]}
    assert steps["switch-traffic"] == "move the public names standby -> primary"
    assert f"DATABASE_URL at {over['live_database']['database']}" in steps["set-environment"]

    back = ops(drill_env, "failback", "--env", "local", "--json")
    assert back.returncode == 0, back.stderr
    after = status(drill_env)
    assert after["state"] == "idle" and after["serving"] == "primary"
    assert after["traffic_record"]["by"] == "failback"
