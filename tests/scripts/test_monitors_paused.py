"""Monitors are made paused (nothing serves before the first deploy) and the release resumes them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ops.adapters.cloud.clients import BetterStackClient
from ops.cli import app
from stacks.providers import betterstack as bs_provider
from tests.betterstack_fake import FakeBetterStack
from tests.drills.lab import serve_httpx_handler

pytestmark = pytest.mark.unit


@pytest.mark.stacks
def test_the_stack_makes_its_monitors_paused_and_a_later_up_leaves_paused_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.plan import run_plan

    plan = run_plan("staging")
    monitors = [r for r in plan.resources if (r.props.get("kind") == "monitors")]
    assert monitors and all(r.props["create_only"] == {"paused": True} for r in monitors)
    fake = FakeBetterStack()
    monkeypatch.setattr(bs_provider, "client_factory",
                        lambda: BetterStackClient("t", transport=httpx.MockTransport(fake), sleep=lambda _s: None))
    provider = bs_provider.BetterStackProvider()
    props = {"kind": "monitors", "attributes": dict(monitors[0].props["attributes"]),
             "create_only": {"paused": True}}
    created = provider.create(props)
    assert fake.items[created.id]["attributes"]["status"] == "paused"  # no page before the first deploy
    # Resumed since: the next pulumi up sees no change and does not pause it again.
    assert provider.diff(created.id, created.outs, {**props, "url": None}).changes is False


def test_ops_monitors_resume_unpauses_every_monitor_of_the_stack(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBetterStack()
    ids = {host: fake.add("monitors", {"url": f"https://{host}.example/health", "paused": True})["id"]
           for host in ("app", "api")}
    outputs = tmp_path / "staging.json"
    outputs.write_text(json.dumps({"environment": "staging", "public_url": "https://x.invalid", "servers": [],
                                   "r2_endpoint": "https://r2", "buckets": {"backups": "b"}, "monitor_ids": ids,
                                   "connection_strings": {"staging": {"direct": "postgresql://o@h/db"}}}))
    monkeypatch.setenv("OPS_STACK_OUTPUTS_STAGING", str(outputs))
    monkeypatch.setenv("BETTERSTACK_API_TOKEN", "t")
    with serve_httpx_handler(fake) as url:
        monkeypatch.setenv("OPS_BETTERSTACK_API_URL", url + "/api/v2")
        result = CliRunner().invoke(app, ["monitors", "resume", "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["monitors"] == {"api": "pending", "app": "pending"}
    assert all(fake.items[i]["attributes"]["paused"] is False for i in ids.values())


def test_release_resumes_the_monitors_after_the_deploy_and_before_the_checklist() -> None:
    import yaml

    from ops.paths import REPO_ROOT

    jobs = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "release.yml").read_text())["jobs"]
    for stage in ("staging", "production"):
        runs = [str(s.get("run", "")) for s in jobs[stage]["steps"]]
        order = [next(i for i, r in enumerate(runs) if needle in r)
                 for needle in ("ops deploy", "ops monitors resume", "ops checklist")]
        assert order == sorted(order), stage
