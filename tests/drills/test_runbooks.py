"""Every command in the runbooks, run against the sandbox as an on-call engineer would."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.backup import usecase as uc
from ops.pg import create_database, drop_database, with_database
from ops.sandbox.state import SandboxState
from ops.wiring import resolve
from tests.drills.runbook import RUNBOOKS, run_runbook
from tests.seed import clear, seed

pytestmark = pytest.mark.drill


def _env(sandbox: SandboxState) -> dict[str, str]:
    # restore-database.md finds the age identity and the public URL itself (AGE_KEY_FILE, PUBLIC_URL)
    return {"ENV": "local", "OPS_SANDBOX_DIR": sandbox.root}


def test_backups_runbook(sandbox: SandboxState, tmp_path: Path) -> None:
    result = run_runbook(RUNBOOKS / "backups.md", _env(sandbox), tmp_path)
    assert len(result.ran) == 5 and not result.skipped
    assert "verified" in result.output


def test_restore_runbook_including_the_plain_tools_path(sandbox: SandboxState, tmp_path: Path) -> None:
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=2, employees_per_run=20, tag="runbook")
    env = resolve("local")
    uc.create(env, S3ObjectStore(env.storage, "backups"), None)
    admin = sandbox.database_url("postgres", admin=True)
    create_database(admin, "runbook_target")
    try:
        result = run_runbook(RUNBOOKS / "restore-database.md",
                             {**_env(sandbox), "TARGET_DATABASE_URL": with_database(admin, "runbook_target")}, tmp_path)
        assert any("aws s3 cp" in s or "AWS CLI" in s for s in result.skipped)
        import psycopg

        with psycopg.connect(with_database(admin, "runbook_target")) as conn:
            count = conn.execute("SELECT count(*) FROM employee_results").fetchone()
        assert count is not None and count[0] == 40
        # The runbook cleans up after itself: neither the encrypted files nor the decrypted dump stay on disk.
        assert not (tmp_path / "backup").exists() and not (tmp_path / "dump").exists()
    finally:
        drop_database(admin, "runbook_target")


def test_every_runbook_block_is_run_by_some_test() -> None:
    tested = {"backups.md", "restore-database.md", "refresh-branch.md", "failover.md", "deploy-and-rollback.md",
              "release.md",
              "incident-response.md"}
    here = Path(__file__).parent
    for runbook in RUNBOOKS.glob("*.md"):
        if runbook.name == "README.md":
            continue
        mentioned = any(runbook.name in p.read_text() for p in here.glob("test_*.py"))
        assert runbook.name in tested or mentioned, f"{runbook.name} has no test running it"


def test_database_partitions_runbook(sandbox: SandboxState, tmp_path: Path) -> None:
    result = run_runbook(RUNBOOKS / "database-partitions.md", _env(sandbox), tmp_path)
    assert len(result.ran) == 2 and len(result.skipped) == 1
    assert "employee_results_y" in result.output and "plan only" in result.output


def test_refresh_branch_runbook(sandbox: SandboxState, tmp_path: Path) -> None:
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=2, employees_per_run=10, tag="refresh-runbook")
    result = run_runbook(RUNBOOKS / "refresh-branch.md", _env(sandbox), tmp_path)
    assert len(result.ran) == 3 and not result.skipped
    assert "staging_pre_refresh_" in result.output


def test_failover_deploy_and_incident_runbooks(drill_root: Path, tmp_path: Path) -> None:
    """failover.md, deploy-and-rollback.md and incident-response.md, in the drill's own sandbox."""
    import os
    import signal
    import subprocess
    import sys

    from ops.processes import is_running
    from ops.sandbox import manager
    from ops.sandbox.state import load_state
    DRILL_SANDBOX = drill_root
    manager.up(DRILL_SANDBOX)
    state = load_state(DRILL_SANDBOX)
    env = {"ENV": "local", "OPS_SANDBOX_DIR": str(DRILL_SANDBOX), "VERSION": f"runbook-{os.getpid()}"}
    base = {**os.environ, **env}
    if state.caddy.active_app != "primary":
        subprocess.run([sys.executable, "-m", "ops", "failback"], env=base, check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "ops", "backup", "create"], env=base, check=True, capture_output=True)
    run_runbook(RUNBOOKS / "deploy-and-rollback.md", env, tmp_path)
    run_runbook(RUNBOOKS / "incident-response.md", env, tmp_path)
    primary = load_state(DRILL_SANDBOX).apps["primary"].proc
    assert primary is not None
    os.kill(primary.pid, signal.SIGKILL)
    while is_running(primary):
        pass
    result = run_runbook(RUNBOOKS / "failover.md", env, tmp_path)
    assert "recovered in" in result.output
    assert load_state(DRILL_SANDBOX).caddy.active_app == "primary"  # failed back at the end
