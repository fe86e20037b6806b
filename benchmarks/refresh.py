"""Sandbox refresh beside the floor of copying the database, at several sizes, in one run.

    .venv/bin/python benchmarks/refresh.py [--gb 0.25,1,4] [--pairs 3]

Runs in its own sandbox (`.sandbox-bench/`), grows `main` with payroll results to each
size in turn (smallest first: twelve monthly payrolls of the same people, see `fill`), and
times as alternating pairs (medians of --pairs), each in its own process with its peak memory:
- the floor: `CREATE DATABASE ... TEMPLATE main` (a file-level copy; it needs main without
  connections, which is why the refresh itself can't use it while the app is serving);
- ours: `ops db refresh staging --from main` end to end (copy, mask, swap, migrate, smoke);
- what any masking refresh must pay, in the same rounds: the refresh's own copy path with
  masking turned off (`unmasked_copy`: the same COPY out -> COPY in, the same index and key
  builds), and the masking's hashing alone (one SELECT computing every masked column's
  digest over the big table and discarding them, timed inside its process);
- the refresh end to end with masking free: `ops db refresh` itself (lock, journal, swap,
  migrate, smoke, retention) with its copy step replaced by that unmasked copy, marked so the
  mask step passes it (benchmark only: it leaves unmasked data in the sandbox's staging). What
  it takes over the unmasked copy is what no masking, however fast, can win back.
Prints seconds per step, each as a multiple of the TEMPLATE floor, and how time and memory
grow with the size; never passes or fails on time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure

from ops.paths import REPO_ROOT
from ops.pg import connect, create_database, libpq_env, with_database
from ops.pg.tools import tool as pg_tool

ROOT = REPO_ROOT / ".sandbox-bench"
PLAIN = "floor_plain_copy"


MONTHS = 12  # months of results: the same people on every month's payroll
BATCH = 40_000  # people added per round (each on all MONTHS payrolls)
TENANT, USER, UPLOAD = ("00000000-0000-0000-0000-00000000000" + d for d in "123")


def fill(url: str, size_mb: float) -> int:
    """Grow main to `size_mb` with MONTHS monthly payrolls of the same people (a run per month, this month
    and the MONTHS - 1 before it, each month's partition made if missing): each round adds BATCH people to
    every month. A person's identity is the same every month; a third of them get a raise each month (pay
    recurs for the rest). Then ANALYZE of the partitioned table (see masking.memoized_select: the copy's
    cache of masked values is planned from those statistics, which autovacuum never gathers)."""
    from datetime import UTC, datetime

    from autoenroll.partitions import add_months, create_statements, month_start

    this = month_start(datetime.now(UTC).date())
    months = [add_months(this, -n) for n in range(MONTHS)]
    with connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, 'Bench Ltd') ON CONFLICT DO NOTHING", (TENANT,))
        conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash) VALUES"
                     " (%s, %s, 'bench@example.ie', 'Bench User', 'x') ON CONFLICT DO NOTHING", (USER, TENANT))
        conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,"
                     " size_bytes, sha256) VALUES (%s, %s, %s, 'k', 'f.csv', 'text/csv', 1, 'x')"
                     " ON CONFLICT DO NOTHING", (UPLOAD, TENANT, USER))
        for month in months:
            for statement in create_statements(month):
                conn.execute(statement)
            conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, status, month) VALUES"
                         " (md5(%s)::uuid, %s, %s, 'completed', %s) ON CONFLICT DO NOTHING",
                         (f"bench-run-{month}", TENANT, UPLOAD, month))
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            if size >= size_mb * 1024 * 1024:
                break
            start = int(conn.execute("SELECT coalesce(max(row_number), 0) FROM employee_results").fetchone()[0])  # type: ignore[index]
            for index, month in enumerate(months):
                conn.execute("""
                    INSERT INTO employee_results (tenant_id, run_id, month, row_number, employee_id, ppsn,
                        first_name, last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility)
                    SELECT %(tenant)s, md5(%(run)s)::uuid, %(month)s, g, 'E' || g,
                           lpad((g::bigint * 7919 %% 9999999)::text, 7, '0') || 'A', 'First' || (g %% 5000),
                           'Last' || (g %% 20000), date '1960-01-01' + (g %% 15000)::int, 'e' || g || '@example.ie',
                           20000 + g %% 60000 + CASE WHEN g %% 3 = 0 THEN 10 * %(index)s ELSE 0 END,
                           'monthly', 'automatic'
                    FROM generate_series(%(first)s, %(last)s) g""",
                             {"tenant": TENANT, "run": f"bench-run-{month}", "month": month, "index": index,
                              "first": start + 1, "last": start + BATCH})
            print(f"  filled to {size / 1e6:.0f} MB", file=sys.stderr)
        conn.execute("ANALYZE employee_results")
        return size


def step(args: list[str]) -> None:
    """One measured refresh, in this fresh process; prints its report as JSON."""
    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.adapters.local.branch_store import LocalBranchStore
    from ops.refresh import usecase
    from ops.sandbox.state import load_state
    from ops.wiring import resolve, smoke_check

    if args == ["plain-copy"]:
        from ops.refresh.masked_copy import unmasked_copy

        admin = load_state(ROOT).database_url("postgres", admin=True)
        create_database(admin, PLAIN)  # as the refresh's copy does, so it is timed alike
        rows = unmasked_copy(with_database(admin, "main"), with_database(admin, PLAIN))
        print(json.dumps({"rows": rows}))
        return
    if args == ["hash"]:
        hashing()
        return
    assert args in (["refresh"], ["refresh-free"]), args
    state = load_state(ROOT)
    env = resolve("local")
    kind = LocalBranchStore if args == ["refresh"] else _masking_free_store()
    store = kind(state.database_url("postgres", admin=True))
    report = usecase.refresh("local", store,
                             S3ObjectStore(env.storage, "backups"), target="staging", source="main",
                             masking_key=env.masking_key.get_secret_value() if env.masking_key else "k",
                             smoke=smoke_check(env))
    print(json.dumps(report.to_json()))


def _masking_free_store() -> type[Any]:
    """Imports ops lazily, as step() does (main() sets the sandbox's folder first)."""
    from ops.adapters.local.branch_store import LocalBranchStore
    from ops.refresh.masked_copy import mark_masked, unmasked_copy

    class MaskingFree(LocalBranchStore):
        """The sandbox's branches with a copy that masks nothing and says it did (the marker), so
        `ops db refresh` runs every other step as it does: the floor of the refresh, not a refresh."""

        def copy(self, source: str, name: str, *, masking_key: str | None = None) -> None:
            create_database(self.admin_url, name)
            unmasked_copy(self.url(source), self.url(name))
            with connect(self.url(name)) as conn:
                mark_masked(conn, {})
                conn.commit()

    return MaskingFree


def floor(admin_env: dict[str, str]) -> measure.Run:
    psql = [pg_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    measure.run([*psql, "DROP DATABASE IF EXISTS floor_copy"], admin_env)
    run = measure.run([*psql, "CREATE DATABASE floor_copy TEMPLATE main"], admin_env)
    measure.run([*psql, "DROP DATABASE floor_copy"], admin_env)
    return run


def hashing() -> None:
    """The masking's digests alone over the big table, in one SELECT (PostgreSQL may run it as a
    parallel scan); prints its seconds, timed around the statement, and the plan's shape."""
    from autoenroll.masking import digests_only_select
    from ops.refresh.masked_copy import KEY_SETTING
    from ops.sandbox.state import load_state
    from ops.wiring import resolve

    env = resolve("local")
    key = env.masking_key.get_secret_value() if env.masking_key else "k"
    with connect(with_database(load_state(ROOT).database_url("postgres", admin=True), "main"), autocommit=True) as conn:
        columns = [str(r[0]) for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'employee_results'::regclass AND attnum > 0"
            " AND NOT attisdropped ORDER BY attnum")]
        conn.execute("SET jit = off")  # as the copy's readers
        conn.execute("SELECT set_config(%s, %s, false)", (KEY_SETTING, key))
        query = digests_only_select("employee_results", columns, key=f"current_setting('{KEY_SETTING}')")
        plan = [str(r[0]) for r in conn.execute("EXPLAIN " + query)]
        t0 = time.perf_counter()
        conn.execute(query).fetchone()
        seconds = time.perf_counter() - t0
    workers = next((line.split("Workers Planned:")[1].strip() for line in plan if "Workers Planned" in line), "0")
    print(json.dumps({"seconds": seconds, "parallel_workers_planned": int(workers)}))


def plain_copy(admin_env: dict[str, str]) -> measure.Run:
    psql = [pg_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", "-c"]
    measure.run([*psql, f"DROP DATABASE IF EXISTS {PLAIN}"], admin_env)
    run = measure.run(measure.one("plain-copy"))
    measure.run([*psql, f"DROP DATABASE {PLAIN}"], admin_env)
    return run


def hash_floor() -> measure.Run:
    run = measure.run(measure.one("hash"))
    return measure.Run(float(run.out["seconds"]), run.peak_mb, run.out)  # type: ignore[arg-type]


def main() -> None:
    args = measure.parser(__doc__).parse_args()
    os.environ["OPS_SANDBOX_DIR"] = str(ROOT)
    if args.one:
        step(args.one)
        return
    from ops.sandbox import components as c
    from ops.sandbox import manager
    from ops.sandbox.state import load_state

    manager.up(ROOT)
    rows: dict[str, dict[float, measure.Run]] = {}
    db_mb: dict[float, float] = {}
    lines: list[str] = []
    try:
        state = load_state(ROOT)
        admin_env = {**libpq_env(state.database_url("postgres", admin=True)), "PATH": os.environ["PATH"]}
        # The floor needs main without connections: stop the app processes for it.
        for role in ("primary", "standby"):
            c.stop(state, c.component(f"app-{role}"))
        for gb in sorted(args.gb):
            db_mb[gb] = fill(state.database_url("main", admin=True), gb * 1024) / 1e6
            floors, refreshes, plains, hashes, frees = measure.rounds(
                [partial(floor, admin_env), partial(measure.run, measure.one("refresh")),
                 partial(plain_copy, admin_env), hash_floor, partial(measure.run, measure.one("refresh-free"))],
                args.pairs)
            rows.setdefault("floor: CREATE DATABASE ... TEMPLATE main", {})[gb] = measure.median(floors)
            rows.setdefault("ours: ops db refresh staging --from main", {})[gb] = measure.median(refreshes)
            rows.setdefault("floor: the refresh's copy, masking off", {})[gb] = measure.median(plains)
            rows.setdefault("floor: masking's digests alone (1 SELECT)", {})[gb] = measure.median(hashes)
            rows.setdefault("floor: the refresh end to end, masking free", {})[gb] = measure.median(frees)
            for name in ("copy", "mask", "swap", "migrate", "smoke", "retention"):
                seconds = sorted(float(r.out["timings_s"][name]) for r in refreshes)  # type: ignore[index]
                rows.setdefault(f"    {name}", {})[gb] = measure.Run(seconds[len(seconds) // 2], 0.0)
            masked = int(refreshes[-1].out["total_rows_masked"])  # type: ignore[call-overload]
            copies = [measure.Run(float(r.out["timings_s"]["copy"]), 0.0) for r in refreshes]  # type: ignore[index]
            lines.append(f"{db_mb[gb]:.0f} MB, {masked} rows masked ({MONTHS} months of the same people): refresh is "
                         f"{measure.ratio_of_pairs(refreshes, plains):.2f}x its own copy with masking off (goal <="
                         f" 1.5x; its masked copy step alone {measure.ratio_of_pairs(copies, plains):.2f}x) and "
                         f"{measure.ratio_of_pairs(refreshes, floors):.2f}x the floor of copying (TEMPLATE, which "
                         "can't run while the app serves); the copy with masking off is "
                         f"{measure.ratio_of_pairs(plains, floors):.2f}x, the masking's digests alone "
                         f"{measure.ratio_of_pairs(hashes, floors):.2f}x "
                         f"({hashes[-1].out['parallel_workers_planned']} parallel workers planned); the refresh end"
                         f" to end with masking free is {measure.ratio_of_pairs(frees, plains):.2f}x the copy with"
                         " masking off (what no masking can win back: lock, journal, swap, migrate, smoke, retention)")
            # Each size as it finishes (stderr): a long run interrupted keeps what it measured.
            steps = {k.strip(): round(v[gb].seconds, 2) for k, v in rows.items() if gb in v}
            print(f"  {lines[-1]}; load average {os.getloadavg()[0]:.1f}; {steps}", file=sys.stderr, flush=True)
    finally:
        manager.down(ROOT)
    print(f"\n{os.cpu_count()} cores; medians of {args.pairs} alternating pairs; peak memory = largest process")
    for line in lines:
        print(f"  {line}")
    print("\nscaling (median seconds; peak memory; steps from the refresh's own timings)")
    for line in measure.scaling(rows, db_mb):
        print(line)


if __name__ == "__main__":
    main()
