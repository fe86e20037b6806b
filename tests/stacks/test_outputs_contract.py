"""The stack outputs are exactly what `ops` reads as its Environment (docs/stack-outputs.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ops.environment import resolve
from stacks.plan import Plan

pytestmark = pytest.mark.stacks


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_ops_resolves_an_environment_from_the_stacks_outputs(
    stack: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(plan.outputs, default=str))
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(path))
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")
    env = resolve(stack)
    assert env.name == stack
    assert env.branch in env.database_urls
    assert env.storage.buckets["backups"] == f"autoenroll-{stack}-backups"
    assert env.stripe_webhook is not None and env.stripe_webhook.endpoint_id
    assert plan.outputs["stripe_webhook"]["url"] == env.public_url + "/api/billing/stripe-webhook"
    assert env.stripe_webhook.secret.get_secret_value().startswith("whsec_")
    assert "stripe_webhook" not in env.outputs  # its secret stays in the SecretStr only
    roles = [h.role for h in env.app_hosts]
    assert roles.count("primary") >= 1
    assert ("standby" in roles) == (stack == "production")
    assert env.database_url().startswith("postgresql://")


def test_every_documented_key_is_exported_and_nothing_else(production_plan: Plan) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "stack-outputs.md").read_text()
    first_columns = [line.split("|")[1] for line in doc.splitlines() if line.startswith("| `")]
    documented = {name for column in first_columns for name in re.findall(r"`([a-z_0-9]+)`", column)}
    assert set(production_plan.outputs) == documented
