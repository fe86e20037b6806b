"""employee_results partitioned by month: an upload lands in its run's month, a month with no partition is an
error naming it (nothing of the upload kept), row-level security holds on the partitions too, and migration
0006 converts a database with months of rows (every row, id and key kept).

Real PostgreSQL (the test sandbox's), the app through Caddy, migrations as `ops db migrate` runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest
from alembic import command

from autoenroll import partitions as p
from autoenroll.migrate import alembic_config
from ops.pg import create_database, drop_database, libpq_env, with_database
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.payroll import csv_file

pytestmark = pytest.mark.integration
BUCKET = "autoenroll-local-uploads"


def this_month() -> date:
    return p.month_start(datetime.now(UTC).date())


@pytest.mark.unit
def test_month_arithmetic_names_and_the_missing_partition_error() -> None:
    assert p.add_months(date(2026, 11, 1), 3) == date(2027, 2, 1)
    assert p.add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert p.partition_name(date(2027, 2, 1)) == "employee_results_y2027m02"
    assert p.month_of_partition("employee_results_y2027m02") == date(2027, 2, 1)
    assert p.month_of_partition("employee_results_old") is None
    assert p.is_missing_partition('no partition of relation "employee_results" found for row')
    assert not p.is_missing_partition('new row for relation "employee_results" violates check constraint "x"')


def counts(url: str, tenant_id: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return tuple(int(conn.execute(f"SELECT count(*) FROM {t} WHERE tenant_id = %s",  # type: ignore[index]  # noqa: S608
                                      (tenant_id,)).fetchone()[0])
                     for t in ("uploads", "validation_runs", "employee_results"))  # type: ignore[return-value]


def test_an_upload_lands_in_its_months_partition(sandbox: SandboxState, account: Account) -> None:
    answer = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "p.csv"},
                                 content=csv_file(rows=4))
    assert answer.status_code == 201, answer.text
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        where = conn.execute("SELECT tableoid::regclass::text, month, count(*) FROM employee_results"
                             " WHERE run_id = %s GROUP BY 1, 2", (answer.json()["run_id"],)).fetchall()
        run_month = conn.execute("SELECT month FROM validation_runs WHERE id = %s",
                                 (answer.json()["run_id"],)).fetchone()
    assert where == [(p.partition_name(this_month()), this_month(), 4)]
    assert run_month == (this_month(),)


def test_an_upload_for_a_month_with_no_partition_fails_naming_it_and_keeps_nothing(
        sandbox: SandboxState, account: Account) -> None:
    admin = sandbox.database_url("main", admin=True)
    month, name = this_month(), p.partition_name(this_month())
    bounds = f"FOR VALUES FROM ('{month}') TO ('{p.add_months(month, 1)}')"
    before = counts(admin, account.tenant_id)
    s3 = c.s3_client(sandbox)
    objects_before = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    # Detached, not dropped: the month's rows of other tests stay, and it is attached again after.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE employee_results DETACH PARTITION {name}")
        try:
            answer = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "p.csv"},
                                         content=csv_file(rows=3))
        finally:
            conn.execute(f"ALTER TABLE employee_results ATTACH PARTITION {name} {bounds}")
    assert answer.status_code == 503, answer.text
    assert f"{month:%Y-%m}" in answer.json()["error"] and "ops db partitions --ensure" in answer.json()["error"]
    assert counts(admin, account.tenant_id) == before == (0, 0, 0)
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == objects_before


def test_the_app_role_reaches_rows_only_through_the_parent_and_its_policy(sandbox: SandboxState,
                                                                         account: Account) -> None:
    answer = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "p.csv"},
                                 content=csv_file(rows=2))
    assert answer.status_code == 201, answer.text
    app_url = sandbox.database_url("main")  # the app's own role, under row-level security
    with psycopg.connect(app_url) as conn:
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(uuid.uuid4()),))
        assert conn.execute("SELECT count(*) FROM employee_results").fetchone() == (0,)  # another tenant: nothing
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (account.tenant_id,))
        assert conn.execute("SELECT count(*) FROM employee_results").fetchone() == (2,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"SELECT count(*) FROM {p.partition_name(this_month())}")  # noqa: S608


def alembic(url: str, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "autoenroll.migrate", *args], env={**os.environ, "DATABASE_URL": url},
                   check=True, capture_output=True, timeout=300)


def test_migration_0006_converts_months_of_rows_keeping_every_row_id_and_key(sandbox: SandboxState) -> None:
    admin = sandbox.database_url("postgres", admin=True)
    name = f"partition_{uuid.uuid4().hex[:8]}"
    create_database(admin, name)
    url = with_database(admin, name)
    try:
        alembic(url, "upgrade", "0005")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-00000000000a', 'T')")
            conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash) VALUES"
                         " ('00000000-0000-0000-0000-00000000000b', '00000000-0000-0000-0000-00000000000a',"
                         " 'a@b.ie', 'A', 'x')")
            # Three runs, in three months (one of them 14 months back), 5 rows each.
            for i, started in enumerate(("2025-10-20 23:30+00", "2026-06-01 00:10+00", "2026-06-30 23:59+00")):
                upload, run = uuid.uuid4(), uuid.uuid4()
                conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename,"
                             " content_type, size_bytes, sha256) VALUES (%s, '00000000-0000-0000-0000-00000000000a',"
                             " '00000000-0000-0000-0000-00000000000b', %s, 'f.csv', 'text/csv', 1, 'x')",
                             (upload, f"k{i}"))
                conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, started_at) VALUES"
                             " (%s, '00000000-0000-0000-0000-00000000000a', %s, %s)", (run, upload, started))
                conn.execute("INSERT INTO employee_results (tenant_id, run_id, row_number, ppsn)"
                             " SELECT '00000000-0000-0000-0000-00000000000a', %s, g, 'P' || g"
                             " FROM generate_series(1, 5) g", (run,))
            before = conn.execute("SELECT id, run_id, row_number, ppsn FROM employee_results ORDER BY id").fetchall()
        alembic(url, "upgrade", "head")
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT id, run_id, row_number, ppsn FROM employee_results ORDER BY id"
                                ).fetchall() == before
            per_month = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM employee_results"
                                          " GROUP BY 1").fetchall())
            assert per_month == {"employee_results_y2025m10": 5, "employee_results_y2026m06": 10}
            made = {str(r[0]) for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'employee_results'::regclass").fetchall()}
            # every month from the oldest with rows to MONTHS_AHEAD past the current one
            span = p.months_from(date(2025, 10, 1), (this_month().year - 2025) * 12 + this_month().month - 10
                                 + 1 + p.MONTHS_AHEAD)
            assert made == {p.partition_name(m) for m in span}
            # the identity goes on from the old sequence: a new row gets the next id
            run = conn.execute("SELECT id, month FROM validation_runs WHERE month = '2026-06-01' LIMIT 1").fetchone()
            new_id = conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number) VALUES"
                                  " ('00000000-0000-0000-0000-00000000000a', %s, %s, 99) RETURNING id",
                                  run).fetchone()  # type: ignore[arg-type]
            assert new_id == (max(r[0] for r in before) + 1,)
            # the composite key: a row can't claim another month than its run's
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number) VALUES"
                             " ('00000000-0000-0000-0000-00000000000a', %s, '2025-10-01', 98)", (run[0],))  # type: ignore[index]
            after = conn.execute("SELECT id, run_id, row_number, ppsn FROM employee_results ORDER BY id").fetchall()
        # Back down to one table (every row kept), and up again.
        command.downgrade(alembic_config(url), "0005")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT relkind FROM pg_class WHERE relname = 'employee_results'").fetchone() == ("r",)
            assert conn.execute("SELECT id, run_id, row_number, ppsn FROM employee_results ORDER BY id"
                                ).fetchall() == after
        alembic(url, "upgrade", "head")
        with psycopg.connect(url, autocommit=True) as conn:
            # erasing the tenant still reaches every row, through the run
            conn.execute("DELETE FROM tenants")
            assert conn.execute("SELECT count(*) FROM employee_results").fetchone() == (0,)
    finally:
        drop_database(admin, name)


def _keys_per_partition(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, list[str]]:
    """Each partition of employee_results -> the foreign keys to validation_runs declared on it (not clones
    of a key on the parent: those have a conparentid, and pg_dump writes them as the parent's one entry)."""
    rows = conn.execute(
        "SELECT c.relname, k.conname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f' AND k.conparentid = 0"
        "  AND k.confrelid = 'validation_runs'::regclass"
        " WHERE i.inhparent = 'employee_results'::regclass ORDER BY 1, 2").fetchall()
    out: dict[str, list[str]] = {}
    for partition, key in rows:
        out.setdefault(str(partition), []).extend([str(key)] if key else [])
    return out


def test_migration_0007_keys_each_month_so_rows_need_their_run_and_go_with_it(sandbox: SandboxState,
                                                                            tmp_path: Path) -> None:
    """After 0007 every partition, old or made later by `ops db partitions --ensure`, has its own key to its
    run (and the parent none): a directory dump then lists a key per month, which pg_restore --jobs runs
    beside other months' indexes. In every month a row without its run is refused, and deleting a run (as
    erasure and retention do) deletes its rows."""
    from ops.partitions import ensure
    from ops.pg.tools import tool

    admin = sandbox.database_url("postgres", admin=True)
    name = f"partition_{uuid.uuid4().hex[:8]}"
    create_database(admin, name)
    url = with_database(admin, name)
    tenant = "00000000-0000-0000-0000-00000000000a"
    try:
        alembic(url, "upgrade", "0006")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'T')", (tenant,))
            conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash) VALUES"
                         " ('00000000-0000-0000-0000-00000000000b', %s, 'a@b.ie', 'A', 'x')", (tenant,))
        alembic(url, "upgrade", "head")
        far = date(2099, 1, 1)  # a month made after the migration, the way the nightly job makes them
        assert ensure(url, [far]) == [p.partition_name(far)]
        with psycopg.connect(url, autocommit=True) as conn:
            keys = _keys_per_partition(conn)
            assert p.partition_name(far) in keys and p.partition_name(this_month()) in keys
            assert keys == {part: [p.foreign_key_name(p.month_of_partition(part))]  # type: ignore[arg-type]
                            for part in keys}
            assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'employee_results'::regclass"
                                " AND contype = 'f'").fetchone() == (0,)
            months = [p.month_of_partition(part) for part in keys]
            for month in months:
                with pytest.raises(psycopg.errors.ForeignKeyViolation, match="run_fkey"):
                    conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number)"
                                 " VALUES (%s, %s, %s, 1)", (tenant, uuid.uuid4(), month))
            # A run in each month with two rows; deleting the runs deletes every row, month by month.
            for i, month in enumerate(months):
                upload, run = uuid.uuid4(), uuid.uuid4()
                conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename,"
                             " content_type, size_bytes, sha256) VALUES (%s, %s,"
                             " '00000000-0000-0000-0000-00000000000b', %s, 'f.csv', 'text/csv', 1, 'x')",
                             (upload, tenant, f"k{i}"))
                conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, month) VALUES (%s, %s, %s, %s)",
                             (run, tenant, upload, month))
                conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number)"
                             " SELECT %s, %s, %s, g FROM generate_series(1, 2) g", (tenant, run, month))
            assert conn.execute("SELECT count(DISTINCT tableoid) FROM employee_results").fetchone() == (len(months),)
            conn.execute("DELETE FROM validation_runs")
            assert conn.execute("SELECT count(*) FROM employee_results").fetchone() == (0,)
        # What pg_restore sees: one FK CONSTRAINT entry per month, none on the parent.
        # The password reaches pg_dump by its environment (libpq_env), never its argv.
        schema = tmp_path / "schema.pgc"
        subprocess.run([tool("pg_dump"), "--schema-only", "--format=custom", "-f", str(schema)],
                       env={**os.environ, **libpq_env(url)}, check=True, capture_output=True, timeout=120)
        listing = subprocess.run([tool("pg_restore"), "--list", str(schema)], check=True, capture_output=True,
                                 text=True, timeout=60).stdout
        # "<id>; 2606 <oid> FK CONSTRAINT public <table> <key> <owner>"
        fks = sorted(tuple(line.split(" FK CONSTRAINT ")[1].split()[1:3]) for line in listing.splitlines()
                     if " FK CONSTRAINT public employee_results" in line)
        assert fks == sorted((part, name) for part, (name,) in keys.items())
        # Down to one key on the parent again (every partition still keyed, through it).
        command.downgrade(alembic_config(url), "0006")
        with psycopg.connect(url) as conn:
            assert _keys_per_partition(conn) == {part: [] for part in keys}
            assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'employee_results'::regclass"
                                " AND contype = 'f'").fetchone() == (1,)
    finally:
        drop_database(admin, name)
