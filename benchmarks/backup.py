"""Backup and restore side by side, at several database sizes, on the running sandbox.

    .venv/bin/python benchmarks/backup.py [--gb 0.25,1,4] [--pairs 3]

For each size it generates a database (once; kept for the next run) and times, as
alternating pairs (medians of --pairs), each in its own process with its peak memory:
- backup floor: `pg_dump --format=custom --compress=0 > /dev/null`;
- backup baseline (the seed's): `pg_dump | gzip` to a file, then upload it;
- ours: `ops backup create` (pg_dump | zstd | age, streamed by multipart upload);
- restore floor: single-job `pg_restore` from a local uncompressed dump;
- restore baseline: download, `gunzip | psql`;
- ours: `ops backup restore` with `--jobs 2` and `--jobs 1` (download, decrypt, decompress
  to a local archive, parallel pg_restore into a new database, swap).
Then it prints the ratios and how time and memory grow with the size. Never passes or fails
on time. pgBackRest is compared when `pgbackrest` can reach the sandbox's S3 over TLS, which
SeaweedFS's plain-HTTP gateway does not offer here; the script says so instead of guessing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
from pydantic import SecretStr

from ops.pg import connect, create_database, drop_database, libpq_env, with_database


def fill(admin: str, db: str, size_mb: float) -> int:
    """Create (once) a database of at least size_mb with payroll-like rows: ids, hashes, names, dates, amounts."""
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
    if not exists:
        create_database(admin, db)
    url = with_database(admin, db)
    with connect(url, autocommit=True) as conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS payroll_rows (
            id bigint PRIMARY KEY, tenant int, ppsn text, first_name text, last_name text, dob date,
            gross numeric(12,2), frequency text, note text)""")
        conn.execute("CREATE INDEX IF NOT EXISTS payroll_rows_tenant ON payroll_rows (tenant, ppsn)")
        batch = 250_000
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
            print(f"  {db}: filled to {size / 1e6:.0f} MB", file=sys.stderr)


def _context() -> tuple[object, str, object]:
    from ops.environment import resolve
    from ops.paths import sandbox_dir
    from ops.sandbox.state import load_state

    state = load_state(sandbox_dir())
    return state, state.database_url("postgres", admin=True), resolve("local")


def _env_for(env: object, url: str) -> object:
    return env.model_copy(update={"database_urls": {"main": SecretStr(url)}})  # type: ignore[attr-defined]


def step(args: list[str]) -> None:
    """One measured step, in this fresh process; prints its result as JSON."""
    import boto3

    from ops.adapters.s3_store import S3ObjectStore
    from ops.backup import usecases as uc
    from ops.paths import pg_tool

    state, admin, env = _context()
    s3 = boto3.client("s3", endpoint_url=state.s3.endpoint_url,  # type: ignore[attr-defined]
                      aws_access_key_id=state.s3.access_key, aws_secret_access_key=state.s3.secret_key,  # type: ignore[attr-defined]
                      region_name="us-east-1")
    bucket = state.s3.buckets["backups"]  # type: ignore[attr-defined]
    kind, db, work = args[0], args[1], Path(args[2])
    pg_env = {**libpq_env(with_database(admin, db)), "PATH": os.environ["PATH"]}
    if kind == "baseline-backup":
        subprocess.run(["bash", "-o", "pipefail", "-c", f"{pg_tool('pg_dump')} | gzip > {work}/baseline.sql.gz"],
                       env=pg_env, check=True)
        s3.upload_file(str(work / "baseline.sql.gz"), bucket, f"bench/{db}.sql.gz")
        print(json.dumps({"stored": (work / "baseline.sql.gz").stat().st_size}))
    elif kind == "baseline-restore":
        create_database(admin, "r_baseline")
        s3.download_file(bucket, f"bench/{db}.sql.gz", str(work / "download.sql.gz"))
        subprocess.run(["bash", "-o", "pipefail", "-c", f"gunzip -c {work}/download.sql.gz | {pg_tool('psql')} -q "
                        "-v ON_ERROR_STOP=1 >/dev/null"], env={**pg_env, "PGDATABASE": "r_baseline"}, check=True)
    elif kind == "ours-backup":
        created = uc.create(_env_for(env, with_database(admin, db)), S3ObjectStore(env.storage, "backups"), None)  # type: ignore[arg-type, attr-defined]
        print(json.dumps({"id": created.manifest.id, "stored": created.manifest.stored_bytes}))
    elif kind == "ours-restore":
        store = S3ObjectStore(env.storage, "backups")  # type: ignore[attr-defined]
        source_env = _env_for(env, with_database(admin, db))
        manifest = uc.find("local", store, args[3])
        target = _env_for(source_env, with_database(admin, "r_ours"))
        result = uc.restore(target, store, manifest, jobs=int(args[4]))  # type: ignore[arg-type]
        print(json.dumps(result["timings_s"]))
    else:
        raise SystemExit(f"unknown step {kind}")


def bash(script: str) -> list[str]:
    return ["bash", "-o", "pipefail", "-c", script]


def ours(kind: str, db: str, work: Path, *rest: str) -> measure.Run:
    return measure.run(measure.one(kind, db, str(work), *rest))


def floor_restore(admin: str, restore_tool: str, work: Path, pg_env: dict[str, str]) -> measure.Run:
    create_database(admin, "r_floor")
    return measure.run(bash(f"{restore_tool} --no-owner -d r_floor {work}/floor.pgc"),
                       {**pg_env, "PGDATABASE": "r_floor"})


def main() -> None:
    args = measure.parser(__doc__).parse_args()
    if args.one:
        step(args.one)
        return
    from ops.paths import pg_tool, sandbox_dir
    from ops.sandbox import manager

    manager.up(sandbox_dir())
    _state, admin, _env = _context()
    dump, restore_tool = pg_tool("pg_dump"), pg_tool("pg_restore")
    rows: dict[str, dict[float, measure.Run]] = {}
    db_mb: dict[float, float] = {}
    ratios: dict[float, list[str]] = {}
    for gb in args.gb:
        db = f"bench_backup_{int(gb * 1000)}"
        print(f"generating {db} (>= {gb} GB) ...", file=sys.stderr)
        db_mb[gb] = fill(admin, db, gb * 1024) / 1e6
        pg_env = {**libpq_env(with_database(admin, db)), "PATH": os.environ["PATH"]}
        with tempfile.TemporaryDirectory(dir=sandbox_dir()) as tmp:
            work = Path(tmp)
            floor_b = [measure.run(bash(f"{dump} --format=custom --compress=0 > /dev/null"), pg_env)
                       for _ in range(args.pairs)]
            base_b, ours_b = measure.pairs(partial(ours, "baseline-backup", db, work),
                                           partial(ours, "ours-backup", db, work), args.pairs)
            backup_id = str(ours_b[-1].out["id"])
            measure.run(bash(f"{dump} --format=custom --compress=0 > {work}/floor.pgc"), pg_env)
            floor_r = [floor_restore(admin, restore_tool, work, pg_env) for _ in range(args.pairs)]
            base_r, ours_r = measure.pairs(partial(ours, "baseline-restore", db, work),
                                           partial(ours, "ours-restore", db, work, backup_id, "2"), args.pairs)
            jobs1, jobs2 = measure.pairs(partial(ours, "ours-restore", db, work, backup_id, "1"),
                                         partial(ours, "ours-restore", db, work, backup_id, "2"), args.pairs)
            for name in ("r_floor", "r_baseline", "r_ours"):
                drop_database(admin, name)
        steps = {
            "backup floor: pg_dump -Fc -Z0 > /dev/null": floor_b,
            "backup baseline: pg_dump | gzip > file; upload": base_b,
            "ours: ops backup create": ours_b,
            "restore floor: pg_restore (1 job) from local dump": floor_r,
            "restore baseline: download; gunzip | psql": base_r,
            "ours: ops backup restore --jobs 2": ours_r,
            "ours: ops backup restore --jobs 1": jobs1,
        }
        for label, runs in steps.items():
            rows.setdefault(label, {})[gb] = measure.median(runs)
        stored_ours, stored_base = int(ours_b[-1].out["stored"]), int(base_b[-1].out["stored"])  # type: ignore[call-overload]
        phases = ", ".join(f"{k} {v} s" for k, v in ours_r[-1].out.items())
        ratios[gb] = [
            f"backup:  {measure.ratio_of_pairs(base_b, ours_b):.2f}x faster than the baseline; "
            f"{measure.median(ours_b).seconds / measure.median(floor_b).seconds:.2f}x the floor (goal <= 1.3x); "
            f"stored {stored_ours / 1e6:.1f} MB = {stored_ours / stored_base:.2f}x the baseline's",
            f"restore: {measure.ratio_of_pairs(base_r, ours_r):.2f}x faster than the baseline (goal >= 2x); "
            f"{measure.median(ours_r).seconds / measure.median(floor_r).seconds:.2f}x the 1-job floor; "
            f"--jobs 1 / --jobs 2 = {measure.ratio_of_pairs(jobs1, jobs2):.2f}",
            f"         ours' phases (last run): {phases}",
            "pgBackRest: not run: it speaks S3 only over TLS and the sandbox's SeaweedFS gateway is plain HTTP",
        ]
    print(f"\n{os.cpu_count()} cores; medians of {args.pairs} alternating pairs; peak memory = largest process")
    for gb in args.gb:
        print(f"\n{db_mb[gb]:.0f} MB database")
        for line in ratios[gb]:
            print(f"  {line}")
    print("\nscaling (median seconds; peak memory)")
    for line in measure.scaling(rows, db_mb):
        print(line)
    if shutil.which("pgbackrest") is None:
        print("(pgbackrest is not installed)")


if __name__ == "__main__":
    main()
