"""The masked copy over months of results: the same people every month, each distinct value digested once,
the rows and their masked values the same as masking row by row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from autoenroll.masking import masked_select, masking_groups
from autoenroll.partitions import add_months, create_statements, month_start, partition_name
from ops.pg import create_database, drop_database
from ops.refresh.masked_copy import KEY_SETTING, masked_copy, plan_units
from ops.sandbox.state import SandboxState
from tests.seed import clear, seed

pytestmark = pytest.mark.integration
KEY = "months key"
MONTHS = 3
# Enough rows that the planner expects repeats and caches (at a few dozen rows it rightly does not bother).
PEOPLE = 300
PERSON = ("employee_id", "ppsn", "first_name", "last_name", "date_of_birth", "email")


@pytest.fixture()
def months(sandbox: SandboxState) -> Iterator[SandboxState]:
    """Two payrolls of PEOPLE people each, for three months: this month's (the seed's) and the next two, the
    same people each month (a new run per month), their pay changing by a euro a month."""
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=2, employees_per_run=PEOPLE, tag="months")
    this = month_start(datetime.now(UTC).date())
    with psycopg.connect(url, autocommit=True) as conn:
        for n in range(1, MONTHS):
            month = add_months(this, n)
            for statement in create_statements(month):
                conn.execute(statement)
            runs = conn.execute("SELECT id FROM validation_runs WHERE month = %s", (this,)).fetchall()
            for (run,) in runs:
                conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, status, row_count, month)"
                             " SELECT md5(id::text || %s)::uuid, tenant_id, upload_id, status, row_count, %s"
                             " FROM validation_runs WHERE id = %s", (n, month, run))
                conn.execute(
                    "INSERT INTO employee_results (tenant_id, run_id, month, row_number, employee_id, ppsn,"
                    " first_name, last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility)"
                    " SELECT tenant_id, md5(run_id::text || %s)::uuid, %s, row_number, employee_id, ppsn,"
                    " first_name, last_name, date_of_birth, email, gross_pay + %s, pay_frequency, eligibility"
                    " FROM employee_results WHERE run_id = %s", (n, month, n, run))
        # The partitioned table's own statistics, which show the repeats the planner caches for (autovacuum
        # never gathers them: see memoized_select).
        conn.execute("ANALYZE employee_results")
    yield sandbox
    clear(url)


def memoize_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if plan["Node Type"] == "Memoize":
        yield plan
    for child in plan.get("Plans", []):
        yield from memoize_nodes(child)


def test_each_distinct_personal_value_is_digested_once_across_months(months: SandboxState) -> None:
    with psycopg.connect(months.database_url("main", admin=True), autocommit=True) as conn:
        (stream,) = [u for u in plan_units(conn, masked=True, jobs=1) if u.table == "employee_results"]
        leaves = [str(r[0]) for r in conn.execute(
            "SELECT relid::text FROM pg_partition_tree('employee_results') WHERE isleaf")]
        assert sorted(stream.relations) == sorted(leaves)  # one stream reads every month (empty ones ahead too)
        assert {partition_name(add_months(month_start(datetime.now(UTC).date()), n)) for n in range(MONTHS)} <= set(
            leaves)
        conn.execute("SELECT set_config(%s, %s, false)", (KEY_SETTING, KEY))
        conn.execute("SET jit = off")
        (plan,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stream.select()).fetchone()  # type: ignore[misc]
        rows, people, pays = conn.execute(
            f"SELECT count(*), count(DISTINCT ({', '.join(PERSON)})), count(DISTINCT gross_pay)"  # noqa: S608
            " FROM employee_results").fetchone()  # type: ignore[misc]
    assert rows == 2 * PEOPLE * MONTHS and people == 2 * PEOPLE
    # One cache per group of masked columns; a miss is one evaluation of the group's digests and rules.
    misses = {tuple(node["Cache Key"].replace("s.", "").split(", ")): node["Cache Misses"]
              for node in memoize_nodes(plan[0]["Plan"])}
    assert set(misses) == set(masking_groups("employee_results", stream.columns))
    assert misses[PERSON] == people, "each person's identity is masked once, not once a month"
    assert misses[("gross_pay",)] == pays


def test_with_two_streams_each_person_is_digested_by_one_of_them(months: SandboxState) -> None:
    """Each stream reads every month for its share of the people: together they digest each identity once (as
    streams of months, each digested every person it met), and each keeps its cache of masked values."""
    with psycopg.connect(months.database_url("main", admin=True), autocommit=True) as conn:
        streams = [u for u in plan_units(conn, masked=True, jobs=2) if u.table == "employee_results"]
        conn.execute("SELECT set_config(%s, %s, false)", (KEY_SETTING, KEY))
        conn.execute("SET jit = off")
        identity_misses, rows = [], 0
        for stream in streams:
            (plan,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stream.select()).fetchone()  # type: ignore[misc]
            (node,) = [n for n in memoize_nodes(plan[0]["Plan"]) if n["Cache Key"].count(",") > 0]
            identity_misses.append(node["Cache Misses"])
            rows += plan[0]["Plan"]["Actual Rows"]
    assert sorted(s.share for s in streams) == [(0, 2), (1, 2)]
    assert rows == 2 * PEOPLE * MONTHS  # every row in one stream
    assert sum(identity_misses) == 2 * PEOPLE, "each person's identity is masked by one stream, once"
    assert all(m > 0 for m in identity_misses)


def test_the_copy_of_months_holds_the_rows_masking_row_by_row_gives(months: SandboxState) -> None:
    source, admin = months.database_url("main", admin=True), months.database_url("postgres", admin=True)
    create_database(admin, "months_copy")
    try:
        copy = months.database_url("months_copy", admin=True)
        counts = masked_copy(source, copy, KEY, jobs=2)
        assert counts["employee_results"] == 2 * PEOPLE * MONTHS
        with psycopg.connect(source) as conn:
            columns = [str(r[0]) for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'employee_results'::regclass AND attnum > 0"
                " AND NOT attisdropped ORDER BY attnum")]
            expected = sorted(conn.execute(masked_select("employee_results", columns), {"key": KEY}).fetchall())
            per_month = conn.execute("SELECT tableoid::regclass::text, count(*) FROM employee_results"
                                     " GROUP BY 1 ORDER BY 1").fetchall()
        with psycopg.connect(copy) as conn:
            got = sorted(conn.execute(f"SELECT {', '.join(columns)} FROM employee_results").fetchall())  # noqa: S608
            copied_per_month = conn.execute("SELECT tableoid::regclass::text, count(*) FROM employee_results"
                                            " GROUP BY 1 ORDER BY 1").fetchall()
        assert got == expected
        assert copied_per_month == per_month and len(per_month) == MONTHS
    finally:
        drop_database(admin, "months_copy")


def test_a_streams_cache_is_sized_for_the_people_so_it_never_evicts(months: SandboxState, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past its size a stream's cache evicts, and then hits never (every month lists its people in the same
    order): the 4 GB refresh digested every identity every month. The stream's work_mem is sized from the
    catalog's count of people; here the floor is lowered to PostgreSQL's least (64 kB), below what 600
    people need, so only the sizing keeps them all."""
    import ops.refresh.masked_copy as mc

    monkeypatch.setattr(mc, "MEMO_WORK_MEM_FLOOR_KB", 64)
    with psycopg.connect(months.database_url("main", admin=True), autocommit=True) as conn:
        (stream,) = [u for u in plan_units(conn, masked=True, jobs=1) if u.table == "employee_results"]
        people = mc.people_estimate(conn, "employee_results")
        conn.execute("SELECT set_config(%s, %s, false)", (KEY_SETTING, KEY))
        conn.execute("SET jit = off")

        def identity_cache(work_mem: str) -> dict[str, Any]:
            conn.execute(f"SET work_mem = '{work_mem}'")
            (plan,) = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stream.select()).fetchone()  # type: ignore[misc]
            (node,) = [n for n in memoize_nodes(plan[0]["Plan"]) if n["Cache Key"].count(",") > 0]
            return node

        sized, starved = identity_cache(stream.work_mem), identity_cache("64kB")
    assert people >= 2 * PEOPLE  # the biggest month's rows or ANALYZE's distinct identities
    assert stream.work_mem == mc.memo_work_mem(people, 2.0) and stream.work_mem != "64kB"
    assert sized["Cache Evictions"] == 0 and sized["Cache Misses"] == 2 * PEOPLE
    assert starved["Cache Evictions"] > 0 and starved["Cache Misses"] > 2 * PEOPLE  # what the sizing prevents


def test_the_cache_size_follows_the_people_within_its_bounds() -> None:
    import ops.refresh.masked_copy as mc

    assert mc.memo_work_mem(0, 2.0) == f"{mc.MEMO_WORK_MEM_FLOOR_KB}kB"
    assert mc.memo_work_mem(1_160_000, 2.0) == f"{int(1_160_000 * 235 * 1.25 / 2 / 1024)}kB"  # the 4 GB row's
    assert mc.memo_work_mem(800_000, 1.0) == f"{int(800_000 * 235 * 1.25 / 1024)}kB"
    assert mc.memo_work_mem(50_000_000, 2.0) == f"{mc.MEMO_WORK_MEM_CAP_KB}kB"
