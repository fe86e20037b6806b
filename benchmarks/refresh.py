"""Sandbox refresh of a ~1 GB database beside the floor of copying it, in one run.

    .venv/bin/python benchmarks/refresh.py [--size-mb 1024]

Runs in its own sandbox (`.sandbox-bench/`), fills `main` with payroll results until the
database is at least --size-mb, then times:
- the floor: `CREATE DATABASE ... TEMPLATE main` (a file-level copy; it needs main without
  connections, which is why the refresh itself can't use it while the app is serving);
- ours: `ops db refresh staging --from main` end to end (copy, mask, swap, migrate, smoke).
Prints seconds per step and the ratio; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.adapters.s3_store import S3ObjectStore
from ops.cli.db import smoke_check
from ops.environment import resolve
from ops.paths import REPO_ROOT
from ops.pg import connect, drop_database
from ops.refresh import usecase
from ops.refresh.branch_stores import LocalBranchStore
from ops.sandbox import components as c
from ops.sandbox import manager
from ops.sandbox.state import load_state


def fill(url: str, size_mb: int) -> int:
    with connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'Bench Ltd')"
                      " ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash) VALUES"
                     " ('00000000-0000-0000-0000-000000000002', '00000000-0000-0000-0000-000000000001',"
                     " 'bench@example.ie', 'Bench User', 'x') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,"
                     " size_bytes, sha256) VALUES ('00000000-0000-0000-0000-000000000003',"
                     " '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000002', 'k', 'f.csv',"
                     " 'text/csv', 1, 'x') ON CONFLICT DO NOTHING")
        conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, status) VALUES"
                     " ('00000000-0000-0000-0000-000000000004', '00000000-0000-0000-0000-000000000001',"
                     " '00000000-0000-0000-0000-000000000003', 'completed') ON CONFLICT DO NOTHING")
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            if size >= size_mb * 1024 * 1024:
                return size
            conn.execute("""
                INSERT INTO employee_results (tenant_id, run_id, row_number, employee_id, ppsn, first_name,
                    last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility)
                SELECT '00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-000000000004', g,
                       'E' || g, lpad((g::bigint * 7919 % 9999999)::text, 7, '0') || 'A', 'First' || (g % 5000),
                       'Last' || (g % 20000), date '1960-01-01' + (g % 15000)::int, 'e' || g || '@example.ie',
                       20000 + g % 60000, 'monthly', 'automatic'
                FROM generate_series(1, 500000) g""")
            print(f"  filled to {size / 1e6:.0f} MB", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()
    root = REPO_ROOT / ".sandbox-bench"
    os.environ["OPS_SANDBOX_DIR"] = str(root)
    manager.up(root)
    try:
        state = load_state(root)
        admin = state.database_url("postgres", admin=True)
        size = fill(state.database_url("main", admin=True), args.size_mb)
        env = resolve("local")
        # The floor needs main without connections: stop the app processes for it.
        for role in ("primary", "standby"):
            c.stop(state, c.component(f"app-{role}"))
        drop_database(admin, "floor_copy")
        t0 = time.perf_counter()
        with connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE floor_copy TEMPLATE main")
        floor = time.perf_counter() - t0
        drop_database(admin, "floor_copy")
        t0 = time.perf_counter()
        report = usecase.refresh("local", LocalBranchStore(admin), S3ObjectStore(env.storage, "backups"),
                                 target="staging", source="main",
                                 masking_key=env.masking_key.get_secret_value() if env.masking_key else "k",
                                 smoke=smoke_check(env, "staging"))
        ours = time.perf_counter() - t0
    finally:
        manager.down(root)
    print(f"database: {size / 1e6:.0f} MB, {sum(report.rows_masked.values())} rows masked, {os.cpu_count()} cores")
    print(f"  floor: CREATE DATABASE ... TEMPLATE main      {floor:8.2f} s")
    print(f"  ours: ops db refresh staging --from main      {ours:8.2f} s")
    for step, seconds in report.timings.items():
        print(f"      {step:<10} {seconds:8.2f} s")
    print(f"\nrefresh: {ours / floor:.2f}x the floor of copying (and the floor can't run while the app serves)")


if __name__ == "__main__":
    main()
