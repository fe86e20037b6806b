"""Backup and restore, side by side in one run, on a generated database (default >= 1 GB).

    .venv/bin/python benchmarks/backup.py [--size-mb 1024] [--rounds 1]

Compares, on the running sandbox (`ops sandbox up`):
- the seed's baseline: `pg_dump | gzip` to a file, then upload it (and for restore:
  download, `gunzip | psql`);
- the floor: `pg_dump --format=custom --compress=0` to /dev/null (restore: `pg_restore`
  from a local uncompressed dump);
- ours: `ops backup create` / `ops backup restore` (pg_dump | zstd | age, streamed by
  multipart upload; download | age | zstd | pg_restore in one transaction).
Prints times, sizes and ratios; never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ops.adapters.s3_store import S3ObjectStore
from ops.backup import usecases as uc
from ops.environment import resolve
from ops.paths import pg_tool, sandbox_dir
from ops.pg import connect, create_database, drop_database, libpq_env, with_database
from ops.sandbox import manager
from ops.sandbox.state import load_state

DB = "bench_backup"


def fill(admin: str, size_mb: int) -> int:
    """Create (once) a database of at least size_mb with payroll-like rows: ids, hashes, names, dates, amounts."""
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone()
    if not exists:
        create_database(admin, DB)
    url = with_database(admin, DB)
    with connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS payroll_rows (
            id bigint PRIMARY KEY, tenant int, ppsn text, first_name text, last_name text, dob date,
            gross numeric(12,2), frequency text, note text)""")
        batch = 500_000
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            if size >= size_mb * 1024 * 1024:
                return size
            start = int(conn.execute("SELECT coalesce(max(id), 0) FROM payroll_rows").fetchone()[0])  # type: ignore[index]
            conn.execute(f"""INSERT INTO payroll_rows
                SELECT g, g % 500, lpad((g::bigint * 7919 % 9999999)::text, 7, '0') || chr(65 + (g % 23)::int),
                       (ARRAY['Seán','Máire','Aoife','Conor','Niamh','Pádraig'])[1 + (g % 6)::int],
                       'Surname' || (g % 2000), date '1960-01-01' + (g % 15000)::int,
                       (20000 + g % 60000) + (g % 100) / 100.0,
                       (ARRAY['weekly','fortnightly','monthly'])[1 + (g % 3)::int],
                       md5(g::text) || ' ' || repeat('x', (g % 40)::int)
                FROM generate_series({start + 1}, {start + batch}) g""")  # noqa: S608 - integers we computed
            print(f"  filled to {size / 1e6:.0f} MB", file=sys.stderr)


def timed(argv: str, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", argv], env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    args = parser.parse_args()

    root = sandbox_dir()
    manager.up(root)
    state = load_state(root)
    admin = state.database_url("postgres", admin=True)
    print(f"generating a database of >= {args.size_mb} MB ...", file=sys.stderr)
    db_bytes = fill(admin, args.size_mb)
    url = with_database(admin, DB)
    env = resolve("local").model_copy(update={"database_urls": {"main": SecretStr(url)}})
    store = S3ObjectStore(env.storage, "backups")
    s3 = boto3.client("s3", endpoint_url=state.s3.endpoint_url, aws_access_key_id=state.s3.access_key,
                      aws_secret_access_key=state.s3.secret_key, region_name="us-east-1")
    bucket = state.s3.buckets["backups"]
    pg_env = {**libpq_env(url), "PATH": os.environ["PATH"]}
    dump, restore_tool, psql = pg_tool("pg_dump"), pg_tool("pg_restore"), pg_tool("psql")
    results: dict[str, tuple[float, int | None]] = {}
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        work = Path(tmp)
        # --- backup
        results["floor: pg_dump -Fc -Z0 > /dev/null"] = (
            timed(f"{dump} --format=custom --compress=0 > /dev/null", pg_env), None)
        t0 = time.perf_counter()
        subprocess.run(["bash", "-o", "pipefail", "-c", f"{dump} | gzip > {work}/baseline.sql.gz"], env=pg_env,
                       check=True)
        s3.upload_file(str(work / "baseline.sql.gz"), bucket, "bench/baseline.sql.gz")
        baseline_size = (work / "baseline.sql.gz").stat().st_size
        results["baseline: pg_dump | gzip > file; upload"] = (time.perf_counter() - t0, baseline_size)
        t0 = time.perf_counter()
        created = uc.create(env, store, None)
        results["ours: ops backup create"] = (time.perf_counter() - t0, created.manifest.stored_bytes)

        # --- restore (each into a fresh database)
        subprocess.run(["bash", "-c", f"{dump} --format=custom --compress=0 > {work}/floor.pgc"], env=pg_env,
                       check=True)
        for name in ("r_floor", "r_baseline", "r_ours"):
            create_database(admin, name)
        results["floor: pg_restore from a local uncompressed dump"] = (
            timed(f"{restore_tool} --no-owner -d r_floor {work}/floor.pgc", {**pg_env, "PGDATABASE": "r_floor"}),
            None)
        t0 = time.perf_counter()
        s3.download_file(bucket, "bench/baseline.sql.gz", str(work / "download.sql.gz"))
        subprocess.run(["bash", "-o", "pipefail", "-c",
                        f"gunzip -c {work}/download.sql.gz | {psql} -q -v ON_ERROR_STOP=1 -d r_baseline >/dev/null"],
                       env={**pg_env, "PGDATABASE": "r_baseline"}, check=True)
        results["baseline: download; gunzip | psql"] = (time.perf_counter() - t0, None)
        target = env.model_copy(update={"database_urls": {"main": SecretStr(with_database(admin, "r_ours"))}})
        t0 = time.perf_counter()
        uc.restore(target, store, created.manifest)
        results["ours: ops backup restore"] = (time.perf_counter() - t0, None)
        for name in ("r_floor", "r_baseline", "r_ours"):
            drop_database(admin, name)
        s3.delete_object(Bucket=bucket, Key="bench/baseline.sql.gz")

    print(f"\ndatabase: {db_bytes / 1e6:.0f} MB on disk (PostgreSQL {env.name} sandbox), {os.cpu_count()} cores")
    for label, (seconds, size) in results.items():
        extra = f"{size / 1e6:8.1f} MB" if size else ""
        print(f"  {label:<52} {seconds:8.2f} s  {extra}")
    r = results
    b_base, b_ours, b_floor = (r["baseline: pg_dump | gzip > file; upload"][0], r["ours: ops backup create"][0],
                               r["floor: pg_dump -Fc -Z0 > /dev/null"][0])
    r_base, r_ours, r_floor = (r["baseline: download; gunzip | psql"][0], r["ours: ops backup restore"][0],
                               r["floor: pg_restore from a local uncompressed dump"][0])
    size_ratio = created.manifest.stored_bytes / baseline_size
    print(f"\nbackup:  {b_base / b_ours:.2f}x faster than the baseline (goal >= 3x); "
          f"{b_ours / b_floor:.2f}x the floor (goal <= 1.3x)")
    print(f"restore: {r_base / r_ours:.2f}x faster than the baseline; {r_ours / r_floor:.2f}x the floor")
    print(f"size:    {size_ratio:.2f}x the baseline's output (goal <= 1.0)")


if __name__ == "__main__":
    main()
