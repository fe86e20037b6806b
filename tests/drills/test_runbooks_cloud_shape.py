"""backups.md, restore-database.md and refresh-branch.md on the production-shaped path (ENV=staging, stack
outputs in a file, credentials in variables), pointing at the sandbox's PostgreSQL and S3, and for the
refresh at the Neon fake (its branches real databases) served on loopback; test_runbooks.py runs them on
`local`. The runbooks that need a host (deploy, failover) run on the lab of the one-code-path issue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.sandbox.state import SandboxState
from ops.wiring import resolve
from tests.cloud_shape import outputs, variables
from tests.drills.runbook import RUNBOOKS, run_runbook
from tests.seed import clear, seed

pytestmark = pytest.mark.drill


@pytest.fixture()
def staging(sandbox: SandboxState, tmp_path: Path) -> Iterator[dict[str, str]]:
    path = tmp_path / "staging-outputs.json"
    path.write_text(json.dumps(outputs(sandbox)))
    url = sandbox.database_url("staging", admin=True)
    clear(url)
    seed(url, tenants=2, employees_per_run=15, tag="cloud-runbook")
    yield {"ENV": "staging", "OPS_SANDBOX_DIR": "/nonexistent-no-sandbox-here", **variables(sandbox, path)}
    store = S3ObjectStore(resolve("local").storage, "backups")
    for key in store.list_keys("staging/") + store.list_keys("_ops/staging/"):
        store.delete(key)


def test_backups_runbook_on_the_production_shape(staging: dict[str, str], tmp_path: Path) -> None:
    result = run_runbook(RUNBOOKS / "backups.md", staging, tmp_path)
    assert not result.skipped
    assert "backup staging-" in result.output or "verified" in result.output
    assert "no locks held in staging" in result.output


def test_restore_runbook_on_the_production_shape(staging: dict[str, str], sandbox: SandboxState,
                                                 tmp_path: Path) -> None:
    from ops.pg import create_database, drop_database, with_database

    assert run_runbook_create(staging, tmp_path)
    admin = sandbox.database_url("postgres", admin=True)
    create_database(admin, "cloud_runbook_target")
    try:
        result = run_runbook(RUNBOOKS / "restore-database.md",
                             {**staging, "TARGET_DATABASE_URL": with_database(admin, "cloud_runbook_target")}, tmp_path)
        assert any("aws s3 cp" in s or "AWS CLI" in s for s in result.skipped)
        import psycopg

        with psycopg.connect(with_database(admin, "cloud_runbook_target")) as conn:
            count = conn.execute("SELECT count(*) FROM employee_results").fetchone()
        assert count is not None and count[0] == 30
    finally:
        drop_database(admin, "cloud_runbook_target")


def run_runbook_create(env: dict[str, str], cwd: Path) -> bool:
    """One backup of staging, taken the way the nightly job does (`ops backup create`)."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ops", "backup", "create", "--env", "staging"], cwd=cwd,
                         env={**__import__("os").environ, **env}, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return True


@pytest.fixture()
def neon(sandbox: SandboxState) -> Iterator[tuple[Any, str]]:
    """Neon's API (tests/scripts/test_refresh_neon.py's fake) with main seeded and staging and
    development branched off, served on loopback for `ops` run by the runbook."""
    from tests.drills.lab import serve_httpx_handler
    from tests.scripts.test_refresh_neon import seeded_fake_neon

    with seeded_fake_neon(sandbox, employees_per_run=12, tag="cloud-refresh-runbook",
                          empty=("staging", "development")) as fake, serve_httpx_handler(fake) as url:
        yield fake, url


def test_refresh_branch_runbook_on_the_production_shape(sandbox: SandboxState, neon: tuple[Any, str],
                                                       tmp_path: Path) -> None:
    import psycopg

    from tests.scripts.test_refresh_neon import PROJECT

    fake, url = neon
    shaped = outputs(sandbox)
    # The branches' connection strings are Neon's (the fake's databases), as in the stack's outputs.
    shaped["connection_strings"] = {b: {"direct": fake.local.url(fake.db(b)), "pooled": fake.local.url(fake.db(b))}
                                    for b in ("main", "staging", "development")}
    shaped["neon_project_id"] = PROJECT
    path = tmp_path / "staging-outputs.json"
    path.write_text(json.dumps(shaped))
    env = {"ENV": "staging", "OPS_SANDBOX_DIR": "/nonexistent-no-sandbox-here", **variables(sandbox, path),
           "NEON_API_KEY": "neon-cloud-shape-key", "OPS_NEON_API_URL": f"{url}/api/v2"}
    try:
        result = run_runbook(RUNBOOKS / "refresh-branch.md", env, tmp_path)
    finally:
        store = S3ObjectStore(resolve("local").storage, "backups")
        for key in store.list_keys("_ops/staging/"):
            store.delete(key)
    assert len(result.ran) == 3 and not result.skipped
    assert "staging_pre_refresh_" in result.output
    assert any(c.endswith("/restore") for c in fake.calls)  # the refresh went through Neon's API
    with psycopg.connect(fake.local.url(fake.db("main"))) as conn:
        source = {r[0] for r in conn.execute("SELECT ppsn FROM employee_results")}
    for branch in ("staging", "development"):
        with psycopg.connect(fake.local.url(fake.db(branch))) as conn:
            ppsns = {r[0] for r in conn.execute("SELECT ppsn FROM employee_results")}
        assert len(ppsns) == 24 and not ppsns & source, branch  # refreshed, and masked
