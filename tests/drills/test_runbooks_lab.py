"""The runbooks that need hosts, run as runbooks on the production shape: release.md,
deploy-and-rollback.md, failover.md and incident-response.md, each block in one bash session
(tests/drills/runbook.py) against the lab (tests/drills/lab.py: SSH + Docker hosts, the local
registry, Cloudflare, Neon, BetterStack and Stripe faked on loopback). Every block that is not
`# not-in-sandbox` must exit 0. Run under the test-host lock:
`flock /tmp/autoenroll-testhosts.lock pytest tests/drills -k lab`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.drills.lab import Lab
from tests.drills.runbook import RUNBOOKS, run_runbook
from tests.drills.test_lab import ops, version_on
from tests.lab.docker import DockerEngine
from tests.lab.fixtures import PushedImage
from tests.lab.images import APP_REPOSITORY

pytestmark = pytest.mark.drill

WIDE = {"COLUMNS": "400"}  # rich's tables unwrapped, one row per line, for the assertions below


def test_release_runbook_on_staging_with_a_version_pushed_to_the_registry(
        lab: Lab, lab_registry: PushedImage, docker_engine: DockerEngine, tmp_path: Path) -> None:
    """release.md end to end on staging: backup and its verification, the plan, migrations, the
    deploy of a tag CI pushed, and the deployment checklist with its twelve items passing."""
    registry = lab_registry.registry
    registry.push(docker_engine, f"{registry.push_address}/{APP_REPOSITORY}:{lab_registry.tag}", APP_REPOSITORY,
                  "lab-release")
    result = run_runbook(RUNBOOKS / "release.md", {**lab.env, **WIDE, "ENV": "staging", "VERSION": "lab-release"},
                         tmp_path)
    assert [s.split(":")[0] for s in result.skipped] == ["block 3"]  # only `docker manifest inspect`
    assert "needs the container registry" in result.skipped[0]
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-release"
    rows = re.findall(r"^\W*(\d+)\s*│.*│\s*(pass|fail|skip)\s*│", result.output, re.M)
    assert [(int(n), status) for n, status in rows] == [(n, "pass") for n in range(1, 13)], result.output[-4000:]


def test_deploy_and_rollback_runbook_on_staging(lab: Lab, tmp_path: Path) -> None:
    """deploy-and-rollback.md: health, the plan, a deploy of VERSION, then a rollback to the version
    before it; the `--open-ssh-from` block (the Hetzner API) is the only one left out."""
    first = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert first.returncode == 0, first.stderr
    result = run_runbook(RUNBOOKS / "deploy-and-rollback.md", {**lab.env, **WIDE, "ENV": "staging",
                                                               "VERSION": "lab-v2"}, tmp_path)
    assert len(result.ran) == 3 and len(result.skipped) == 1 and "Hetzner API" in result.skipped[0]
    assert "lab-v2" in result.output
    # The rollback went back to the version before VERSION, on both hosts.
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"


def test_failover_runbook_on_production_after_the_primarys_app_dies(lab: Lab, tmp_path: Path) -> None:
    """failover.md on production: the primary's app containers die (its Caddy answers 502 at the
    edge); the runbook reads status and the plan, fails over (host only), follows it, and fails
    back, which redeploys the primary; traffic is back on the primary at the end."""
    deployed = ops(lab, "deploy", "--env", "production", "--yes", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr
    primary = lab.hosts["primary"]
    for name in lab.containers("primary"):
        primary.docker("stop", "--time", "1", name)
    assert lab.edge_get("/ready").status_code != 200  # the outage the on-call engineer is paged for

    edits = len(lab.cloudflare.edits)
    result = run_runbook(RUNBOOKS / "failover.md", {**lab.env, **WIDE, "ENV": "production"}, tmp_path,
                         typed="production")  # on production the failover and failback ask for the name
    assert len(result.skipped) == 1 and "Neon point-in-time restore" in result.skipped[0]
    # Cloudflare was told twice: both records to the standby (failover), then back (failback).
    moves = [content for _record, content in lab.cloudflare.edits[edits:]]
    standby = lab.hosts["standby"].address
    assert standby in moves and moves[-2:] == [primary.address, primary.address], (moves, result.output[-3000:])
    assert moves.index(standby) < len(moves) - 2
    assert "traffic back on the primary" in result.output, result.output[-3000:]
    assert lab.record_contents() == {"app": primary.address, "api": primary.address}
    assert lab.edge_get("/ready").status_code == 200
    assert version_on(lab, "primary") == "lab-v1"
    status = ops(lab, "failover", "status", "--env", "production", "--json")
    assert status.returncode == 0 and '"state": "idle"' in status.stdout, status.stdout + status.stderr


def test_incident_response_runbook_on_production(lab: Lab, tmp_path: Path) -> None:
    """incident-response.md's first five minutes: health, failover status and the backup list, all
    read-only; it changes no DNS record and no container."""
    made = ops(lab, "backup", "create", "--env", "production", "--json")
    assert made.returncode == 0, made.stderr
    before = (lab.record_contents(), {role: lab.containers(role) for role in lab.hosts})
    result = run_runbook(RUNBOOKS / "incident-response.md", {**lab.env, **WIDE, "ENV": "production"}, tmp_path)
    assert len(result.ran) == 1 and not result.skipped
    assert (lab.record_contents(), {role: lab.containers(role) for role in lab.hosts}) == before
    backup_id = json.loads(made.stdout)["backup"]["id"]
    assert "idle: traffic on the primary" in result.output and backup_id in result.output, result.output[-3000:]
