"""`ops backup` against the real sandbox: round trip, corruption, crashes, and each failure's one clear error."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.backup import manifest as m
from ops.backup import usecase as uc
from ops.cli import app
from ops.environment import Environment
from ops.errors import ExternalError, NotFoundError, VerificationError
from ops.pg import libpq_env
from ops.pg.tools import tool as pg_tool
from ops.sandbox.state import SandboxState
from ops.store_keys import backup_key
from ops.wiring import resolve
from tests.seed import clear, seed

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture()
def env(sandbox: SandboxState) -> Environment:
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=3, employees_per_run=200, tag="backup")
    return resolve("local")


def store(env: Environment) -> S3ObjectStore:
    return S3ObjectStore(env.storage, "backups")


def plain_dump(url: str) -> str:
    out = subprocess.run([pg_tool("pg_dump"), "--no-owner", "--format=plain"], env=libpq_env(url),
                         capture_output=True, text=True, check=True)
    # pg_dump >= 15.14 brackets its output with random \restrict keys; they differ per run.
    return "\n".join(line for line in out.stdout.splitlines()
                     if not line.startswith(("-- Dumped", "\\restrict", "\\unrestrict")))


def test_round_trip_restores_an_identical_database(env: Environment) -> None:
    url = env.database_url()
    before = plain_dump(url)
    result = runner.invoke(app, ["backup", "create", "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["heartbeat"] == "pinged"
    assert created["backup"]["tables"]["public.employee_results"] == 600
    # A file per table and per month's partition, each stored as its own object, listed with size and sha256.
    backup = m.Manifest.model_validate(created["backup"])
    assert backup.is_directory and backup.format == m.DIRECTORY_FORMAT
    s = store(env)
    stored = {k for k in s.list_keys(f"local/{backup.id}/") if k.endswith(m.FILE_SUFFIX)}
    assert stored == {f.key for f in backup.files} and "toc.dat" in {f.name for f in backup.files}
    with psycopg.connect(url) as conn:
        partitions = conn.execute("SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent"
                                  " WHERE c.relname = 'employee_results'").fetchone()
    assert partitions is not None and len(backup.files) > partitions[0] >= 1
    for entry in backup.files:
        data = s.get_bytes(entry.key) or b""
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry.stored_bytes, entry.sha256), entry.name
    assert backup.stored_bytes == sum(f.stored_bytes for f in backup.files)

    clear(url)  # disaster
    assert plain_dump(url) != before
    plan = runner.invoke(app, ["backup", "restore", "--latest", "--env", "local", "--plan", "--json"])
    assert json.loads(plan.stdout)["applied"] is False
    assert plain_dump(url) != before  # plan mode changed nothing
    applied = runner.invoke(app, ["backup", "restore", "--latest", "--env", "local", "--json"])  # not production
    assert applied.exit_code == 0, applied.output
    assert plain_dump(url) == before


def test_verify_restores_into_scratch_and_records_it(env: Environment) -> None:
    manifest = uc.create(env, store(env), None).manifest
    result = runner.invoke(app, ["backup", "verify", manifest.id, "--env", "local", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["verification"]["sanity_checks"]["users_without_tenant"] == 0
    listed = json.loads(runner.invoke(app, ["backup", "list", "--env", "local", "--json"]).stdout)
    assert next(b for b in listed if b["id"] == manifest.id)["verified"]["ok"] is True
    assert not uc.work_folder("verify", "local", env.database_url()).exists(), "verify left its files behind"


def test_one_flipped_byte_fails_verify(env: Environment) -> None:
    s = store(env)
    manifest = uc.create(env, s, None).manifest
    biggest = max(manifest.files, key=lambda f: f.stored_bytes)  # the one file whose byte flips
    data = bytearray(s.get_bytes(biggest.key) or b"")
    position = random.Random(7).randrange(200, len(data) - 1)
    data[position] ^= 0x01
    s.put_bytes(biggest.key, bytes(data))
    result = runner.invoke(app, ["backup", "verify", manifest.id, "--env", "local"])
    assert result.exit_code == 8
    assert "failed verification" in result.output and biggest.key in result.output.replace("\n", "")
    assert s.get_bytes(backup_key("local", manifest.id, m.VERIFIED_NAME)) is None


def test_a_missing_file_fails_verify_and_restore_changes_nothing(env: Environment) -> None:
    s = store(env)
    url = env.database_url()
    manifest = uc.create(env, s, None).manifest
    before = plain_dump(url)
    missing = next(f.key for f in manifest.files if f.name != "toc.dat")
    s.delete(missing)
    assert uc.verify(env, s, manifest.id).problems == [f"{missing}: listed in the manifest, missing from the store"]
    with pytest.raises(VerificationError, match="missing from the store"):
        uc.restore(env, s, manifest, jobs=2)
    assert plain_dump(url) == before


class HeldBack:
    """The sandbox's real store, except that one file's download waits until the new database has result rows:
    they can only be there if the restore loads files while others are still downloading."""

    def __init__(self, inner: S3ObjectStore, held: str, staging_url: str) -> None:
        self.inner, self.held, self.staging_url, self.saw_rows = inner, held, staging_url, False

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def _rows_loaded(self) -> bool:
        try:
            with psycopg.connect(self.staging_url, connect_timeout=5) as conn:
                return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM employee_results)").fetchone()[0])  # type: ignore[index]
        except psycopg.Error:  # the new database or its tables not made yet
            return False

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        if key == self.held:
            deadline = time.monotonic() + 120  # a bound on a stuck run, not a measured time
            while not self._rows_loaded():
                if time.monotonic() > deadline:
                    raise AssertionError(f"no result rows were loaded while {key} was held back")
                time.sleep(0.1)
            self.saw_rows = True
        return self.inner.stream(key, chunk_size)


@pytest.mark.parametrize("jobs", [1, 2])
def test_restore_loads_rows_while_files_are_still_downloading(env: Environment, sandbox: SandboxState,
                                                             jobs: int) -> None:
    url = env.database_url()
    s = store(env)
    manifest = uc.create(env, s, None).manifest
    before = plain_dump(url)
    smallest = min((f for f in manifest.files if f.name != "toc.dat"), key=lambda f: f.stored_bytes)
    held = HeldBack(s, smallest.key, sandbox.database_url("main_restoring", admin=True))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM employee_results WHERE row_number > 100")  # the state a restore replaces
    result = uc.restore(env, held, manifest, jobs=jobs)  # type: ignore[arg-type]
    assert held.saw_rows and result["jobs"] == jobs
    assert plain_dump(url) == before


def test_a_flipped_byte_fails_the_restore_before_its_file_is_loaded_and_changes_nothing(
        env: Environment, sandbox: SandboxState) -> None:
    s = store(env)
    url = env.database_url()
    manifest = uc.create(env, s, None).manifest
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM employee_results WHERE row_number > 100")
    before = plain_dump(url)
    biggest = max(manifest.files, key=lambda f: f.stored_bytes)
    data = bytearray(s.get_bytes(biggest.key) or b"")
    data[len(data) // 2] ^= 0x01
    s.put_bytes(biggest.key, bytes(data))
    with pytest.raises((VerificationError, ExternalError), match=re.escape(biggest.key)):
        uc.restore(env, s, manifest, jobs=2)
    assert plain_dump(url) == before
    with psycopg.connect(sandbox.database_url("postgres", admin=True)) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = 'main_restoring'").fetchone() == (0,)


def legacy_backup(env: Environment, s: S3ObjectStore) -> m.Manifest:
    """A backup as `ops` made them before directory backups: one pg_dump custom | zstd | age stream."""
    from datetime import UTC, datetime

    from ops.backup.commands import dump_stages

    backup_id = "20200101T000000Z"
    key = backup_key("local", backup_id, m.DATA_NAME)
    url = env.database_url()
    with psycopg.connect(url) as conn:
        from ops.pg import row_counts

        tables = row_counts(conn)
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    digest, stored = uc._upload(s, key, dump_stages(libpq_env(url), env.backup_recipient or "", snapshot=None),
                                lambda _n: None)
    manifest = m.Manifest(id=backup_id, environment="local", database="main", branch=env.branch,
                          server_version=version, tables=tables, data_key=key, stored_bytes=stored, sha256=digest,
                          recipient=env.backup_recipient or "", tool_version="0", started_at=datetime.now(UTC),
                          finished_at=datetime.now(UTC))
    raw = json.loads(manifest.model_dump_json())
    for newer in ("files", "jobs"):
        raw.pop(newer)  # an old manifest has no such fields
    s.put_bytes(backup_key("local", backup_id, m.MANIFEST_NAME), json.dumps(raw).encode())
    return manifest


def test_an_old_single_stream_backup_still_verifies_and_restores(env: Environment) -> None:
    s = store(env)
    url = env.database_url()
    before = plain_dump(url)
    try:
        manifest = legacy_backup(env, s)
        found = uc.find("local", s, manifest.id)
        assert not found.is_directory and found.format == m.FORMAT and found.files == []
        assert uc.verify(env, s, manifest.id).problems == []
        clear(url)
        uc.restore(env, s, found, jobs=2)
        assert plain_dump(url) == before
    finally:
        for key in s.list_keys("local/20200101T000000Z/"):
            s.delete(key)


def piped_directory_backup(env: Environment, s: S3ObjectStore, work: Path) -> m.Manifest:
    """A directory backup as `ops` made the first ones: pg_dump --compress=0, each file zstd | age."""
    from datetime import UTC, datetime

    from ops.pg import row_counts
    from ops.pipeline import Stage

    backup_id = "20200102T000000Z"
    url = env.database_url()
    with psycopg.connect(url) as conn:
        tables = row_counts(conn)
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    subprocess.run([pg_tool("pg_dump"), "--format=directory", "--compress=0", "--jobs=2", "-f", str(work)],
                   env=libpq_env(url), check=True)
    files = []
    for path in sorted(work.iterdir()):
        key = backup_key("local", backup_id, f"{m.DIRECTORY_NAME}/{path.name}{m.PIPED_FILE_SUFFIX}")
        digest, stored = uc._upload(s, key, [Stage("zstd", ["zstd", "-1", "-q", "-c", str(path)]),
                                             Stage("age", ["age", "--encrypt", "-r", env.backup_recipient or ""])],
                                    lambda _n: None)
        files.append(m.StoredFile(name=path.name, key=key, stored_bytes=stored, sha256=digest))
    assert any(f.name.endswith(".dat") for f in files), "pg_dump --compress=0 wrote no <id>.dat"
    manifest = m.Manifest(id=backup_id, environment="local", database="main", branch=env.branch,
                          server_version=version, tables=tables,
                          data_key=backup_key("local", backup_id, m.DIRECTORY_NAME + "/"),
                          stored_bytes=sum(f.stored_bytes for f in files), sha256=m.files_digest(files),
                          format=m.PIPED_DIRECTORY_FORMAT, files=files, jobs=2, recipient=env.backup_recipient or "",
                          tool_version="0", started_at=datetime.now(UTC), finished_at=datetime.now(UTC))
    s.put_bytes(backup_key("local", backup_id, m.MANIFEST_NAME), manifest.model_dump_json().encode())
    return manifest


def test_a_first_directory_backup_stored_zstd_piped_still_verifies_fetches_and_restores(
    env: Environment, tmp_path: Path
) -> None:
    """The first directory backups dumped uncompressed and stored each file `zstd | age`; today's let pg_dump
    compress and store each file age alone. Restore, verify and fetch read both, by the manifest's format."""
    s = store(env)
    url = env.database_url()
    before = plain_dump(url)
    try:
        manifest = piped_directory_backup(env, s, tmp_path / "dump")
        found = uc.find("local", s, manifest.id)
        assert found.is_directory and found.files_piped
        assert uc.verify(env, s, manifest.id).problems == []
        fetched = runner.invoke(app, ["backup", "fetch", manifest.id, "--env", "local", "--out",
                                      str(tmp_path / "fetched")])
        assert fetched.exit_code == 0, fetched.output
        assert sorted(p.name for p in (tmp_path / "fetched").iterdir()) == sorted(
            [m.MANIFEST_NAME, *(f"{f.name}{m.PIPED_FILE_SUFFIX}" for f in manifest.files)])
        clear(url)
        uc.restore(env, s, found, jobs=2)
        assert plain_dump(url) == before
    finally:
        for key in s.list_keys("local/20200102T000000Z/"):
            s.delete(key)


def test_kill_9_during_create_leaves_nothing_complete_and_the_next_run_cleans_up(
    env: Environment, sandbox: SandboxState, tmp_path: Path
) -> None:
    url = env.database_url()
    with subprocess.Popen([pg_tool("psql"), "-q", "-c",
                           "CREATE TABLE IF NOT EXISTS filler AS SELECT g, md5(g::text) || md5((g*7)::text) AS pad "
                           "FROM generate_series(1, 600000) g"], env=libpq_env(url)) as proc:
        assert proc.wait() == 0
    s = store(env)
    complete_before = {mf.id for mf, _ in uc.list_backups("local", s)}
    rng = random.Random(2026)
    base_env = {**os.environ, "OPS_SANDBOX_DIR": sandbox.root}
    argv = [sys.executable, "-m", "ops", "backup", "create", "--env", "local", "--json"]
    # Deterministic points (failpoints SIGKILL the process there), then random moments.
    points = ["backup.dumped", "backup.upload_started", "backup.part_read:2", "backup.upload_completed",
              "backup.before_manifest", None, None]
    try:
        for attempt, point in enumerate(points):
            env_vars = {**base_env, **({"OPS_FAILPOINT": point} if point else {})}
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_vars)
            if point is None:
                time.sleep(rng.uniform(0.3, 1.5))
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            complete = {mf.id for mf, _ in uc.list_backups("local", s)}
            if proc.returncode == 0 and point is None:  # it finished before the random kill: a complete backup
                complete_before = complete
                continue
            assert proc.returncode == -9, f"attempt {attempt} ({point}): exit {proc.returncode}"
            assert complete == complete_before, f"attempt {attempt} ({point}): a killed run left a complete backup"
        result = uc.create(env, s, None)
        assert s.list_multipart("local/") == []
        keys = s.list_keys("local/")
        backup_ids = {k.split("/")[1] for k in keys if k.count("/") >= 2}
        orphans = [k for k in keys if k.count("/") >= 2
                   and backup_key("local", k.split("/")[1], m.MANIFEST_NAME) not in keys]
        assert backup_ids and orphans == [], f"objects of backups without a manifest: {orphans}"
        assert result.manifest.tables["public.filler"] == 600000
        assert not uc.work_folder("backup", "local", url).exists(), "the dump folder was left behind"
    finally:
        with subprocess.Popen([pg_tool("psql"), "-q", "-c", "DROP TABLE IF EXISTS filler"], env=libpq_env(url)) as p:
            p.wait()


def test_kill_9_during_a_parallel_restore_changes_nothing_and_the_next_run_completes(
    env: Environment, sandbox: SandboxState
) -> None:
    url = env.database_url()
    backed_up = plain_dump(url)
    s = store(env)
    manifest = uc.create(env, s, None).manifest
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM employee_results WHERE row_number > 100")  # the state a restore replaces
    before = plain_dump(url)
    argv = [sys.executable, "-m", "ops", "backup", "restore", manifest.id, "--env", "local", "--yes", "--json",
            "--jobs", "2"]
    base_env = {**os.environ, "OPS_SANDBOX_DIR": sandbox.root}
    for point in ("restore.after.data", "restore.after.post-data", "restore.mid_swap"):
        crashed = subprocess.run(argv, env={**base_env, "OPS_FAILPOINT": point}, capture_output=True, check=False)
        assert crashed.returncode == -9, (point, crashed.stderr[-500:])
        if point != "restore.mid_swap":
            assert plain_dump(url) == before, f"{point}: a killed restore changed the live database"
        # Killed between the two renames, the live name is briefly missing: the next run puts it back first.
    resumed = subprocess.run(argv, env=base_env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["jobs"] == 2
    assert plain_dump(url) == backed_up
    with psycopg.connect(sandbox.database_url("postgres", admin=True)) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'main\\_%'").fetchall()
    assert left == [], f"databases left behind: {left}"
    assert not uc.work_folder("restore", "main", url).exists(), "the archive folder was left behind"


def test_create_shows_the_total_and_restore_shows_its_phases(env: Environment, sandbox: SandboxState) -> None:
    run_env = {**os.environ, "OPS_SANDBOX_DIR": sandbox.root}
    ops = [sys.executable, "-m", "ops", "backup"]
    created = subprocess.run([*ops, "create", "--env", "local"], env=run_env, capture_output=True, text=True,
                             check=False)
    assert created.returncode == 0, created.stderr
    assert re.search(r"database \d+ MB, of which tables \d+ MB", created.stderr), created.stderr
    restored = subprocess.run([*ops, "restore", "--latest", "--env", "local", "--yes", "--jobs", "2"], env=run_env,
                              capture_output=True, text=True, check=False)
    assert restored.returncode == 0, restored.stderr
    phases = ["download, decrypt, decompress", "restore tables and rows as each arrives (2 jobs)",
              "restore indexes and constraints (2 jobs)", "swap main_restoring into main"]
    positions = [restored.stderr.find(p) for p in phases]
    assert -1 not in positions and positions == sorted(positions), restored.stderr


def test_wrong_key_is_one_clear_error(env: Environment, tmp_path: Path) -> None:
    uc.create(env, store(env), None)
    other = tmp_path / "other.txt"
    subprocess.run(["age-keygen", "-o", str(other)], check=True, capture_output=True)
    wrong = env.model_copy(update={"backup_identity_file": str(other)})
    result = uc.verify(wrong, store(wrong), None)
    assert result.problems and "age failed" in result.problems[0]
    assert "no identity matched" in result.problems[0]


def test_missing_bucket_is_not_found(env: Environment) -> None:
    storage = env.storage.model_copy(update={"buckets": {"backups": "autoenroll-local-nope"}})
    with pytest.raises(NotFoundError, match="bucket 'autoenroll-local-nope' does not exist"):
        uc.list_backups("local", S3ObjectStore(storage, "backups"))


def test_database_down_is_one_clear_error(env: Environment) -> None:
    from ops.tcp_ports import free_port

    down = env.model_copy(update={"database_urls": {"main": SecretStr(
        f"postgresql://postgres:pw@127.0.0.1:{free_port()}/main")}})
    with pytest.raises(ExternalError, match="database unreachable") as info:
        uc.create(down, store(down), None)
    assert "pw" not in str(info.value)
    assert store(env).list_multipart("local/") == []


def test_s3_errors_name_the_operation(env: Environment) -> None:
    bad = env.storage.model_copy(update={"secret_access_key": SecretStr("wrong-secret")})
    with pytest.raises(ExternalError, match=r"S3 list on autoenroll-local-backups: \w+"):
        uc.list_backups("local", S3ObjectStore(bad, "backups"))


def test_prune_keeps_newest_verified_and_plans_with_plan(env: Environment) -> None:
    s = store(env)
    uc.create(env, s, None)
    before = [mf.id for mf, _ in uc.list_backups("local", s)]
    dry = json.loads(runner.invoke(app, ["backup", "prune", "--env", "local", "--daily", "1", "--monthly", "0",
                                         "--plan", "--json"]).stdout)
    assert dry["applied"] is False and [mf.id for mf, _ in uc.list_backups("local", s)] == before
    applied = json.loads(runner.invoke(app, ["backup", "prune", "--env", "local", "--daily", "1", "--monthly", "0",
                                             "--json"]).stdout)
    remaining = [mf.id for mf, v in uc.list_backups("local", s)]
    assert set(remaining) == set(applied["keep"]) and remaining
    verified = [mf.id for mf, v in uc.list_backups("local", s) if v and v.ok]
    assert len(verified) <= 1


def test_create_with_one_job_stores_the_same_files_and_verifies(env: Environment) -> None:
    s = store(env)
    one = uc.create(env, s, None, jobs=1).manifest  # no parallel mode: every file uploads after pg_dump exits
    two = uc.create(env, s, None, jobs=2).manifest  # parallel: table files upload as pg_dump finishes them
    assert (one.jobs, two.jobs) == (1, 2)
    assert sorted(f.name for f in one.files) == sorted(f.name for f in two.files)
    assert one.tables == two.tables
    assert uc.verify(env, s, one.id).problems == []
