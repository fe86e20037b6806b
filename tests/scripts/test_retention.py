"""`ops db partitions` and `ops db retention` against the real sandbox (PostgreSQL, SeaweedFS): months are made
ahead; retention plans, refuses a month the newest verified backup does not hold (changing nothing), and
otherwise removes the month whole: its partition, its uploads and runs, and their stored objects."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import psycopg
import pytest
from typer.testing import CliRunner

from autoenroll import partitions as p
from ops.backup import manifest as m
from ops.cli import app
from ops.partitions import Partition, cutoff_for, holds
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from tests.seed import clear, seed

pytestmark = pytest.mark.integration
runner = CliRunner()
BUCKET = "autoenroll-local-uploads"


def this_month() -> date:
    return p.month_start(datetime.now(UTC).date())


def manifest(started: datetime, tables: dict[str, int]) -> m.Manifest:
    return m.Manifest(id="b1", environment="local", database="main", branch="main", server_version="17",
                      tables=tables, data_key="k", stored_bytes=1, sha256="x", recipient="age1x",
                      tool_version="0", started_at=started, finished_at=started)


@pytest.mark.unit
def test_a_backup_holds_a_month_only_if_taken_after_it_ended_with_the_rows_it_has_now() -> None:
    part = Partition("employee_results_y2025m10", date(2025, 10, 1), 5)
    after = datetime(2025, 11, 2, tzinfo=UTC)
    assert holds(manifest(after, {"public.employee_results_y2025m10": 5}), part) is None
    assert "no verified backup" in str(holds(None, part))
    assert "before 2025-10 ended" in str(holds(manifest(datetime(2025, 10, 31, tzinfo=UTC),
                                                        {"public.employee_results_y2025m10": 5}), part))
    assert "not in the newest verified backup" in str(holds(manifest(after, {}), part))
    assert "changed since" in str(holds(manifest(after, {"public.employee_results_y2025m10": 7}), part))
    assert holds(None, Partition(part.name, part.month, 0)) is None  # an empty month loses nothing
    assert cutoff_for(date(2026, 12, 7), 12) == date(2025, 12, 1)
    with pytest.raises(Exception, match="--older-than: must be >= 1"):
        cutoff_for(date(2026, 12, 7), 0)


def add_old_month(url: str, sandbox: SandboxState, month: date) -> tuple[str, list[str]]:
    """An upload, its run and 5 result rows in `month`, and its stored objects; (run id, object keys)."""
    upload, run = uuid.uuid4(), uuid.uuid4()
    keys = [f"compliance-evidence/{upload}", f"reports/{run}/summary.json", f"reports/{run}/errors.csv"]
    with psycopg.connect(url, autocommit=True) as conn:
        tenant, user = conn.execute("SELECT tenant_id, id FROM users LIMIT 1").fetchone()  # type: ignore[misc]
        conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,"
                     " size_bytes, sha256) VALUES (%s, %s, %s, %s, 'old.csv', 'text/csv', 1, 'x')",
                     (upload, tenant, user, keys[0]))
        conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, month, started_at, status) VALUES"
                     " (%s, %s, %s, %s, %s, 'completed')", (run, tenant, upload, month, month))
        conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number, ppsn)"
                     " SELECT %s, %s, %s, g, 'P' || g FROM generate_series(1, 5) g", (tenant, run, month))
    s3 = c.s3_client(sandbox)
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"old")
    return str(run), keys


def stored(sandbox: SandboxState, keys: list[str]) -> list[str]:
    s3 = c.s3_client(sandbox)
    return [k for k in keys if s3.list_objects_v2(Bucket=BUCKET, Prefix=k).get("KeyCount", 0)]


def backed_up_and_verified() -> str:
    made = runner.invoke(app, ["backup", "create", "--env", "local", "--json"])
    assert made.exit_code == 0, made.output
    backup_id = json.loads(made.stdout)["backup"]["id"]
    verified = runner.invoke(app, ["backup", "verify", backup_id, "--env", "local", "--json"])
    assert verified.exit_code == 0, verified.output
    return str(backup_id)


def test_partitions_are_made_ahead_and_listed(sandbox: SandboxState) -> None:
    url = sandbox.database_url("main", admin=True)
    far = p.add_months(this_month(), 5)
    listed = runner.invoke(app, ["db", "partitions", "--env", "local", "--ahead", "5", "--json"])
    assert listed.exit_code == 0, listed.output
    assert f"{far:%Y-%m}" in json.loads(listed.stdout)["missing"]
    with psycopg.connect(url) as conn:  # the listing changed nothing
        assert conn.execute("SELECT to_regclass(%s)", (p.partition_name(far),)).fetchone() == (None,)
    try:
        made = runner.invoke(app, ["db", "partitions", "--env", "local", "--ahead", "5", "--ensure", "--json"])
        assert made.exit_code == 0, made.output
        assert p.partition_name(far) in json.loads(made.stdout)["created"]
        # --ensure also gathers the parent's own (inherited) statistics, which autovacuum never does:
        # the refresh's masked copy reads them to mask each person once.
        assert json.loads(made.stdout)["analyzed"] == ["employee_results"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT reltuples >= 0 FROM pg_class WHERE relname = 'employee_results'").fetchone() \
                == (True,)
        again = runner.invoke(app, ["db", "partitions", "--env", "local", "--ahead", "5", "--json"])
        assert json.loads(again.stdout)["missing"] == []
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for month in p.months_from(p.add_months(this_month(), p.MONTHS_AHEAD + 1), 5 - p.MONTHS_AHEAD):
                conn.execute(f"DROP TABLE IF EXISTS {p.partition_name(month)}")


def test_retention_refuses_a_month_the_newest_verified_backup_lacks_then_removes_it_whole(
        sandbox: SandboxState) -> None:
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=2, employees_per_run=20, tag="retention")  # this month: kept
    old = p.add_months(this_month(), -14)
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in p.create_statements(old):
            conn.execute(statement.encode())
    try:
        backed_up_and_verified()  # taken while the old month was still empty
        run, keys = add_old_month(url, sandbox, old)

        refused = runner.invoke(app, ["db", "retention", "--env", "local", "--older-than", "12", "--yes"])
        assert refused.exit_code == 3, refused.output
        assert p.partition_name(old) in refused.output and "newest verified backup" in refused.output
        with psycopg.connect(url) as conn:  # nothing changed
            assert conn.execute("SELECT count(*) FROM employee_results WHERE month = %s", (old,)).fetchone() == (5,)
            assert conn.execute("SELECT count(*) FROM validation_runs WHERE id = %s", (run,)).fetchone() == (1,)
        assert stored(sandbox, keys) == keys

        backup_id = backed_up_and_verified()
        plan = runner.invoke(app, ["db", "retention", "--env", "local", "--older-than", "12", "--plan", "--json"])
        assert plan.exit_code == 0, plan.output
        planned = json.loads(plan.stdout)
        assert planned["applied"] is False and planned["backup"] == backup_id
        assert planned["drop"] == [{"partition": p.partition_name(old), "month": f"{old:%Y-%m}", "rows": 5}]
        assert planned["delete"] == {"runs": 1, "uploads": 1}
        assert stored(sandbox, keys) == keys  # the plan changed nothing

        applied = runner.invoke(app, ["db", "retention", "--env", "local", "--older-than", "12", "--yes", "--json"])
        assert applied.exit_code == 0, applied.output
        assert json.loads(applied.stdout)["removed"] == {"partitions": 1, "uploads": 1, "objects": 3}
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass(%s)", (p.partition_name(old),)).fetchone() == (None,)
            assert conn.execute("SELECT count(*) FROM validation_runs WHERE id = %s", (run,)).fetchone() == (0,)
            assert conn.execute("SELECT count(*) FROM employee_results").fetchone() == (40,)  # this month's kept
        assert stored(sandbox, keys) == []
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM uploads WHERE id IN (SELECT upload_id FROM validation_runs WHERE month = %s)",
                         (old,))
            conn.execute(f"DROP TABLE IF EXISTS {p.partition_name(old)}")
