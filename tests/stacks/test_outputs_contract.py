"""The stack outputs are exactly what `ops` reads as its Environment (docs/stack-outputs.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ops.wiring import resolve
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
    env = resolve(stack, live=False)  # the recorded live database needs the bucket, not under test here
    assert env.name == stack
    assert env.branch in env.database_urls
    assert env.storage.buckets["backups"] == f"autoenroll-{stack}-backups"
    assert env.stripe_webhook is not None and env.stripe_webhook.endpoint_id
    assert plan.outputs["stripe_webhook"]["url"] == env.public_url + "/api/billing/stripe-webhook"
    assert env.stripe_webhook.secret.get_secret_value().startswith("whsec_")
    # The typed fields ops reads instead of raw outputs[...] lookups.
    assert env.dns is not None and set(env.dns.switched()) == {"app", "api"}
    assert env.dns.app_record_name == env.public_url.removeprefix("https://")
    assert env.neon is not None and env.neon.project_id and env.branch in env.neon.branch_ids
    assert env.monitor_ids and all(env.monitor_ids.values())
    assert env.firewall_id  # what CI opens SSH on for one deploy (--open-ssh-from)
    assert all(h.address and h.private_ip for h in env.app_hosts)
    from autoenroll.contract import BRANCH_OF_ENV, OWNER_DATABASE_ROLE, SECRET_ENV_VARS

    assert set(SECRET_ENV_VARS) <= set(env.app_env)  # what `ops deploy` writes to each host's env file
    # What `ops deploy` writes to each host's Caddy (as root) and the login its pulls need.
    assert env.origin_tls is not None and env.origin_tls.private_key.get_secret_value()
    assert env.registry_login is not None and env.registry_login.username == "autoenroll-deploy"
    assert env.registry_login.token.get_secret_value()
    assert env.branch == BRANCH_OF_ENV[stack] and env.owner_role == OWNER_DATABASE_ROLE
    assert env.app_env["S3_BUCKET_UPLOADS"].get_secret_value() == env.storage.buckets["uploads"]
    roles = [h.role for h in env.app_hosts]
    assert roles.count("primary") >= 1
    assert ("standby" in roles) == (stack == "production")
    assert env.database_url().startswith("postgresql://")


def test_every_documented_key_is_exported_and_nothing_else(production_plan: Plan) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "stack-outputs.md").read_text()
    first_columns = [line.split("|")[1] for line in doc.splitlines() if line.startswith("| `")]
    documented = {name for column in first_columns for name in re.findall(r"`([a-z_0-9]+)`", column)}
    assert set(production_plan.outputs) == documented


def test_outputs_of_another_environment_are_refused(
    production_plan: Plan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPS_STACK_OUTPUTS=production.json with --env staging must not reach production's hosts."""
    from typer.testing import CliRunner

    from ops.cli import app

    path = tmp_path / "production.json"
    path.write_text(json.dumps(production_plan.outputs, default=str))
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(path))
    result = CliRunner().invoke(app, ["deploy", "--env", "staging", "--version", "v2"])
    assert result.exit_code == 2, result.output
    assert "are for environment 'production', not --env staging" in result.output
