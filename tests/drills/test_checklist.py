"""`ops checklist --env local` on the drill sandbox: passes with evidence, and names a broken item.
Also runs runbooks/release.md, which is built on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ops.processes import stop_process
from ops.sandbox.state import load_state
from tests.drills.runbook import RUNBOOKS, run_runbook

pytestmark = pytest.mark.drill


def checklist(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", "checklist", "--env", "local", "--json"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_release_runbook_and_checklist_pass_on_a_healthy_sandbox(drill_root: Path, drill_env: dict[str, str],
                                                                tmp_path: Path) -> None:
    result = run_runbook(RUNBOOKS / "release.md", {"ENV": "local", "OPS_SANDBOX_DIR": str(drill_root),
                                                   "VERSION": f"release-{os.getpid()}"}, tmp_path)
    assert "deployment checklist" in result.output
    items = json.loads(checklist(drill_env).stdout)
    assert len(items) == 12
    by_title = {i["title"]: i for i in items}
    assert all(i["status"] == "pass" for i in items), items
    stripe = by_title["Configure Stripe webhooks"]["evidence"]
    assert "signed -> applied" in stripe and "unsigned -> 400" in stripe
    assert "10,000 records" in by_title["Load test with 10,000 records"]["evidence"]


def test_a_broken_item_fails_and_is_named_with_its_evidence(drill_root: Path, drill_env: dict[str, str]) -> None:
    state = load_state(drill_root)
    stop_process(state.apps["standby"].proc)  # one app host down
    try:
        result = checklist(drill_env)
    finally:
        subprocess.run([sys.executable, "-m", "ops", "sandbox", "up"], env=drill_env, check=True,
                       capture_output=True)
    assert result.returncode == 8
    items = {i["title"]: i for i in json.loads(result.stdout)}
    scaling = items["Enable auto-scaling (replicas and health)"]
    assert scaling["status"] == "fail" and "app-standby" in scaling["evidence"]
    assert "checklist failed: 11. Enable auto-scaling" in result.stderr
