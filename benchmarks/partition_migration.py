"""How long migration 0006 (employee_results partitioned by month) locks the table, on the running sandbox.

    .venv/bin/python benchmarks/partition_migration.py [--gb 0.5] [--months 12]

For each size: a database at revision 0005 (the unpartitioned schema) filled like production (20 tenants,
one 500-employee run per payroll, the runs spread over --months months), then `upgrade head` in its own
process while a reader (as a dashboard would) runs `SELECT ... FROM employee_results LIMIT 1` every 0.1 s.
It prints the migration's wall time and the longest the reader waited (the lock as users feel it). Never
passes or fails on time; the database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.pg import connect, create_database, drop_database, with_database

TENANTS, EMPLOYEES, RUNS = 20, 500, 500


def alembic(url: str, target: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autoenroll.migrate", "upgrade", target],
                   env={**os.environ, "DATABASE_URL": url}, check=True)
    return time.perf_counter() - t0


def fill(url: str, size_mb: float, months: int) -> int:
    tenant = f"md5('tenant' || (r % {TENANTS}))::uuid"
    with connect(url, autocommit=True) as conn:
        conn.execute(f"""INSERT INTO tenants (id, name) SELECT md5('tenant' || t)::uuid, 'Employer ' || t
                         FROM generate_series(0, {TENANTS - 1}) t""")  # noqa: S608
        conn.execute(f"""INSERT INTO users (id, tenant_id, email, full_name, password_hash)
                         SELECT md5('user' || t)::uuid, md5('tenant' || t)::uuid, 'p' || t || '@e.ie', 'Clerk', 'x'
                         FROM generate_series(0, {TENANTS - 1}) t""")  # noqa: S608
        done = 0
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            if size >= size_mb * 1024 * 1024:
                return size
            span = f"generate_series({done + 1}, {done + RUNS}) r"
            done += RUNS
            conn.execute(f"""INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,
                                                  size_bytes, sha256, status)
                SELECT md5('upload' || r)::uuid, {tenant}, md5('user' || (r % {TENANTS}))::uuid, 'u/' || r, 'f.csv',
                       'text/csv', 40000, md5(r::text), 'validated' FROM {span}""")  # noqa: S608
            conn.execute(f"""INSERT INTO validation_runs (id, tenant_id, upload_id, status, row_count, started_at)
                SELECT md5('run' || r)::uuid, {tenant}, md5('upload' || r)::uuid, 'completed', {EMPLOYEES},
                       now() - (r % {months}) * interval '1 month' FROM {span}""")  # noqa: S608
            conn.execute(f"""INSERT INTO employee_results (tenant_id, run_id, row_number, employee_id, ppsn, first_name,
                    last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility, employee_contribution,
                    employer_contribution, state_contribution)
                SELECT {tenant}, md5('run' || r)::uuid, e, 'E' || e,
                       lpad(((r % {TENANTS}) * {EMPLOYEES} + e)::bigint * 7919 % 9999999 || '', 7, '0') || 'A',
                       'First' || e % 97, 'Surname' || e % 2000, date '1960-01-01' + e * 29 % 15000,
                       'person' || e || '@employer.ie', 2000 + (e * 37 + r) % 6000, 'monthly', 'automatic',
                       30, 30, 10
                FROM {span}, generate_series(1, {EMPLOYEES}) e""")  # noqa: S608
            print(f"  filled to {size / 1e6:.0f} MB", file=sys.stderr)


class Reader(threading.Thread):
    """A reader of `table` every 0.1 s; `longest` is the longest one query took."""

    def __init__(self, url: str, table: str) -> None:
        super().__init__(daemon=True)
        self.url, self.table, self.longest, self.stop = url, table, 0.0, threading.Event()

    def run(self) -> None:
        with connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                conn.execute(f"SELECT tenant_id FROM {self.table} LIMIT 1").fetchall()  # noqa: S608 - ours
                self.longest = max(self.longest, time.perf_counter() - t0)
                time.sleep(0.1)


def main() -> None:
    from ops.paths import sandbox_dir
    from ops.sandbox.state import load_state

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=0.5)
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    admin = load_state(sandbox_dir()).database_url("postgres", admin=True)
    name = f"bench_migrate_{int(args.gb * 1000)}"
    create_database(admin, name)
    url = with_database(admin, name)
    try:
        alembic(url, "0005")
        size = fill(url, args.gb * 1024, args.months)
        with connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
            rows = int(conn.execute("SELECT count(*) FROM employee_results").fetchone()[0])  # type: ignore[index]
        # A reader of results (a run's page) and one of runs (the dashboard); uploads, the only writers of
        # results, wait for the whole migration.
        readers = [Reader(url, "employee_results"), Reader(url, "validation_runs")]
        for reader in readers:
            reader.start()
        time.sleep(0.5)
        wall = alembic(url, "head")
        for reader in readers:
            reader.stop.set()
            reader.join()
        with connect(url) as conn:
            after = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            parts = int(conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'employee_results'::regclass"
                                     ).fetchone()[0])  # type: ignore[index]
        result = {"database_mb": round(size / 1e6), "rows": rows, "months": args.months, "partitions": parts,
                  "migration_s": round(wall, 2),
                  "longest_wait_s": {r.table: round(r.longest, 2) for r in readers},
                  "database_mb_after": round(after / 1e6), "load_average": round(os.getloadavg()[0], 1),
                  "cores": os.cpu_count()}
        print(f"{result['database_mb']} MB, {rows} result rows over {args.months} months: migration 0006 took "
              f"{wall:.1f} s (uploads wait that long); readers waited at most "
              + ", ".join(f"{r.longest:.1f} s ({r.table})" for r in readers) + f" (load {result['load_average']})")
        print(json.dumps(result))
    finally:
        drop_database(admin, name)


if __name__ == "__main__":
    main()
