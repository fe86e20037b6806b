"""The failover drill (seed 002's plan) and the deploy drill, in the sandbox, under a request loop."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from ops.failover.usecase import STEPS
from ops.sandbox.state import load_state
from tests.drills.loadloop import LoadLoop, kill_primary
from tests.seed import clear, seed

pytestmark = pytest.mark.drill


def ops(env: dict[str, str], *args: str, failpoint: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {**env, **({"OPS_FAILPOINT": failpoint} if failpoint else {})}
    return subprocess.run([sys.executable, "-m", "ops", *args], env=full, capture_output=True, text=True,
                          timeout=timeout, check=False)


def prepare(root: Path, env: dict[str, str], tag: str) -> int:
    """Seed main, take and verify a backup, then make one write after it (to be reported, not lost)."""
    state = load_state(root)
    # Each drill starts from "nothing has failed": the home database is the live one.
    from ops import wiring

    wiring.live_database(wiring.resolve("local", root=root, live=False)).set("main", "branch")
    url = state.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=3, employees_per_run=30, tag=tag)
    assert ops(env, "backup", "create", "--env", "local").returncode == 0
    assert ops(env, "backup", "verify", "--latest", "--env", "local").returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (name) VALUES ('written after the backup Ltd')")
    return 3


def test_failover_drill(drill_root: Path, drill_env: dict[str, str]) -> None:
    seeded = prepare(drill_root, drill_env, "drill")
    public = load_state(drill_root).public_url()
    with LoadLoop(public + "/ready") as loop:
        time.sleep(1.0)
        killed_at = kill_primary(drill_root)
        result = ops(drill_env, "failover", "--env", "local", "--db", "latest-backup", "--yes", "--watch-seconds", "3",
                     "--json")
        done_at = time.monotonic()
        time.sleep(2.0)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    # The standby serves the restored data.
    version = httpx.get(public + "/version", timeout=5).json()
    assert version["database"] == "main_failover"
    state = load_state(drill_root)
    assert state.caddy.active_app == "standby"
    with psycopg.connect(state.database_url("main_failover", admin=True)) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM tenants")]
    assert len(names) == seeded and "written after the backup Ltd" not in names

    # The write after the backup point is reported, not silently lost.
    assert report["writes_after_point"]["tenants"] == 1
    assert report["data_loss_window_seconds"] > 0
    assert 0 < report["recovery_seconds"] < 3600  # the seed's 1 h database restore target
    assert report["live_database"] == "main_failover"

    # The live database is recorded state: the next backup backs up main_failover, not the stale main.
    backup = ops(drill_env, "backup", "create", "--env", "local", "--json")
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["backup"]["database"] == "main_failover"

    # Failed requests only between the kill and the end of the failover, none before or after.
    assert loop.sent > 50
    assert all(killed_at - 0.1 <= t <= done_at for t in loop.failures), "requests failed outside the window"
    window = (max(loop.failures) - min(loop.failures)) if loop.failures else 0.0
    assert window <= done_at - killed_at


@pytest.mark.parametrize("step", STEPS[:-1])
def test_killing_the_failover_after_each_step_then_rerunning_completes(
    drill_root: Path, drill_env: dict[str, str], step: str
) -> None:
    prepare(drill_root, drill_env, f"crash-{step}")
    kill_primary(drill_root)
    crashed = ops(drill_env, "failover", "--env", "local", "--db", "latest-backup", "--yes", "--watch-seconds", "1",
                  "--json", failpoint=f"failover.after.{step}")
    assert crashed.returncode == -9
    status = json.loads(ops(drill_env, "failover", "status", "--env", "local", "--json").stdout)
    assert status["in_progress"]["done"][-1] == step
    resumed = ops(drill_env, "failover", "--env", "local", "--db", "latest-backup", "--yes", "--watch-seconds", "1",
                  "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed_after"] == step and report["steps"] == list(STEPS)
    public = load_state(drill_root).public_url()
    assert httpx.get(public + "/version", timeout=5).json()["database"] == "main_failover"


def test_deploy_under_load_drops_nothing_and_a_broken_release_rolls_back(
    drill_root: Path, drill_env: dict[str, str]
) -> None:
    public = load_state(drill_root).public_url()
    new = f"v-{int(time.time())}"
    with LoadLoop(public + "/health", interval=0.005) as loop:
        deployed = ops(drill_env, "deploy", "--env", "local", "--version", new, "--json")
        time.sleep(0.5)
    assert deployed.returncode == 0, deployed.stderr
    assert loop.sent > 100 and loop.failures == [], (
        f"{len(loop.failures)} of {loop.sent} requests failed ({loop.errors or 'non-200 answers'})")
    assert httpx.get(public + "/version", timeout=5).json()["version"] == new

    releases = drill_root / "releases"
    releases.mkdir(exist_ok=True)
    (releases / "broken.env").write_text("# a release that ships a bad setting\nREDIS_URL=http://not-redis\n")
    with LoadLoop(public + "/health", interval=0.005) as loop:
        broken = ops(drill_env, "deploy", "--env", "local", "--version", "broken")
    assert broken.returncode == 7
    assert "did not become ready" in broken.stderr and "rolled back" in broken.stderr
    assert loop.failures == []
    assert httpx.get(public + "/version", timeout=5).json()["version"] == new

    rolled = ops(drill_env, "rollback", "--env", "local", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert httpx.get(public + "/version", timeout=5).json()["version"] != new


def test_deploy_lock_names_its_holder(drill_root: Path, drill_env: dict[str, str]) -> None:
    from datetime import timedelta

    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.locks import object_lock
    from ops.wiring import resolve

    env = resolve("local")
    with object_lock(S3ObjectStore(env.storage, "backups"), "_ops/local/deploy.lock", ttl=timedelta(minutes=5),
                     purpose="deploy to local"):
        blocked = ops(drill_env, "deploy", "--env", "local", "--version", "v-locked")
    assert blocked.returncode == 6 and "deploy to local is locked by" in blocked.stderr


def test_health_reports_latency_against_the_seeds_targets(drill_root: Path, drill_env: dict[str, str]) -> None:
    result = ops(drill_env, "health", "--env", "local", "--json")
    assert result.returncode == 0, result.stderr
    checks = {c["endpoint"]: c for c in json.loads(result.stdout)}
    assert checks["/health"]["target_ms"] == 100 and checks["/health"]["ok"]
    assert checks["/version"]["p95_ms"] is not None
