"""`ops db restore-to`: Neon's point-in-time restore, in place (old state kept under a name) or into a
side branch, through the confirmation policy; Neon's API faked at the HTTP transport on loopback
(tests/neon_pitr_fake.py: its branches are real databases of the sandbox's PostgreSQL, its history
snapshots the test takes). The sandbox itself is refused, as it has no history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from ops.adapters.local.branch_store import LocalBranchStore
from ops.cli import app
from ops.refresh.point_in_time import neon_time
from ops.sandbox.state import SandboxState
from tests.conftest import sandbox_dir_env
from tests.drills.lab import serve_httpx_handler
from tests.neon_pitr_fake import FakeNeonPitr

pytestmark = pytest.mark.integration
runner = CliRunner()
PROJECT = "proj-restore-to"
DATABASE = "restore_to_main"  # production's branch `main`, as the fake's database


def _rows(local: LocalBranchStore, database: str) -> list[str]:
    with psycopg.connect(local.url(database)) as conn:
        return [str(r[0]) for r in conn.execute("SELECT note FROM notes ORDER BY note")]


@pytest.fixture()
def neon(sandbox: SandboxState, sandbox_root: Path, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeNeonPitr, LocalBranchStore, datetime]]:
    """Production's branch holds 'before' at the restore point and 'after' since."""
    local = LocalBranchStore(sandbox.database_url("postgres", admin=True))
    local.drop(DATABASE)
    with psycopg.connect(local.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with psycopg.connect(local.url(DATABASE), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (note text)")
        conn.execute("INSERT INTO notes VALUES ('before')")
    fake = FakeNeonPitr(local, PROJECT)
    branch_id = fake.add(DATABASE)
    now = datetime.now(UTC).replace(microsecond=0)
    fake.snapshot(DATABASE, now - timedelta(minutes=2))
    with psycopg.connect(local.url(DATABASE), autocommit=True) as conn:
        conn.execute("INSERT INTO notes VALUES ('after')")
    outputs = tmp_path / "production.json"
    outputs.write_text(json.dumps({
        "environment": "production", "public_url": "https://x.invalid", "servers": [], "r2_endpoint": "https://r2",
        "buckets": {"backups": "b"}, "neon_project_id": PROJECT, "neon_branches": {"main": {"id": branch_id}},
        "connection_strings": {"main": {"direct": local.url(DATABASE)}}}))
    monkeypatch.setenv("OPS_STACK_OUTPUTS_PRODUCTION", str(outputs))
    monkeypatch.setenv("NEON_API_KEY", "neon-lab-key")
    try:
        with sandbox_dir_env(sandbox_root), serve_httpx_handler(fake) as url:
            monkeypatch.setenv("OPS_NEON_API_URL", url + "/api/v2")
            yield fake, local, now - timedelta(minutes=1)
    finally:
        fake.cleanup()
        local.drop(DATABASE)


def test_restore_in_place_plans_refuses_unconfirmed_then_keeps_the_old_state(neon) -> None:
    fake, local, moment = neon
    args = ["db", "restore-to", "--env", "production", "--time", moment.isoformat()]
    planned = runner.invoke(app, [*args, "--plan", "--json"])
    assert planned.exit_code == 0, planned.output
    plan = json.loads(planned.stdout)
    assert plan["applied"] is False and plan["time"] == neon_time(moment)
    assert plan["preserve_as"].startswith("main_pre_restore_") and plan["preserve_as"] in " ".join(plan["plan"])
    refused = runner.invoke(app, [*args, "--json"])  # production, no terminal, no --yes
    assert refused.exit_code == 4 and "no terminal" in refused.output
    assert fake.restores == [] and _rows(local, DATABASE) == ["after", "before"]

    done = runner.invoke(app, [*args, "--yes", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert fake.restores == [{"source_branch_id": fake.restores[0]["source_branch_id"],
                              "source_timestamp": neon_time(moment), "preserve_under_name": result["preserve_as"]}]
    assert fake.branches[fake.restores[0]["source_branch_id"]] == DATABASE  # in place: its own history
    assert _rows(local, DATABASE) == ["before"]
    assert _rows(local, result["preserve_as"]) == ["after", "before"]  # nothing lost


def test_restore_into_a_side_branch_leaves_the_live_branch_alone(neon) -> None:
    fake, local, moment = neon
    done = runner.invoke(app, ["db", "restore-to", "--env", "production", "--time", moment.isoformat(),
                               "--into", "inspect-restore-to", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["created_branch_id"] in fake.branches
    assert fake.created[0]["branch"]["parent_timestamp"] == neon_time(moment)
    assert _rows(local, "inspect-restore-to") == ["before"]
    assert _rows(local, DATABASE) == ["after", "before"] and fake.restores == []
    again = runner.invoke(app, ["db", "restore-to", "--env", "production", "--time", moment.isoformat(),
                                "--into", "inspect-restore-to", "--yes"])
    assert again.exit_code == 3 and "exists already" in again.output


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--time", "2026-01-01T00:00:00"], 2, "give the time zone"),
    (["--time", "yesterday"], 2, "not an ISO 8601 time"),
    (["--time", "2999-01-01T00:00:00Z"], 2, "in the future"),
    (["--time", "2026-01-01T00:00:00Z", "--into", "main"], 3, "an environment's branch"),
    (["--time", "2026-01-01T00:00:00Z", "--into", "Bad Name"], 2, "lower-case letters"),
])
def test_bad_input_is_refused_before_anything_changes(neon, args: list[str], code: int, words: str) -> None:
    fake, _local, _moment = neon
    result = runner.invoke(app, ["db", "restore-to", "--env", "production", *args, "--yes"])
    assert result.exit_code == code and words in result.output, result.output
    assert fake.restores == [] and fake.created == []


def test_the_sandbox_says_it_has_no_history(sandbox: SandboxState, sandbox_root: Path) -> None:
    with sandbox_dir_env(sandbox_root):
        result = runner.invoke(app, ["db", "restore-to", "--env", "local", "--time", "2026-01-01T00:00:00Z"])
    assert result.exit_code == 2, result.output
    assert "keeps no history" in result.output and "ops backup restore --env local --latest" in result.output


def test_the_refresh_neon_path_against_the_same_fake(neon, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `ops db refresh` does on Neon (tests/drills/test_workflows_lab.py runs it through the
    staging refresh workflow): a scratch branch from the source, the target restored from it in place
    with its old state kept under a name, then the scratch branch deleted."""
    import os

    from ops.adapters.cloud.clients import NeonClient
    from ops.adapters.cloud.neon_branch_store import NeonBranchStore

    fake, local, _moment = neon
    client = NeonClient("neon-lab-key", base_url=os.environ["OPS_NEON_API_URL"], sleep=lambda _s: None)
    store = NeonBranchStore(client, PROJECT, database="unused", owner_role="unused")
    monkeypatch.setattr(store, "url", lambda name: local.url(name))  # the fake's branches are databases
    target = fake.add("restore_to_target")
    with psycopg.connect(local.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE restore_to_target")
    with psycopg.connect(local.url("restore_to_target"), autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (note text)")
        conn.execute("INSERT INTO notes VALUES ('old target')")
    with client:
        store.copy(DATABASE, "restore_to_scratch")
        assert _rows(local, "restore_to_scratch") == ["after", "before"]
        store.replace("restore_to_target", "restore_to_scratch", "restore_to_target_pre_refresh_1")
        store.drop("restore_to_scratch")
        names = {str(b["name"]): str(b["id"]) for b in client.list_branches(PROJECT)}
    assert names["restore_to_target"] == target  # the same branch (id, endpoints), new data
    assert "restore_to_scratch" not in names
    assert _rows(local, "restore_to_target") == ["after", "before"]
    assert _rows(local, "restore_to_target_pre_refresh_1") == ["old target"]
    assert fake.restores[-1]["source_branch_id"] != target
