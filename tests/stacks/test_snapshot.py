"""The offline plan of each stack is kept under tests/stacks/snapshots/, so any infrastructure
change shows as a diff in review. Regenerate deliberately with UPDATE_SNAPSHOTS=1 bin/test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import app
from stacks.plan import Plan

pytestmark = pytest.mark.stacks
SNAPSHOTS = Path(__file__).parent / "snapshots"


def _render(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=2, sort_keys=True, default=str) + "\n"


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_plan_matches_the_committed_snapshot(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    path = SNAPSHOTS / f"{stack}.json"
    rendered = _render(plan)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"no snapshot for {stack}: run UPDATE_SNAPSHOTS=1 bin/test tests/stacks"
    assert rendered == path.read_text(), f"{stack} plan changed: review the diff, then UPDATE_SNAPSHOTS=1"


def test_snapshot_holds_no_secret() -> None:
    for path in SNAPSHOTS.glob("*.json"):
        text = path.read_text()
        assert "PLAN-SECRET" not in text, path.name
        assert "postgresql://" not in text, path.name


def test_ops_plan_json_and_exit_code() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "--stack", "staging", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stack"] == "staging"
    assert all(p["passed"] for p in data["policies"].values())
    bad = runner.invoke(app, ["plan", "--stack", "qa"])
    assert bad.exit_code == 2 and "Pulumi.qa.yaml" in bad.output
