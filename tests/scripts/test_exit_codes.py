"""Exit codes mean what docs/ops.md says: command x failed dependency -> code, on both environment shapes.

`local` is the sandbox; `staging`/`production` are production-shaped (stack outputs in a file, credentials in
the environment) pointing at the sandbox's real PostgreSQL and S3, with two app hosts reached over SSH and
their DNS records in a fake of Cloudflare's API on loopback. A dependency is "down" by pointing at a port
nothing listens on (a copy of the sandbox's state file, or of the outputs; the hosts' SSH port; Cloudflare's
API URL), so the sandbox itself keeps running for the other tests; a provider API is down at its HTTP
transport. The hosts' SSH is always down here (the lab, tests/drills/test_lab.py, has real ones).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ops import checklist
from ops.adapters.cloud.clients import NeonClient
from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.cli import app
from ops.sandbox import manager
from ops.sandbox.state import SandboxState, load_state, save_state
from ops.tcp_ports import free_port
from ops.wiring import resolve
from tests.cloud_shape import HOSTS, ZONE, outputs, variables
from tests.cloudflare_fake import FakeCloudflare
from tests.conftest import sandbox_dir_env
from tests.drills.lab import serve_httpx_handler

pytestmark = pytest.mark.integration
runner = CliRunner()
CLOUD = ("staging", "production")


@pytest.fixture(scope="module")
def shapes(sandbox_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Folders and files for each broken dependency; one backup of each environment exists first."""
    manager.up(sandbox_root)
    state = load_state(sandbox_root)
    base = tmp_path_factory.mktemp("exit-codes")
    closed = free_port()
    found: dict[str, Path] = {}
    for dep in ("s3", "postgres"):
        broken = state.model_copy(deep=True)
        if dep == "s3":
            broken.s3.ports["s3"] = closed
        else:
            broken.postgres.port = closed
        save_state(base / f"local-{dep}", broken)
        found[f"local-{dep}"] = base / f"local-{dep}"
    for name, kwargs in (("ok", {}), ("s3", {"s3_port": closed}), ("postgres", {"pg_port": closed})):
        path = base / f"outputs-{name}.json"
        path.write_text(json.dumps(outputs(state, hosts=True, **kwargs)))
        found[f"outputs-{name}"] = path
    found["ssh-config"] = base / "ssh_config"
    found["ssh-config"].write_text(f"Host *\n    Port {closed}\n    StrictHostKeyChecking no\n"
                                   "    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n")
    with sandbox_dir_env(sandbox_root), pytest.MonkeyPatch.context() as mp:
        _cloud_env(mp, state, found["outputs-ok"])
        for env in ("local", *CLOUD):
            result = runner.invoke(app, ["backup", "create", "--env", env, "--json"])
            assert result.exit_code == 0, result.output
    yield found
    with sandbox_dir_env(sandbox_root):
        store = S3ObjectStore(resolve("local").storage, "backups")
        for env in CLOUD:
            for key in store.list_keys(f"{env}/") + store.list_keys(f"_ops/{env}/"):
                store.delete(key)


def _cloud_env(mp: pytest.MonkeyPatch, state: SandboxState, outputs_file: Path) -> None:
    for name, value in variables(state, outputs_file).items():
        mp.setenv(name, value)


@pytest.fixture(scope="module")
def cloudflare() -> Iterator[tuple[FakeCloudflare, str]]:
    fake = FakeCloudflare()
    with serve_httpx_handler(fake) as url:
        yield fake, url


@pytest.fixture()
def at(shapes: dict[str, Path], sandbox_root: Path, cloudflare: tuple[FakeCloudflare, str],
       monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str | None], None]]:
    """at(shape, dependency): point `ops` at that environment shape with that dependency down.

    No test here breaks the real sandbox, so it is brought up once (in `shapes`), not before each test.
    A cloud shape starts with DNS on the primary and nothing failed over, and is put back after."""
    sandbox = load_state(sandbox_root)
    fake, url = cloudflare

    def point(shape: str, dependency: str | None) -> None:
        if shape == "local":
            if dependency:
                monkeypatch.setenv("OPS_SANDBOX_DIR", str(shapes[f"local-{dependency}"]))
            return
        files = {"s3": "outputs-s3", "postgres": "outputs-postgres"}
        _cloud_env(monkeypatch, sandbox, shapes[files.get(dependency or "", "outputs-ok")])
        monkeypatch.setenv("OPS_SSH_CONFIG", str(shapes["ssh-config"]))
        monkeypatch.setenv("CLOUDFLARE_API_TOKEN", fake.token)
        monkeypatch.setenv("OPS_CLOUDFLARE_API_URL", f"http://127.0.0.1:{free_port()}/client/v4"
                           if dependency == "cloudflare" else f"{url}/client/v4")

    fake.records[ZONE] = []
    for name in ("app.autoenroll.ie", "api.autoenroll.ie"):
        fake.add_record(ZONE, name, HOSTS[0]["ipv4"])
    yield point
    with sandbox_dir_env(sandbox_root):
        store = S3ObjectStore(resolve("local").storage, "backups")
        for env in CLOUD:
            for key in store.list_keys(f"_ops/{env}/"):
                store.delete(key)


# command (with {env}), the dependency that is down, the documented code
TABLE: list[tuple[str, str, int]] = [
    ("backup create --env {env}", "s3", 7),
    ("backup create --env {env}", "postgres", 7),
    ("backup list --env {env}", "s3", 7),
    ("backup verify --latest --env {env}", "s3", 7),
    ("backup restore --latest --yes --env {env}", "s3", 7),
    ("backup restore --latest --yes --env {env}", "postgres", 7),
    ("backup fetch --latest --out {tmp}/b.age --env {env}", "s3", 7),
    ("backup prune --env {env}", "s3", 7),
    ("db migrate --env {env}", "postgres", 7),
    ("db migrate --plan --env {env}", "postgres", 7),
    ("failover status --env {env}", "s3", 7),
    ("lock list --env {env}", "s3", 7),
    ("rollback --env {env}", "s3", 7),
    ("deploy --plan --version exitcodes --env {env}", "s3", 7),
]
LOCAL_ONLY: list[tuple[str, str, int]] = [
    ("backup verify --latest --env {env}", "postgres", 7),  # in the cloud, verify's server is another one
    # the sandbox's own paths (the cloud ones are the codepath issue's: SSH hosts, Cloudflare, Neon PITR)
    ("db refresh staging --from main --yes --env {env}", "s3", 7),
    ("db refresh staging --from main --yes --env {env}", "postgres", 7),
    ("deploy --version exitcodes --env {env}", "s3", 7),
    ("failover --env {env}", "s3", 7),
    ("sandbox status", "s3", 9),
    ("sandbox status", "postgres", 9),
    # failback checks the sandbox's servers first: exit 9 at once, not after a redeploy's timeout
    ("failback --env {env}", "s3", 9),
    ("failback --env {env}", "postgres", 9),
    ("failback --plan --env {env}", "postgres", 9),
]
CLOUD_ONLY: list[tuple[str, str, int]] = [
    # the hosts' SSH answers nothing (refused), Cloudflare's API likewise
    # --yes: production's confirmation (ops/confirm.py), which CI gives; here the dependency decides
    ("deploy --version exitcodes --yes --env {env}", "ssh", 7),
    ("deploy --plan --version exitcodes --env {env}", "ssh", 7),
    ("failover --watch-seconds 1 --yes --env {env}", "ssh", 7),
    ("failover --yes --env {env}", "cloudflare", 7),
    ("failback --yes --env {env}", "ssh", 7),
    ("failback --plan --env {env}", "ssh", 7),
]
CASES = ([pytest.param("local", *row, id=f"local-{row[1]}-{row[0].split(' --')[0]}") for row in TABLE + LOCAL_ONLY]
         + [pytest.param(env, *row, id=f"{env}-{row[1]}-{row[0].split(' --')[0]}") for env in CLOUD
            for row in TABLE + CLOUD_ONLY
            # S3's and Cloudflare's retries cost seconds: one cloud shape for those
            if row[1] not in ("s3", "cloudflare") or env == "staging"])


@pytest.mark.parametrize(("shape", "command", "dependency", "code"), CASES)
def test_a_failed_dependency_exits_with_its_documented_code(at, tmp_path: Path, shape: str, command: str,
                                                            dependency: str, code: int) -> None:
    at(shape, dependency)
    result = runner.invoke(app, command.format(env=shape, tmp=tmp_path).split())
    assert result.exit_code == code, result.output
    assert "unexpected" not in result.output and "Traceback" not in result.output
    assert "error:" in result.output


def test_provider_api_down_is_exit_7(at, monkeypatch: pytest.MonkeyPatch) -> None:
    at("staging", None)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    monkeypatch.setenv("NEON_API_KEY", "neon-test-key")
    monkeypatch.setattr(NeonClient, "from_environ", classmethod(
        lambda cls: NeonClient("neon-test-key", transport=httpx.MockTransport(refused), sleep=lambda _s: None)))
    result = runner.invoke(app, ["db", "refresh", "development", "--from", "staging", "--env", "staging", "--yes"])
    assert result.exit_code == 7, result.output
    assert "Neon" in result.output and "gave up" in result.output
    assert "neon-test-key" not in result.output


@pytest.mark.parametrize("dependency", ["s3", "postgres"])
def test_checklist_fails_the_item_and_runs_the_rest(at, monkeypatch: pytest.MonkeyPatch, dependency: str) -> None:
    at("local", dependency)
    by_title = dict(checklist.ITEMS)
    subset = ["Run database migrations", "Set up automated backups", "Document emergency procedures"]
    monkeypatch.setattr(checklist, "ITEMS", [(t, by_title[t]) for t in subset])
    result = runner.invoke(app, ["checklist", "--env", "local", "--json"])
    assert result.exit_code == 8, result.output
    status = {item["title"]: item["status"] for item in json.loads(result.stdout)}
    broken = "Set up automated backups" if dependency == "s3" else "Run database migrations"
    assert status[broken] == "fail"
    assert status["Document emergency procedures"] == "pass"
    assert len(status) == 3


@pytest.mark.parametrize("command", ["env show --env {env} --json", "health --env {env} --requests 3 --json"])
def test_read_only_diagnostics_need_no_storage_keys(at, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    at("production", None)
    monkeypatch.delenv("R2_ACCESS_KEY_ID")
    monkeypatch.delenv("R2_SECRET_ACCESS_KEY")
    result = runner.invoke(app, command.format(env="production").split())
    assert "R2_" not in result.output
    assert result.exit_code in (0, 8), result.output  # 8 only if the loaded machine missed a latency target
    json.loads(result.stdout)
    storage = runner.invoke(app, ["backup", "list", "--env", "production"])
    assert storage.exit_code == 2 and "R2_ACCESS_KEY_ID: required to reach object storage" in storage.output


def test_production_restore_needs_the_typed_name_even_with_json(at) -> None:
    at("production", None)
    result = runner.invoke(app, ["backup", "restore", "--latest", "--env", "production", "--json"])
    assert result.exit_code == 4, result.output  # no terminal here: nobody to type "production"
    assert "no terminal" in result.output and "--yes" in result.output
    assert result.stdout.strip() == ""  # nothing was restored, so there is no result to print


def test_a_dead_runs_lock_is_listed_and_broken_with_a_record(at) -> None:
    from ops import locks

    at("staging", None)
    store = S3ObjectStore(resolve("staging").storage, "backups")
    dead = {"token": "t", "owner": "ci@runner (CI run 42) pid 1", "purpose": "backup of staging", "host": "ci",
            "pid": "1", "acquired_at": "2026-01-01T00:00:00+00:00", "expires_at": "2999-01-01T00:00:00+00:00"}
    store.put_bytes("staging/.lock", json.dumps(dead).encode())
    try:
        blocked = runner.invoke(app, ["backup", "create", "--env", "staging"])
        assert blocked.exit_code == 6 and "ops lock release" in blocked.output
        listed = runner.invoke(app, ["lock", "list", "--env", "staging", "--json"])
        assert listed.exit_code == 0, listed.output
        assert [(h["name"], h["owner"]) for h in json.loads(listed.stdout)] == [("backup", dead["owner"])]
        planned = runner.invoke(app, ["lock", "release", "backup", "--env", "staging", "--plan"])
        assert planned.exit_code == 0 and dead["owner"] in planned.output
        assert store.get_bytes("staging/.lock") is not None
        released = runner.invoke(app, ["lock", "release", "backup", "--env", "staging", "--yes", "--json"])
        assert released.exit_code == 0, released.output
        assert store.get_bytes("staging/.lock") is None
        record = locks.broken_locks(store, "staging")[-1]
        assert record["owner"] == dead["owner"] and record["key"] == "staging/.lock" and record["broken_by"]
        again = runner.invoke(app, ["lock", "release", "backup", "--env", "staging", "--yes"])
        assert again.exit_code == 5
    finally:
        store.delete("staging/.lock")


@pytest.mark.parametrize("shape", ["local", "production"])
def test_migrate_plan_changes_nothing_and_says_so(at, shape: str) -> None:
    at(shape, None)
    result = runner.invoke(app, ["db", "migrate", "--plan", "--env", shape, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["applied"] is False and plan["before"] == plan["head"] and plan["plan"] == []


def test_cloud_failover_status_tells_the_truth(at, cloudflare: tuple[FakeCloudflare, str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """On the production-shaped path: idle; then a failover whose redeploy cannot reach the standby
    (SSH down) has moved DNS and left its journal: in progress, its mode, the resume command; the
    DNS answer comes from Cloudflare, or (no token, or Cloudflare down) from the recorded switch."""
    fake, _url = cloudflare
    at("staging", "ssh")

    def status() -> dict[str, object]:
        result = runner.invoke(app, ["failover", "status", "--env", "staging", "--json"])
        assert result.exit_code == 0, result.output
        return dict(json.loads(result.stdout))

    idle = status()
    assert (idle["state"], idle["serving"], idle["serving_source"]) == ("idle", "primary", "Cloudflare DNS")

    failed = runner.invoke(app, ["failover", "--env", "staging", "--watch-seconds", "1", "--json"])
    assert failed.exit_code == 7 and "ssh" in failed.output
    assert {r["content"] for r in fake.records[ZONE]} == {HOSTS[1]["ipv4"]}  # DNS moved before the redeploy failed
    midway = status()
    assert (midway["state"], midway["serving"], midway["db_mode"]) == ("in-progress", "standby", "none")
    assert midway["done"] == ["switch-traffic", "restore-database", "set-environment"]
    assert midway["pending"] == ["deploy", "check-endpoints", "watch-errors"]
    assert midway["resume"] == "ops failover --env staging --db none"
    said = runner.invoke(app, ["failover", "status", "--env", "staging"])
    assert "failover in progress" in said.output and "resume with: ops failover --env staging --db none" in said.output

    monkeypatch.delenv("CLOUDFLARE_API_TOKEN")  # a diagnostic needs only the credentials it uses
    recorded = status()
    assert recorded["serving"] == "standby" and str(recorded["serving_source"]).startswith("the recorded state")
    at("staging", "cloudflare")
    unreachable = status()
    assert unreachable["serving"] == "standby" and "unreachable" in str(unreachable["serving_source"])
