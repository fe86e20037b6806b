"""Backup pieces without processes: retention, commands as data, the lock."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from ops.backup import manifest as m
from ops.backup import usecase as uc
from ops.backup.commands import (
    directory_dump,
    directory_restore,
    dump_stages,
    file_fetch_stages,
    file_store_stages,
    parallel_restore,
    restore_stages,
    stream_restore_stages,
)
from ops.backup.retention import Candidate, keep_set
from ops.errors import LockHeldError
from ops.locks import object_lock

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def daily(days: int, verified_day: int | None = None) -> list[Candidate]:
    return [Candidate(f"b{d}", T0 - timedelta(days=d), d == verified_day) for d in range(days)]


def test_thirty_dailies_and_twelve_monthlies() -> None:
    keep = keep_set(daily(400), daily=30, monthly=12)
    assert {f"b{d}" for d in range(30)} <= keep  # Nov 21 back to Oct 23
    # Months: Nov and Oct 2026 are covered by dailies (Oct 31 is b21); the ten months before
    # keep their last day: Sep 30 2026 back to Dec 31 2025.
    month_ends = {f"b{(T0.date() - d).days}" for d in
                  [datetime(2026, m, 1, tzinfo=UTC).date() - timedelta(days=1) for m in range(10, 0, -1)]}
    month_ends.add(f"b{(T0.date() - datetime(2025, 12, 31, tzinfo=UTC).date()).days}")
    assert month_ends <= keep
    assert len(keep) == 30 + 10


def test_newest_verified_backup_is_never_pruned() -> None:
    keep = keep_set(daily(100, verified_day=80), daily=5, monthly=0)
    assert "b80" in keep


def test_two_backups_a_day_keep_only_the_newest_of_that_day() -> None:
    backups = [Candidate("late", T0, False), Candidate("early", T0 - timedelta(hours=1), False)]
    assert keep_set(backups, daily=30, monthly=0) == {"late"}


def test_secrets_never_reach_argv() -> None:
    env = {"PGHOST": "h", "PGPASSWORD": "hunter2", "PGDATABASE": "main"}
    for stage in [*dump_stages(env, "age1recipient", snapshot="00000003-1"),
                  *restore_stages(env, "/keys/id.txt", scratch=False)]:
        assert "hunter2" not in " ".join(stage.argv)
    dump = dump_stages(env, "age1recipient", snapshot="00000003-1")
    assert [s.name for s in dump] == ["pg_dump", "zstd", "age"]
    assert "--compress=0" in dump[0].argv and "--snapshot=00000003-1" in dump[0].argv
    restore = restore_stages(env, "/keys/id.txt", scratch=False)
    assert "--single-transaction" in restore[2].argv and "--clean" in restore[2].argv
    assert "--no-privileges" in restore_stages(env, "/k", scratch=True)[2].argv


def test_the_parallel_restore_runs_in_two_phases_from_a_local_archive() -> None:
    env = {"PGHOST": "h", "PGPASSWORD": "hunter2", "PGDATABASE": "main_restoring"}
    stream = stream_restore_stages("/keys/id.txt", "/tmp/x/dump.pgc", env)
    assert [s.name for s in stream] == ["age", "zstd", "tee", "pg_restore"]
    assert stream[2].argv[-1] == "/tmp/x/dump.pgc" and "--section=post-data" not in stream[3].argv
    assert stream[3].argv[-2:] == ["-d", "main_restoring"] and "hunter2" not in " ".join(stream[3].argv)
    data = parallel_restore(env, "/tmp/x/dump.pgc", jobs=3, section="data")
    post = parallel_restore(env, "/tmp/x/dump.pgc", jobs=3, section="post-data")
    for argv in (data, post):
        assert "--jobs=3" in argv and argv[-3:] == ["-d", "main_restoring", "/tmp/x/dump.pgc"]
        assert "hunter2" not in " ".join(argv) and "--single-transaction" not in argv
    assert "--section=pre-data" in data and "--section=data" in data and "--section=post-data" not in data
    assert "--section=post-data" in post and "--section=data" not in post


def test_a_directory_backup_dumps_in_parallel_and_stores_each_file_on_its_own() -> None:
    env = {"PGHOST": "h", "PGPASSWORD": "hunter2", "PGDATABASE": "main"}
    dump = directory_dump(env, "/tmp/w/dump", jobs=3, snapshot="00000003-1")
    assert dump.argv[1:] == ["--format=directory", "--compress=zstd:1", "--jobs=3", "--no-password", "-f",
                             "/tmp/w/dump", "--snapshot=00000003-1"]
    assert dump.env == env and "hunter2" not in " ".join(dump.argv)
    # pg_dump compressed each file: storing it only encrypts it, and fetching only decrypts it.
    stored = file_store_stages("/tmp/w/dump/4011.dat.zst", "age1recipient")
    assert [s.name for s in stored] == ["age"]
    assert stored[0].argv[1:] == ["--encrypt", "-r", "age1recipient", "/tmp/w/dump/4011.dat.zst"]
    fetched = file_fetch_stages("/keys/id.txt", "/tmp/r/dump/4011.dat.zst")
    assert [s.name for s in fetched] == ["age"] and fetched[0].argv[-2:] == ["-o", "/tmp/r/dump/4011.dat.zst"]
    # A file of the first directory backups was stored zstd | age: fetching it decompresses as well.
    piped = file_fetch_stages("/keys/id.txt", "/tmp/r/dump/4011.dat", piped=True)
    assert [s.name for s in piped] == ["age", "zstd"] and piped[1].argv[-2:] == ["-o", "/tmp/r/dump/4011.dat"]
    scratch = directory_restore(env, "/tmp/r/dump", jobs=2, section="data", scratch=True)
    assert "--no-privileges" in scratch and "--jobs=2" in scratch and scratch[-1] == "/tmp/r/dump"


def test_the_manifest_says_its_format_and_lists_each_file() -> None:
    old = {"id": "x", "environment": "local", "database": "main", "branch": "main", "server_version": "17",
           "tables": {"public.t": 1}, "data_key": "local/x/dump.pgc.zst.age", "stored_bytes": 5, "sha256": "ab",
           "format": m.FORMAT, "recipient": "age1x", "tool_version": "1", "started_at": "2026-01-01T00:00:00Z",
           "finished_at": "2026-01-01T00:00:01Z"}
    legacy = m.Manifest.model_validate(old)  # written before directory backups: no file list
    assert not legacy.is_directory and legacy.files == []
    files = [m.StoredFile(name="toc.dat", key="k1", stored_bytes=3, sha256="aa"),
             m.StoredFile(name="4011.dat", key="k2", stored_bytes=4, sha256="bb")]
    new = m.Manifest.model_validate({**old, "format": m.DIRECTORY_FORMAT, "files": [f.model_dump() for f in files]})
    assert new.is_directory and [f.name for f in new.files] == ["toc.dat", "4011.dat"]
    assert m.files_digest(files) == m.files_digest(list(reversed(files)))
    assert m.files_digest(files) != m.files_digest([files[0]])
    # Today's directory backups: pg_dump's zstd files, each stored age alone; the first ones, still read,
    # uncompressed files each stored zstd | age.
    assert (new.files_piped, new.file_suffix, new.data_file("4011")) == (False, ".age", "4011.dat.zst")
    first = m.Manifest.model_validate({**old, "format": m.PIPED_DIRECTORY_FORMAT})
    assert first.is_directory and (first.files_piped, first.file_suffix, first.data_file("4011")) == (
        True, ".zst.age", "4011.dat")


def test_the_dump_progress_counts_the_tables_pg_dump_has_finished() -> None:
    sizes = {"public.employee_results_y2026m01": 600, "public.uploads": 300, "audit.uploads": 50,
             "public.alembic_version": 8}
    seen: list[int] = []
    parallel = uc._DumpProgress(dict(sizes), seen.append, serial=False)
    for line in ['pg_dump: dumping contents of table "public.employee_results_y2026m01"\n',
                 'pg_dump: dumping contents of table "public.uploads"\n',
                 "pg_dump: finished item 3702 TABLE DATA uploads\n",
                 "pg_dump: finished item 3701 TABLE DATA employee_results_y2026m01\n",
                 "pg_dump: finished item 3701 TABLE DATA employee_results_y2026m01\n"]:  # counted once
        parallel.line(line)
    assert seen == [300, 900]
    parallel.end()  # the tables no line named finished (here two) count once pg_dump has exited
    assert seen[-1] == sum(sizes.values())
    seen.clear()
    serial = uc._DumpProgress(dict(sizes), seen.append, serial=True)  # one job: no "finished item" lines
    for name in ("public.alembic_version", "public.uploads", "audit.uploads"):
        serial.line(f'pg_dump: dumping contents of table "{name}"\n')
    assert seen == [8, 308]
    serial.end()
    assert seen[-1] == sum(sizes.values())


class MemoryStore:
    bucket = "mem"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        if if_absent and key in self.objects:
            return False
        self.objects[key] = data
        return True

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def test_lock_excludes_a_second_holder_and_names_the_first() -> None:
    store = MemoryStore()
    first = object_lock(store, "l", ttl=timedelta(hours=1), purpose="backup of local")  # type: ignore[arg-type]
    second = object_lock(store, "l", ttl=timedelta(hours=1), purpose="backup of local")  # type: ignore[arg-type]
    with first, pytest.raises(LockHeldError, match="backup of local is locked by"), second:
        pass
    assert "l" not in store.objects


def test_expired_or_dead_local_owner_locks_are_taken_over() -> None:
    store = MemoryStore()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    store.objects["l"] = json.dumps({"owner": "ci", "expires_at": past, "token": "x"}).encode()
    with object_lock(store, "l", ttl=timedelta(hours=1), purpose="p") as record:  # type: ignore[arg-type]
        assert record["took_over_from"] == "ci"
    import socket

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    dead_pid = max(2, os.getpid() + 100000)
    store.objects["l"] = json.dumps({"owner": "me", "expires_at": future, "token": "y",
                                     "host": socket.gethostname(), "pid": str(dead_pid)}).encode()
    with object_lock(store, "l", ttl=timedelta(hours=1), purpose="p") as record:  # type: ignore[arg-type]
        assert record["took_over_from"] == "me"


class ListingStore(MemoryStore):
    """A store that lists: what cleaning up and pruning a directory backup need."""

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.objects = dict.fromkeys(keys, b"x")
        self.aborted: list[str] = []

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def list_multipart(self, prefix: str) -> list[dict[str, str]]:
        return [{"key": "local/B/dump/3.dat.zst.age", "upload_id": "u1"}]

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.aborted.append(key)


def test_every_object_of_a_backup_without_a_manifest_is_cleaned_up() -> None:
    from ops.backup.usecase import abort_orphaned_uploads

    complete = ["local/A/dump/toc.dat.zst.age", "local/A/dump/3.dat.zst.age", "local/A/manifest.json"]
    killed = ["local/B/dump/toc.dat.zst.age", "local/B/dump/4.dat.zst.age"]  # died before its manifest
    legacy = ["local/C/dump.pgc.zst.age"]  # a single stream that died before its manifest
    store = ListingStore([*complete, *killed, *legacy, "local/.lock"])
    cleaned = abort_orphaned_uploads(store, "local")  # type: ignore[arg-type]
    assert sorted(store.objects) == sorted([*complete, "local/.lock"])
    assert store.aborted == ["local/B/dump/3.dat.zst.age"]
    assert len(cleaned) == 1 + len(killed) + len(legacy)


def test_pruning_a_directory_backup_deletes_its_manifest_and_every_file() -> None:
    from ops.backup.usecase import PrunePlan, prune

    old = ["local/A/manifest.json", "local/A/dump/toc.dat.zst.age", "local/A/dump/3.dat.zst.age",
           "local/A/verified.json"]
    kept = ["local/B/manifest.json", "local/B/dump/toc.dat.zst.age"]
    store = ListingStore([*old, *kept])
    assert prune("local", store, PrunePlan(keep=["B"], delete=["A"])) == ["A"]  # type: ignore[arg-type]
    assert sorted(store.objects) == sorted(kept)


def test_a_failed_parallel_dump_names_the_workers_cause_not_only_the_leaders_last_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """pg_dump --jobs: a worker says why it failed, then the leader's last line is only "a worker process
    died unexpectedly" (all a 4 GB benchmark run reported). The error carries the cause first."""
    from ops.backup.usecase import _dump_and_upload
    from ops.errors import ExternalError
    from ops.pipeline import Stage

    said = ("pg_dump: error: could not obtain lock on relation \"employee_results_2026_01\"; "
            "pg_dump: error: a worker process died unexpectedly")
    script = "; ".join(f"echo '{line}' >&2" for line in said.split("; ")) + "; exit 1"
    with pytest.raises(ExternalError) as raised:
        _dump_and_upload(Stage("pg_dump", ["sh", "-c", script]), tmp_path, None, "local", "b1", "age1x",  # type: ignore[arg-type]
                         jobs=2, progress=uc._DumpProgress({}, lambda _n: None, serial=False))
    assert raised.value.message == "pg_dump failed: " + said


def test_two_sandboxes_never_share_a_work_folder_and_no_password_names_one() -> None:
    """Every sandbox is `local`: the scratch folders of backups, verifies and restores are named by the
    database's server and name (two sandboxes on one machine, e.g. the suite's two parts, collided in
    /tmp/ops-backup-local), the same for the same database, so a killed run's files are found again."""
    from ops.backup.usecase import work_folder

    one = work_folder("backup", "local", "postgresql://owner:s3cret@127.0.0.1:5433/main")
    again = work_folder("backup", "local", "postgresql://other:changed@127.0.0.1:5433/main")
    other_server = work_folder("backup", "local", "postgresql://owner:s3cret@127.0.0.1:5434/main")
    other_database = work_folder("backup", "local", "postgresql://owner:s3cret@127.0.0.1:5433/main_copy")
    assert one == again  # the same database: the next run removes what a killed one left
    assert len({one, other_server, other_database}) == 3
    assert one.name.startswith("ops-backup-local-") and "s3cret" not in str(one) and "owner" not in str(one)
