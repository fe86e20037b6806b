"""On the lab (the production path: SSH + Docker hosts, Cloudflare's API faked on loopback): deploy and
failback `--plan` change no container, DNS record or ops object, and `ops failover status` says idle,
then failed over (since when, what Cloudflare was told, which database), then idle again.
Run under the test-host lock: `flock /tmp/autoenroll-testhosts.lock pytest tests/drills -k lab`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.environment import from_outputs
from tests.drills.lab import Lab
from tests.drills.test_lab import ops

pytestmark = pytest.mark.drill


def snapshot(running: Lab) -> dict[str, Any]:
    """What a deploy, failover or failback on the cloud path could change."""
    env = from_outputs("production", json.loads((running.folder / "production.json").read_text()))
    store = S3ObjectStore(env.storage, "backups")
    return {"dns": running.record_contents(), "containers": {role: running.containers(role) for role in running.hosts},
            "ops": {k: hashlib.sha256(store.get_bytes(k) or b"").hexdigest()
                    for k in store.list_keys("_ops/production/")}}


def status(running: Lab) -> dict[str, Any]:
    done = ops(running, "failover", "status", "--env", "production", "--json")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_lab_plans_change_nothing_and_status_follows_a_failover(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, lab.env[name])
    deployed = ops(lab, "deploy", "--env", "production", "--yes", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr

    before = snapshot(lab)
    planned = ops(lab, "deploy", "--env", "production", "--version", "lab-v2", "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    assert snapshot(lab) == before
    plan = json.loads(planned.stdout)
    assert [(h["role"], h["from"], h["to"]) for h in plan["hosts"]] == [
        ("standby-host", "lab-v1", "lab-v2"), ("primary-host", "lab-v1", "lab-v2")]  # the serving host last
    assert "moves" in plan["hosts"][1]["traffic"] and "free slot" in plan["hosts"][1]["slot"]

    idle = status(lab)
    assert (idle["state"], idle["serving"], idle["serving_source"]) == ("idle", "primary", "Cloudflare DNS")

    failed_over = ops(lab, "failover", "--env", "production", "--yes", "--watch-seconds", "2", "--json")
    assert failed_over.returncode == 0, failed_over.stderr
    over = status(lab)
    standby = lab.hosts["standby"].address
    assert (over["state"], over["serving"], over["db_mode"]) == ("failed-over", "standby", "none")
    assert over["since"] and f"-> {standby}" in over["switched"] and over["resume"] == "ops failback --env production"

    before = snapshot(lab)
    planned_back = ops(lab, "failback", "--env", "production", "--plan", "--json")
    assert planned_back.returncode == 0, planned_back.stderr
    assert snapshot(lab) == before
    steps = {s["step"]: s["does"] for s in json.loads(planned_back.stdout)["steps"]}
    assert steps["switch-traffic"] == "move the public names standby -> primary"
    assert "primary-host lab-v1" in steps["deploy"]

    back = ops(lab, "failback", "--env", "production", "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert status(lab)["state"] == "idle"
    assert lab.record_contents() == {"app": lab.hosts["primary"].address, "api": lab.hosts["primary"].address}
