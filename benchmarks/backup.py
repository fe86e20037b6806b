"""Backup and restore side by side, at several database sizes, on the running sandbox.

    .venv/bin/python benchmarks/backup.py [--gb 0.25,1,4] [--pairs 3]

For each size it generates a database (once; kept for the next run) and times, as
alternating pairs (medians of --pairs), each in its own process with its peak memory:
- backup floor: `pg_dump --format=custom --compress=0 > /dev/null`;
- backup baseline (the seed's): `pg_dump | gzip` to a file, then upload it;
- ours: `ops backup create` (pg_dump --format=directory --jobs N, a file per table and month's
  partition, each file zstd | age as its own object);
- single stream (ours before issue 28): pg_dump -Fc | zstd | age, streamed by multipart upload;
- restore floor: single-job `pg_restore` from a local uncompressed dump;
- restore baseline: download, `gunzip | psql`;
- ours: `ops backup restore` with `--jobs 2` and `--jobs 1` (download, decrypt, decompress
  each file into a local dump directory, pg_restore --jobs into a new database, swap).
Then it prints the ratios and how time and memory grow with the size. Never passes or fails
on time. Beside ours it runs pgBackRest (Debian's `pgbackrest`), a full backup of the
sandbox's cluster to the same S3 (through a local Caddy for TLS, which pgBackRest requires),
when both are installed, and prints the ratios of wall time and stored size.
`--steps backup,restore,peer` picks the comparisons.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import measure
from pydantic import SecretStr

from ops.pg import connect, create_database, drop_database, libpq_env, with_database

TENANTS, EMPLOYEES = 20, 500  # each run is one tenant's monthly payroll: the same 500 people every month


MONTHS = 12  # the runs are spread over the current month and the 11 before it, a partition each


def compare(name_a: str, runs_a: list[measure.Run], name_b: str, runs_b: list[measure.Run]) -> str:
    """`a` against `b` by the medians the scaling table prints, the direction in words: a bare ratio
    ("--jobs 1 / --jobs 2 = 1.30", a median of per-pair ratios over other runs than the rows') once read
    as a speed-up where the medians showed a slow-down."""
    a, b = measure.median(runs_a).seconds, measure.median(runs_b).seconds
    if a <= b:
        return f"{name_a} is {b / a:.2f}x faster than {name_b} (medians {a:.2f} s vs {b:.2f} s)"
    return f"{name_a} is {a / b:.2f}x slower than {name_b} (medians {a:.2f} s vs {b:.2f} s)"


def fill(admin: str, db: str, size_mb: float) -> int:
    """Create (once) a database of at least size_mb in the app's own schema (its migrations: five
    tables with their keys, indexes, foreign keys and policies), shaped like production: tenants and
    their users, one upload and validation run per payroll, each run's per-employee results (the
    bulk of the bytes, as in production), over MONTHS months (run r in the month r % MONTHS back)."""
    from datetime import UTC, datetime

    from autoenroll import partitions
    from ops.migrations import migrate

    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
    if not exists:
        create_database(admin, db)
    url = with_database(admin, db)
    migrate(url)
    tenant = f"md5('tenant' || (r % {TENANTS}))::uuid"
    month = f"(date_trunc('month', now() AT TIME ZONE 'UTC') - (r % {MONTHS}) * interval '1 month')::date"
    with connect(url, autocommit=True) as conn:
        this_month = partitions.month_start(datetime.now(UTC).date())
        for past in partitions.months_from(partitions.add_months(this_month, 1 - MONTHS), MONTHS):
            for statement in partitions.create_statements(past):
                conn.execute(statement.encode())
        conn.execute(f"""INSERT INTO tenants (id, name) SELECT md5('tenant' || t)::uuid, 'Employer ' || t || ' Ltd'
                         FROM generate_series(0, {TENANTS - 1}) t ON CONFLICT DO NOTHING""")  # noqa: S608
        conn.execute(f"""INSERT INTO users (id, tenant_id, email, full_name, password_hash)
                         SELECT md5('user' || t || '-' || k)::uuid, md5('tenant' || t)::uuid,
                                'payroll' || k || '@employer' || t || '.ie', 'Payroll Clerk ' || t || '-' || k,
                                md5('pw' || t || k) FROM generate_series(0, {TENANTS - 1}) t, generate_series(0, 1) k
                         ON CONFLICT DO NOTHING""")  # noqa: S608
        runs = 500  # a batch: 250,000 result rows
        while True:
            size = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])  # type: ignore[index]
            if size >= size_mb * 1024 * 1024:
                return size
            start = int(conn.execute("SELECT count(*) FROM validation_runs").fetchone()[0])  # type: ignore[index]
            span = f"generate_series({start + 1}, {start + runs}) r"
            conn.execute(f"""INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,
                                                  size_bytes, sha256, status)
                SELECT md5('upload' || r)::uuid, {tenant}, md5('user' || (r % {TENANTS}) || '-' || (r % 2))::uuid,
                       'uploads/' || r || '.csv', 'payroll-' || r || '.csv', 'text/csv', 40000 + r % 9000,
                       md5(r::text), 'validated' FROM {span}""")  # noqa: S608 - integers we computed
            conn.execute(f"""INSERT INTO validation_runs (id, tenant_id, upload_id, status, row_count, error_count,
                                                          summary, report_bytes, month)
                SELECT md5('run' || r)::uuid, {tenant}, md5('upload' || r)::uuid, 'completed', {EMPLOYEES}, r % 7,
                       jsonb_build_object('automatic', 400 + r % 50, 'may_opt_in', 60, 'excluded', 40 - r % 9),
                       20000 + r % 5000, {month} FROM {span}""")  # noqa: S608
            conn.execute(f"""INSERT INTO employee_results (tenant_id, run_id, row_number, employee_id, ppsn, first_name,
                    last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility, employee_contribution,
                    employer_contribution, state_contribution, errors, month)
                SELECT {tenant}, md5('run' || r)::uuid, e, 'E' || (r % {TENANTS}) || '-' || e,
                       lpad(((r % {TENANTS}) * {EMPLOYEES} + e)::bigint * 7919 % 9999999 || '', 7, '0')
                           || chr(65 + ((r % {TENANTS}) * 7 + e) % 23),
                       (ARRAY['Seán','Máire','Aoife','Conor','Niamh','Pádraig'])[1 + e % 6],
                       'Surname' || ((r % {TENANTS}) * 31 + e) % 2000,
                       date '1960-01-01' + ((r % {TENANTS}) + e * 29) % 15000,
                       'person' || e || '@employer' || (r % {TENANTS}) || '.ie',
                       2000 + (e * 37 + r) % 6000 + (e % 100) / 100.0, 'monthly',
                       (ARRAY['automatic','may_opt_in','excluded'])[1 + (e % 10 = 0)::int + (e % 25 = 0)::int],
                       (2000 + (e * 37 + r) % 6000) * 0.015, (2000 + (e * 37 + r) % 6000) * 0.015,
                       (2000 + (e * 37 + r) % 6000) * 0.005,
                       CASE WHEN e % 97 = 0 THEN '[{{"field": "ppsn", "error": "check letter"}}]'::jsonb
                            ELSE '[]'::jsonb END, {month}
                FROM {span}, generate_series(1, {EMPLOYEES}) e""")  # noqa: S608
            print(f"  {db}: filled to {size / 1e6:.0f} MB", file=sys.stderr)


def _context() -> tuple[object, str, object]:
    from ops.paths import sandbox_dir
    from ops.sandbox.state import load_state
    from ops.wiring import resolve

    state = load_state(sandbox_dir())
    return state, state.database_url("postgres", admin=True), resolve("local")


def _env_for(env: object, url: str) -> object:
    return env.model_copy(update={"database_urls": {"main": SecretStr(url)}})  # type: ignore[attr-defined]


def step(args: list[str]) -> None:
    """One measured step, in this fresh process; prints its result as JSON."""
    import boto3

    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.backup import usecase as uc
    from ops.pg.tools import tool as pg_tool

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
    elif kind == "stream-backup":
        from datetime import UTC, datetime

        from ops.backup import manifest as m
        from ops.backup.commands import dump_stages
        from ops.store_keys import backup_key

        key = backup_key("bench", datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"), m.DATA_NAME)
        store = S3ObjectStore(env.storage, "backups")  # type: ignore[attr-defined]
        _digest, stored = uc._upload(store, key, dump_stages(pg_env, env.backup_recipient, snapshot=None),  # type: ignore[attr-defined]
                                     lambda _n: None)
        store.delete(key)
        print(json.dumps({"stored": stored}))
    elif kind == "baseline-restore":
        create_database(admin, "r_baseline")
        s3.download_file(bucket, f"bench/{db}.sql.gz", str(work / "download.sql.gz"))
        subprocess.run(["bash", "-o", "pipefail", "-c", f"gunzip -c {work}/download.sql.gz | {pg_tool('psql')} -q "
                        "-v ON_ERROR_STOP=1 >/dev/null"], env={**pg_env, "PGDATABASE": "r_baseline"}, check=True)
    elif kind == "ours-backup":
        created = uc.create(_env_for(env, with_database(admin, db)), S3ObjectStore(env.storage, "backups"), None)  # type: ignore[arg-type, attr-defined]
        print(json.dumps({"id": created.manifest.id, "stored": created.manifest.stored_bytes,
                          "files": len(created.manifest.files)}))
    elif kind == "ours-restore":
        store = S3ObjectStore(env.storage, "backups")  # type: ignore[attr-defined]
        source_env = _env_for(env, with_database(admin, db))
        manifest = uc.find("local", store, args[3])
        target = _env_for(source_env, with_database(admin, "r_ours"))
        result = uc.restore(target, store, manifest, jobs=int(args[4]))  # type: ignore[arg-type]
        print(json.dumps(result["timings_s"]))
    else:
        raise SystemExit(f"unknown step {kind}")


@contextmanager
def pgbackrest_peer(state: Any, work: Path) -> Iterator[tuple[Callable[[], measure.Run] | None,
                                                              Callable[[], tuple[int, str]], str]]:
    """pgBackRest 2.x against the sandbox's cluster and S3: yields (run one full backup, the bytes its
    newest backup stored, why it can't run).

    pgBackRest speaks S3 only over TLS, so a Caddy (`tls internal`) in front of SeaweedFS's
    gateway gives it HTTPS; it reads the data directory, so it runs as the cluster's owner.
    Its repository is a prefix of the backups bucket, deleted afterwards."""
    caddy = shutil.which("caddy")
    if shutil.which("pgbackrest") is None and shutil.which("apt-get") and os.geteuid() == 0:
        # The benchmark's own set-up: Debian's package, the peer it compares against.
        print("installing Debian's pgbackrest (the peer) ...", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "pgbackrest"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False,
                       stdout=subprocess.DEVNULL)
    if shutil.which("pgbackrest") is None or caddy is None:
        yield None, lambda: (0, ""), "pgbackrest or caddy is not installed"
        return
    from ops.tcp_ports import free_port

    # Its own folder outside the (private) work folder: pgBackRest runs as the cluster's owner.
    peer = Path(tempfile.mkdtemp(prefix="bench-pgbackrest-"))
    peer.chmod(0o755)
    owner = os.stat(state.postgres.data_dir).st_uid
    port, s3 = free_port(), urlsplit(state.s3.endpoint_url)
    (peer / "Caddyfile").write_text(
        "{\n\tadmin off\n\tauto_https disable_redirects\n\tskip_install_trust\n"
        f"\tstorage file_system {peer}/caddy\n}}\n"
        f"https://127.0.0.1:{port} {{\n\ttls internal\n\treverse_proxy {s3.hostname}:{s3.port}\n}}\n")
    conf = peer / "pgbackrest.conf"
    conf.write_text("\n".join([
        "[global]", "repo1-type=s3", "repo1-s3-endpoint=127.0.0.1", "repo1-storage-host=127.0.0.1",
        f"repo1-storage-port={port}", "repo1-storage-verify-tls=n", "repo1-s3-uri-style=path",
        f"repo1-s3-bucket={state.s3.buckets['backups']}", "repo1-s3-region=us-east-1",
        f"repo1-s3-key={state.s3.access_key}", f"repo1-s3-key-secret={state.s3.secret_key}",
        f"repo1-path=/bench-pgbackrest-{port}", "repo1-retention-full=1",
        # The same choices as ours: zstd level 1, two processes (the cores), a checkpoint right away.
        "compress-type=zst", "compress-level=1", "process-max=2", "start-fast=y", "archive-check=n",
        f"log-path={peer}", f"lock-path={peer}", "log-level-console=warn", "log-level-file=off",
        "[bench]", f"pg1-path={state.postgres.data_dir}", f"pg1-port={state.postgres.port}",
        f"pg1-socket-path={state.postgres.socket_dir}", f"pg1-user={state.postgres.superuser}", ""]))
    conf.chmod(0o600)
    for path in (peer, conf):
        os.chown(path, owner, -1)
    env = {**os.environ, "PGPASSWORD": state.postgres.superuser_password}
    as_owner = [] if owner == os.getuid() else ["runuser", "-w", "PGPASSWORD", "-u", pwd.getpwuid(owner).pw_name, "--"]
    base = [*as_owner, "pgbackrest", f"--config={conf}", "--stanza=bench"]
    proxy = subprocess.Popen([caddy, "run", "--config", str(peer / "Caddyfile"), "--adapter", "caddyfile"],
                             env={**os.environ, "HOME": str(peer)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["curl", "-skf", "-o", "/dev/null", f"https://127.0.0.1:{port}/"], check=False,
                             capture_output=True).returncode not in (0, 22):  # 22: the gateway's 403, so it's up
            if time.monotonic() > deadline:
                yield None, lambda: (0, ""), "the TLS proxy for pgBackRest did not start"
                return
            time.sleep(0.2)
        made = subprocess.run([*base, "stanza-create"], env=env, check=False, capture_output=True, text=True)
        if made.returncode != 0:
            why = f"pgbackrest stanza-create failed: {(made.stderr or made.stdout).strip()[-300:]}"
            if "VersionNotSupportedError" in why:
                why += ("\n  (Debian 12's pgBackRest 2.45 reads PostgreSQL <= 15 only: run this step on a sandbox"
                        " of its own"
                        " with Debian's server, OPS_PG_BINDIR=/usr/lib/postgresql/15/bin OPS_SANDBOX_DIR=...)")
            yield None, lambda: (0, ""), why
            return

        def stored() -> tuple[int, str]:
            """The bytes its newest backup stored, and the evidence it really ran: `info` (how many full
            backups its repository holds, the newest's label and sizes) and `verify` (checksums of the
            repository's files)."""
            out = subprocess.run([*base, "--output=json", "info"], env=env, capture_output=True, text=True, check=True)
            backups = json.loads(out.stdout)[0]["backup"]
            newest = backups[-1]
            verify = subprocess.run([*base, "verify"], env=env, capture_output=True, text=True, check=False)
            evidence = (f"pgbackrest info: {len(backups)} backup(s) in its repository, newest {newest['label']} "
                        f"({newest['type']}, database {newest['info']['size'] / 1e6:.0f} MB, stored "
                        f"{newest['info']['repository']['delta'] / 1e6:.1f} MB); pgbackrest verify: exit "
                        f"{verify.returncode}" + (f" ({(verify.stderr or verify.stdout).strip()[-200:]})"
                                                   if verify.returncode else " (repository checksums match)"))
            return int(newest["info"]["repository"]["delta"]), evidence

        yield partial(measure.run, [*base, "--type=full", "backup"], env), stored, ""
    finally:
        subprocess.run([*base, "stop"], env=env, check=False, capture_output=True)
        subprocess.run([*base, "--force", "stanza-delete"], env=env, check=False, capture_output=True)
        proxy.terminate()
        proxy.wait()
        shutil.rmtree(peer, ignore_errors=True)


def bash(script: str) -> list[str]:
    return ["bash", "-o", "pipefail", "-c", script]


OURS_ENV: dict[str, str] | None = None  # --ours-bindir: the environment `ops`'s own steps run in


def ours(kind: str, db: str, work: Path, *rest: str) -> measure.Run:
    return measure.run(measure.one(kind, db, str(work), *rest), OURS_ENV if kind.startswith("ours-") else None)


def floor_restore(admin: str, restore_tool: str, work: Path, pg_env: dict[str, str]) -> measure.Run:
    create_database(admin, "r_floor")
    return measure.run(bash(f"{restore_tool} --no-owner -d r_floor {work}/floor.pgc"),
                       {**pg_env, "PGDATABASE": "r_floor"})


def main() -> None:
    cli = measure.parser(__doc__)
    cli.add_argument("--steps", type=lambda v: set(v.split(",")), default={"backup", "restore", "peer"},
                     help="which comparisons: backup,restore,peer (default all)")
    cli.add_argument("--ours-bindir", default=None,
                     help="PostgreSQL tools for ops's own steps only (OPS_PG_BINDIR for them): with --steps peer on "
                          "Debian's PostgreSQL 15 server (what Debian's pgBackRest 2.45 reads), ops still dumps with "
                          "production's pg_dump 17, which compresses with zstd")
    args = cli.parse_args()
    if args.ours_bindir:
        global OURS_ENV
        OURS_ENV = {**os.environ, "OPS_PG_BINDIR": args.ours_bindir}
    if args.one:
        step(args.one)
        return
    from ops.paths import sandbox_dir
    from ops.pg.tools import tool as pg_tool
    from ops.sandbox import manager

    manager.up(sandbox_dir())
    _state, admin, _env = _context()
    dump, restore_tool = pg_tool("pg_dump"), pg_tool("pg_restore")
    rows: dict[str, dict[float, measure.Run]] = {}
    db_mb: dict[float, float] = {}
    ratios: dict[float, list[str]] = {}
    state, _, _ = _context()
    for gb in args.gb:
        db = f"bench_app_{int(gb * 1000)}"
        print(f"generating {db} (>= {gb} GB) ...", file=sys.stderr)
        db_mb[gb] = fill(admin, db, gb * 1024) / 1e6
        pg_env = {**libpq_env(with_database(admin, db)), "PATH": os.environ["PATH"]}
        steps: dict[str, list[measure.Run]] = {}
        lines = ratios.setdefault(gb, [])
        with tempfile.TemporaryDirectory(dir=sandbox_dir()) as tmp:
            work = Path(tmp)
            floor_b = [measure.run(bash(f"{dump} --format=custom --compress=0 > /dev/null"), pg_env)
                       for _ in range(args.pairs)]
            steps["backup floor: pg_dump -Fc -Z0 > /dev/null"] = floor_b
            if "backup" in args.steps or "restore" in args.steps:
                # Restore alone needs one backup of each kind, not the timed pairs.
                base_b, ours_b = measure.pairs(partial(ours, "baseline-backup", db, work),
                                               partial(ours, "ours-backup", db, work),
                                               args.pairs if "backup" in args.steps else 1)
                steps["backup baseline: pg_dump | gzip > file; upload"] = base_b
                steps["ours: ops backup create"] = ours_b
                stored_ours, stored_base = int(ours_b[-1].out["stored"]), int(base_b[-1].out["stored"])  # type: ignore[call-overload]
                to_floor = measure.median(ours_b).seconds / measure.median(floor_b).seconds
                lines += [
                    f"backup:  {measure.ratio_of_pairs(base_b, ours_b):.2f}x faster than the baseline; "
                    f"{to_floor:.2f}x the single-stream floor; "
                    f"stored {stored_ours / 1e6:.1f} MB in {ours_b[-1].out['files']} files "  # type: ignore[index]
                    f"= {stored_ours / stored_base:.2f}x the baseline's"]
                if "backup" in args.steps:
                    stream_b, ours_d = measure.pairs(partial(ours, "stream-backup", db, work),
                                                     partial(ours, "ours-backup", db, work), args.pairs)
                    steps["single stream: pg_dump -Fc | zstd | age, multipart"] = stream_b
                    steps["ours: ops backup create (beside the single stream)"] = ours_d
                    stored_stream = int(stream_b[-1].out["stored"])  # type: ignore[call-overload]
                    lines += ["backup:  " + compare("directory --jobs (ours)", ours_d, "the single stream", stream_b)
                              + f"; stored {stored_ours / stored_stream:.2f}x the single stream's"]
            if "restore" in args.steps:
                backup_id = str(ours_b[-1].out["id"])
                measure.run(bash(f"{dump} --format=custom --compress=0 > {work}/floor.pgc"), pg_env)
                floor_r = [floor_restore(admin, restore_tool, work, pg_env) for _ in range(args.pairs)]
                base_r, ours_r = measure.pairs(partial(ours, "baseline-restore", db, work),
                                               partial(ours, "ours-restore", db, work, backup_id, "2"), args.pairs)
                jobs1, jobs2 = measure.pairs(partial(ours, "ours-restore", db, work, backup_id, "1"),
                                             partial(ours, "ours-restore", db, work, backup_id, "2"), args.pairs)
                for name in ("r_floor", "r_baseline", "r_ours"):
                    drop_database(admin, name)
                # Every --jobs 2 restore in its row, so the row's median is the one the jobs line compares.
                jobs2_all = ours_r + jobs2
                steps.update({"restore floor: pg_restore (1 job) from local dump": floor_r,
                              "restore baseline: download; gunzip | psql": base_r,
                              "ours: ops backup restore --jobs 2": jobs2_all,
                              "ours: ops backup restore --jobs 1": jobs1})
                phases = ", ".join(f"{k} {v} s" for k, v in ours_r[-1].out.items())
                lines += [
                    f"restore: {measure.ratio_of_pairs(base_r, ours_r):.2f}x faster than the baseline (goal >= 1.6x); "
                    f"{measure.median(ours_r).seconds / measure.median(floor_r).seconds:.2f}x the 1-job floor; "
                    + compare("--jobs 2", jobs2_all, "--jobs 1", jobs1) + " (goal: >= 1.5x faster)",
                    f"         ours' phases (last run): {phases}"]
            if "peer" in args.steps:
                lines += peer_lines(state, admin, db, work, args.pairs, steps)
        for label, runs in steps.items():
            rows.setdefault(label, {})[gb] = measure.median(runs)
        # Each size as it finishes (stderr): a long run interrupted keeps what it measured.
        # Whole labels: their first words repeat ("ours: ...") and once hid each other in this line.
        medians = {label: round(measure.median(runs).seconds, 2) for label, runs in steps.items()}
        print(f"  {db_mb[gb]:.0f} MB: {lines}; load average {os.getloadavg()[0]:.1f}; {medians}", file=sys.stderr,
              flush=True)
    print(f"\n{os.cpu_count()} cores; medians of {args.pairs} alternating pairs; peak memory = largest process")
    for gb in args.gb:
        print(f"\n{db_mb[gb]:.0f} MB database")
        for line in ratios[gb]:
            print(f"  {line}")
    print("\nscaling (median seconds; peak memory)")
    for line in measure.scaling(rows, db_mb):
        print(line)


def peer_lines(state: Any, admin: str, db: str, work: Path, n: int, steps: dict[str, list[measure.Run]]) -> list[str]:
    """pgBackRest beside ours, as alternating pairs. pgBackRest copies the whole cluster (its
    unit is the data directory), so the bench database should be nearly all of it: we say how much."""
    with connect(admin) as conn:
        sizes = conn.execute("SELECT sum(pg_database_size(datname)), pg_database_size(%s) FROM pg_database",
                             (db,)).fetchone()
    cluster, own = int(sizes[0]), int(sizes[1])  # type: ignore[index, call-overload]
    with pgbackrest_peer(state, work) as (backup, stored, why):
        if backup is None:
            return [f"pgBackRest: not run: {why}"]
        theirs, ours_p = measure.pairs(backup, partial(ours, "ours-backup", db, work), n)
        their_bytes, evidence = stored()
    steps["peer: pgbackrest backup --type=full (cluster)"] = theirs
    steps["ours: ops backup create (beside the peer)"] = ours_p
    ours_bytes = int(ours_p[-1].out["stored"])  # type: ignore[call-overload]
    return [f"pgBackRest 2.x full backup (zstd -1, process-max 2) of the cluster ({cluster / 1e6:.0f} MB, of which "
            f"this database {own / 1e6:.0f} MB) to the same S3: ours/pgBackRest wall = "
            f"{measure.median(ours_p).seconds / measure.median(theirs).seconds:.2f} by the medians, "
            f"{measure.ratio_of_pairs(ours_p, theirs):.2f} by the pairs (goal <= 0.8); "
            f"stored {ours_bytes / 1e6:.1f} MB vs {their_bytes / 1e6:.1f} MB = {ours_bytes / their_bytes:.2f}x "
            "(goal <= 1)", f"  {evidence}"]

if __name__ == "__main__":
    main()
