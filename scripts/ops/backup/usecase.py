"""Backup use-cases: create, list, verify, restore, prune.

They take an `Environment` and the ports (`ObjectStore`, `Heartbeat`); the CLI in
`ops.cli.backup` only parses flags and renders results.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ops import __version__, failpoints
from ops.backup import manifest as m
from ops.backup import swap
from ops.backup.commands import (
    directory_dump,
    directory_restore,
    file_fetch_stages,
    file_store_stages,
    listed_restore,
    parallel_restore,
    restore_stages,
    stream_restore_stages,
    toc_list,
)
from ops.backup.retention import Candidate, keep_set
from ops.environment import Environment
from ops.errors import ConfigError, ExternalError, NotFoundError, RefusedError, VerificationError
from ops.locks import object_lock
from ops.pg import connect, create_database, drop_database, libpq_env, row_counts, with_database
from ops.pg.tools import require_client_for
from ops.pipeline import Pipeline, Stage, sink, source
from ops.ports import Heartbeat, ObjectStore
from ops.secrets import scrub_text
from ops.store_keys import backup_key, backup_lock, backup_prefix

PART_SIZE = 16 * 1024 * 1024  # R2 wants equal-sized parts (but the last); 16 MiB keeps memory bounded
UPLOAD_WORKERS = 3
Progress = Callable[[int], None]  # bytes done so far
Phase = Callable[[str], None]  # a long step starts
Sized = Callable[[int, int], None]  # database bytes, table data bytes


def work_folder(kind: str, label: str, database_url: str) -> Path:
    """The scratch folder of one kind of run on one database: the same path every time, so a run
    killed with -9 leaves its files for the next run on that database to remove (under its lock).

    Named by the database's server and name, not the environment's name alone: every sandbox on a
    machine is `local` (a developer's beside a test run's, or the test suite's two parts), and one
    sandbox's backup emptying the folder another's pg_dump was writing to failed both. The digest is of
    host, port and database only, never the URL's user or password."""
    parts = urlsplit(database_url)
    where = f"{parts.hostname}:{parts.port}/{unquote(parts.path.lstrip('/'))}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"ops-{kind}-{label}-{digest}"


def _noop(_done: int) -> None:
    return None


def _no_phase(_step: str) -> None:
    return None


@dataclass
class CreateResult:
    manifest: m.Manifest
    aborted_orphans: list[str]
    heartbeat: str
    seconds: float


def abort_orphaned_uploads(store: ObjectStore, environment: str) -> list[str]:
    """Clean up after runs that died: abort their multipart uploads, delete every object of a backup
    without a manifest (a directory backup's files, or a single stream's object).

    Only called while holding the environment's backup lock, so none of them is live.
    """
    cleaned = []
    prefix = backup_prefix(environment)
    for upload in store.list_multipart(prefix):
        store.abort_multipart(upload["key"], upload["upload_id"])
        cleaned.append(f"upload {upload['key']}")
    keys = set(store.list_keys(prefix))
    for key in sorted(keys):
        backup_id, slash, _name = key[len(prefix):].partition("/")
        if not slash:
            continue  # the lock (<env>/.lock), not a backup's object
        if backup_key(environment, backup_id, m.MANIFEST_NAME) not in keys:
            store.delete(key)  # completed upload whose run died before writing the manifest
            cleaned.append(f"object {key}")
    return cleaned


def _recipient(env: Environment) -> str:
    if not env.backup_recipient:
        raise ConfigError("BACKUP_AGE_RECIPIENT: required (the age public key backups are encrypted to)")
    return env.backup_recipient


def _no_size(_database: int, _data: int) -> None:
    return None


def create(env: Environment, store: ObjectStore, heartbeat: Heartbeat | None, *,
           progress: Progress = _noop, sized: Sized = _no_size, jobs: int | None = None) -> CreateResult:
    """Dump the environment's database in directory format, `jobs` tables (partitions) at a time,
    each file compressed by pg_dump, then encrypt and upload each as its own object; the manifest, listing
    them, last.

    `sized` gets the database's size and its tables' (what pg_dump reads, without indexes) before
    the dump starts; `progress` then gets the size of the tables pg_dump has finished so far, so a
    caller can show a total and an ETA."""
    recipient = _recipient(env)
    jobs = jobs or default_jobs()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    url = env.database_url()
    with object_lock(store, backup_lock(env.name), ttl=timedelta(hours=6),
                     purpose=f"backup of {env.name}"):
        aborted = abort_orphaned_uploads(store, env.name)
        backup_id = m.new_backup_id(started)
        if store.size(backup_key(env.name, backup_id, m.MANIFEST_NAME)) is not None:
            backup_id = started.strftime("%Y%m%dT%H%M%S%fZ")  # two backups within one second
        data_key = backup_key(env.name, backup_id, m.DIRECTORY_NAME + "/")
        # One snapshot for the dump and the row counts, so the manifest describes exactly the dump.
        with connect(url) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = str(conn.execute("SELECT pg_export_snapshot()").fetchone()[0])  # type: ignore[index]
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
            require_client_for(version, name="pg_dump", what=f"the {env.name} database")
            database = str(conn.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
            tables = row_counts(conn)
            table_sizes = {f"{schema}.{name}": int(size) for schema, name, size in conn.execute(  # type: ignore[call-overload]
                "SELECT schemaname, relname, pg_table_size(relid) FROM pg_stat_user_tables")}
            sized(int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]),  # type: ignore[index, arg-type]
                  sum(table_sizes.values()))
            # One folder per environment, emptied first (we hold the lock): a run killed with -9
            # leaves its dump for the next run to remove.
            work = work_folder("backup", env.name, url)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(mode=0o700)
            try:
                dump_dir = work / m.DIRECTORY_NAME
                files = _dump_and_upload(directory_dump(libpq_env(url), str(dump_dir), jobs=jobs, snapshot=snapshot),
                                         dump_dir, store, env.name, backup_id, recipient, jobs=jobs,
                                         progress=_DumpProgress(table_sizes, progress, serial=jobs == 1))
                conn.rollback()
            finally:
                shutil.rmtree(work, ignore_errors=True)
        for stored_file in files:
            if store.size(stored_file.key) != stored_file.stored_bytes:
                raise VerificationError(f"stored object {stored_file.key}: size differs from the bytes sent "
                                        f"({stored_file.stored_bytes})")
        failpoints.hit("backup.before_manifest")
        manifest = m.Manifest(
            id=backup_id, environment=env.name, database=database, branch=env.branch, server_version=version,
            tables=tables, data_key=data_key, stored_bytes=sum(f.stored_bytes for f in files),
            sha256=m.files_digest(files), format=m.DIRECTORY_FORMAT, files=files, jobs=jobs, recipient=recipient,
            tool_version=__version__, started_at=started, finished_at=datetime.now(UTC))
        store.put_bytes(backup_key(env.name, backup_id, m.MANIFEST_NAME), manifest.model_dump_json(indent=2).encode())
    beat = "not configured"
    if heartbeat is not None:
        try:
            heartbeat.ping()
            beat = "pinged"
        except Exception as exc:  # the backup is good; the missed ping will raise its own alert
            beat = f"failed: {exc}"
    return CreateResult(manifest, aborted, beat, time.monotonic() - t0)


FINISHED = re.compile(r"finished item (\d+) TABLE DATA (.+)$")  # pg_dump --verbose, parallel mode
DUMPING = re.compile(r'dumping contents of table "(.+)"$')  # pg_dump --verbose, a table's rows begin


class _DumpProgress:
    """pg_dump's progress as the bytes of the tables it has finished (their size in the catalog, which
    the caller was given as the total), from its `--verbose` log: in parallel mode "finished item <id>
    TABLE DATA <table>" ends a table; with one job, a table ends where the next one's rows begin.
    (The files' sizes can't say it: pg_dump compresses them, about 6x.)"""

    def __init__(self, table_sizes: dict[str, int], progress: Progress, *, serial: bool) -> None:
        self.sizes, self.progress, self.serial = table_sizes, progress, serial
        self.done = 0
        self.current: str | None = None

    def line(self, line: str) -> None:
        if (begins := DUMPING.search(line)) is not None:
            if self.serial:
                self._finished(self.current)
            self.current = begins[1]
        elif (ends := FINISHED.search(line)) is not None and not self.serial:
            # The parallel log names the table without its schema.
            self._finished(next((q for q in self.sizes if q.rpartition(".")[2] == ends[2].strip()), None))

    def _finished(self, table: str | None) -> None:
        if table is not None and table in self.sizes:
            self.done += self.sizes.pop(table)
            self.progress(self.done)

    def end(self) -> None:
        self.done += sum(self.sizes.values())
        self.sizes.clear()
        self.progress(self.done)


def _said(errors: list[str]) -> str:
    """pg_dump's error lines, cause first: in parallel mode the leader's last line is often only "a worker
    process died unexpectedly", while the worker said why before it (a benchmark run showed only that)."""
    distinct = list(dict.fromkeys(errors))
    return "; ".join(distinct[:2] + (["..."] if len(distinct) > 3 else []) + distinct[2:][-1:])


def _exit(code: int) -> str:
    return f"killed by signal {-code}" if code < 0 else f"exit {code}"


def _dump_and_upload(stage: Stage, dump_dir: Path, store: ObjectStore, env_name: str, backup_id: str,
                     recipient: str, *, jobs: int, progress: _DumpProgress) -> list[m.StoredFile]:
    """Run pg_dump and store each file of its folder as its own object (age), `jobs` at a time.

    A table's file is uploaded as soon as pg_dump says it is complete: in parallel mode its
    `--verbose` log has "finished item <dumpId> TABLE DATA <table>" when a worker has closed
    `<dumpId>.dat.zst`. The rest (toc.dat, which the leader writes last; any file of a run with one
    job) is uploaded when pg_dump has exited successfully."""
    proc = subprocess.Popen([*stage.argv, "--verbose"], env=dict(stage.env) if stage.env is not None else None,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            errors="replace")

    def one(path: Path) -> m.StoredFile:
        key = backup_key(env_name, backup_id, f"{m.DIRECTORY_NAME}/{path.name}{m.FILE_SUFFIX}")
        digest, stored = _upload(store, key, file_store_stages(str(path), recipient), _noop)
        return m.StoredFile(name=path.name, key=key, stored_bytes=stored, sha256=digest)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    started: dict[str, Future[m.StoredFile]] = {}
    errors: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "error" in line.lower():
                errors.append(line.strip())
            progress.line(line)
            found = FINISHED.search(line)
            if found and (path := dump_dir / m.data_file_name(found[1])).is_file():
                started[path.name] = pool.submit(one, path)
        if proc.wait() != 0:
            raise ExternalError("pg_dump failed: " + scrub_text(_said(errors) or _exit(proc.returncode)))
        failpoints.hit("backup.dumped")
        progress.end()
        rest = sorted((p for p in dump_dir.iterdir() if p.name not in started), key=lambda p: p.stat().st_size,
                      reverse=True)
        if not (dump_dir / "toc.dat").is_file():
            raise VerificationError(f"pg_dump wrote no toc.dat in {dump_dir}")
        for path in rest:
            started[path.name] = pool.submit(one, path)
        files = [future.result() for future in started.values()]
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        pool.shutdown(wait=True, cancel_futures=True)  # the uploads in flight abort their own multipart
        raise
    pool.shutdown(wait=True)
    return sorted(files, key=lambda f: f.name)


def _upload(store: ObjectStore, key: str, stages: list[Any], progress: Progress) -> tuple[str, int]:
    """Stream the pipeline's output as a multipart upload; abort it on any failure."""
    upload_id = store.start_multipart(key)
    failpoints.hit("backup.upload_started")
    sha = hashlib.sha256()
    total = 0
    futures: list[Future[str]] = []
    slots = threading.BoundedSemaphore(UPLOAD_WORKERS + 1)  # bounds memory: parts in flight
    running: list[Pipeline] = []
    try:
        with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
            for number, block in enumerate(source(stages, PART_SIZE, running.append), start=1):
                sha.update(block)
                total += len(block)
                slots.acquire()
                future = pool.submit(store.upload_part, key, upload_id, number, block)
                future.add_done_callback(lambda _f: slots.release())
                futures.append(future)
                dumped = _bytes_read(running[0].procs[1].pid) if len(running[0].procs) > 1 else None
                progress(total if dumped is None else dumped)
                failpoints.hit("backup.part_read")
            etags = [f.result() for f in futures]
        if not etags:
            raise VerificationError("the dump produced no output")
        store.complete_multipart(key, upload_id, etags)
        failpoints.hit("backup.upload_completed")
    except BaseException:
        store.abort_multipart(key, upload_id)
        raise
    return sha.hexdigest(), total


def _bytes_read(pid: int) -> int | None:
    """What a process has read so far (Linux /proc): for the compressor, the bytes pg_dump wrote."""
    try:
        with open(f"/proc/{pid}/io") as io:
            for line in io:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def list_backups(env_name: str, store: ObjectStore) -> list[tuple[m.Manifest, m.Verification | None]]:
    """Complete backups (those with a manifest), newest first, with their last verification."""
    out = []
    for key in store.list_keys(backup_prefix(env_name)):
        if not key.endswith("/" + m.MANIFEST_NAME):
            continue
        raw = store.get_bytes(key)
        if raw is None:
            continue
        manifest = m.Manifest.model_validate_json(raw)
        verified_raw = store.get_bytes(backup_key(env_name, manifest.id, m.VERIFIED_NAME))
        verification = m.Verification.model_validate_json(verified_raw) if verified_raw else None
        out.append((manifest, verification))
    return sorted(out, key=lambda pair: pair[0].finished_at, reverse=True)


def find(env_name: str, store: ObjectStore, backup_id: str | None) -> m.Manifest:
    backups = list_backups(env_name, store)
    if not backups:
        raise NotFoundError(f"no complete backup for {env_name}", hint=f"make one: ops backup create --env {env_name}")
    if backup_id is None:
        return backups[0][0]
    for manifest, _ in backups:
        if manifest.id == backup_id:
            return manifest
    raise NotFoundError(f"backup {backup_id} not found for {env_name}", hint=f"see: ops backup list --env {env_name}")


def _checked_stream(store: ObjectStore, manifest: m.Manifest, progress: Progress) -> tuple[Iterator[bytes], Any]:
    sha = hashlib.sha256()
    state = {"bytes": 0}

    def chunks() -> Iterator[bytes]:
        for chunk in store.stream(manifest.data_key):
            sha.update(chunk)
            state["bytes"] += len(chunk)
            progress(state["bytes"])
            yield chunk

    return chunks(), (sha, state)


def _identity(env: Environment) -> str:
    if not env.backup_identity_file:
        raise ConfigError("BACKUP_AGE_IDENTITY_FILE: required to decrypt backups (path to the age key file)")
    return env.backup_identity_file


@dataclass
class VerifyResult:
    manifest: m.Manifest
    verification: m.Verification
    problems: list[str] = field(default_factory=list)


def verify(env: Environment, store: ObjectStore, backup_id: str | None, *, progress: Progress = _noop) -> VerifyResult:
    """Download, checksum, restore into a scratch database, compare counts, run sanity queries, drop it."""
    from autoenroll.sanity import SANITY_QUERIES

    manifest = find(env.name, store, backup_id)
    require_client_for(manifest.server_version, name="pg_restore", what=f"backup {manifest.id}")
    if env.scratch_database_url is None:
        raise ConfigError("OPS_SCRATCH_DATABASE_URL: required (a PostgreSQL server where verify may create "
                          "and drop a scratch database)")
    admin = env.scratch_database_url.get_secret_value()
    scratch = f"verify_{manifest.id.lower()}"
    t0 = time.monotonic()
    problems: list[str] = []
    create_database(admin, scratch)
    try:
        if manifest.is_directory:
            problems += _verify_directory(env, store, manifest, libpq_env(admin, database=scratch), progress)
        else:
            chunks, (sha, state) = _checked_stream(store, manifest, progress)
            try:
                sink(restore_stages(libpq_env(admin, database=scratch), _identity(env), scratch=True), chunks)
            except Exception as exc:
                problems.append(f"restore failed: {exc}")
            if not problems:
                if state["bytes"] != manifest.stored_bytes:
                    problems.append(f"size {state['bytes']} differs from the manifest's {manifest.stored_bytes}")
                if sha.hexdigest() != manifest.sha256:
                    problems.append("sha256 of the stored bytes differs from the manifest")
        sanity: dict[str, int] = {}
        if not problems:
            with connect(with_database(admin, scratch)) as conn:
                restored = row_counts(conn)
                for table, expected in manifest.tables.items():
                    if restored.get(table) != expected:
                        problems.append(f"{table}: {restored.get(table)} rows restored, manifest says {expected}")
                for name, query in SANITY_QUERIES.items():
                    found = int(conn.execute(query).fetchone()[0])  # type: ignore[index, arg-type]
                    sanity[name] = found
                    if found:
                        problems.append(f"sanity check {name}: {found} problem rows")
    finally:
        drop_database(admin, scratch)
    verification = m.Verification(
        backup_id=manifest.id, verified_at=datetime.now(UTC), ok=not problems, tables_checked=len(manifest.tables),
        rows_checked=manifest.total_rows, sanity_checks=sanity if not problems else {},
        duration_s=round(time.monotonic() - t0, 2))
    if not problems:
        store.put_bytes(backup_key(env.name, manifest.id, m.VERIFIED_NAME),
                        verification.model_dump_json(indent=2).encode())
    return VerifyResult(manifest, verification, problems)


def _verify_directory(env: Environment, store: ObjectStore, manifest: m.Manifest, scratch_env: dict[str, str],
                      progress: Progress) -> list[str]:
    """Download every file (each checked against its size and sha256), then restore them in parallel."""
    # One folder per environment, emptied first: a verify killed with -9 leaves its files for the next.
    work = work_folder("verify", env.name, env.database_url())
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        dump_dir = work / m.DIRECTORY_NAME
        try:
            fetch_directory(store, manifest, dump_dir, identity_file=_identity(env), jobs=default_jobs(),
                            progress=progress)
        except (VerificationError, ExternalError) as exc:
            return [str(exc)]
        try:
            for section in ("data", "post-data"):
                _run(directory_restore(scratch_env, str(dump_dir), jobs=default_jobs(), section=section,
                                       scratch=True), scratch_env)
        except ExternalError as exc:
            return [f"restore failed: {exc}"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return []


class _FileFetcher:
    """Downloads one stored file of a directory backup into the dump directory, checking it against the
    manifest's size and sha256 before anything may read it; counts the bytes for `progress` (thread-safe)."""

    def __init__(self, store: ObjectStore, manifest: m.Manifest, dump_dir: Path, identity_file: str | None,
                 progress: Progress) -> None:
        self.store, self.dump_dir, self.identity_file, self.progress = store, dump_dir, identity_file, progress
        self.piped, self.suffix = manifest.files_piped, manifest.file_suffix
        self.bytes = 0
        self._lock = threading.Lock()
        dump_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def __call__(self, entry: m.StoredFile) -> m.StoredFile:
        sha = hashlib.sha256()
        size = 0

        def chunks() -> Iterator[bytes]:
            nonlocal size
            for chunk in self.store.stream(entry.key):
                sha.update(chunk)
                size += len(chunk)
                with self._lock:
                    self.bytes += len(chunk)
                    self.progress(self.bytes)
                yield chunk

        # Decrypted and decompressed under a temporary name, renamed only once checked: a file under its
        # own name in the dump directory is one whose sha256 matched.
        target = self.dump_dir / entry.name
        partial = self.dump_dir / f".{entry.name}.part"
        try:
            if self.identity_file is None:
                target = self.dump_dir / f"{entry.name}{self.suffix}"
                with open(partial, "wb") as out:
                    for chunk in chunks():
                        out.write(chunk)
            else:
                sink(file_fetch_stages(self.identity_file, str(partial), piped=self.piped), chunks())
        except ExternalError as exc:
            raise ExternalError(f"{entry.key}: {exc}") from exc
        except NotFoundError:
            raise VerificationError(f"{entry.key}: listed in the manifest, missing from the store") from None
        if size != entry.stored_bytes:
            raise VerificationError(f"{entry.key}: {size} bytes stored, the manifest says {entry.stored_bytes}")
        if sha.hexdigest() != entry.sha256:
            raise VerificationError(f"{entry.key}: its sha256 differs from the manifest's")
        partial.rename(target)
        return entry


def fetch_directory(store: ObjectStore, manifest: m.Manifest, dump_dir: Path, *, identity_file: str | None,
                    jobs: int, progress: Progress = _noop) -> int:
    """Download each of a directory backup's files, `jobs` at a time, into `dump_dir`: decrypted and
    decompressed where stored `zstd | age` (a directory pg_restore reads) when given the identity, else
    as stored (`<name>.age`, for the plain tools). Each is checked against the manifest's size and
    sha256; the bytes downloaded."""
    one = _FileFetcher(store, manifest, dump_dir, identity_file, progress)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for future in [pool.submit(one, entry) for entry in manifest.files]:
            future.result()
    return one.bytes


# A TABLE DATA line of `pg_restore --list`: "<dump id>; <catalog oid> <oid> TABLE DATA <schema> <name> <owner>".
# In a directory dump its rows are the file "<dump id>.dat.zst" (manifest.data_file: ".dat" before zstd).
_TABLE_DATA = re.compile(r"^(\d+); \d+ \d+ TABLE DATA ")


def restore_as_downloaded(store: ObjectStore, manifest: m.Manifest, dump_dir: Path, db_env: dict[str, str], *,
                          identity_file: str, jobs: int,
                          progress: Progress = _noop) -> tuple[dict[str, float], int]:
    """Load a directory backup's tables and rows into the new database while its files are still arriving.

    Downloading everything first left the server idle for the whole download (2.8 s of 22.5 s at 1.1 GB).
    Here: toc.dat first (checked), the schema without indexes and keys (pre-data); then each file, `jobs`
    at a time, biggest first, and as soon as one is downloaded and its size and sha256 checked, a
    `pg_restore -L` of its table's (or month's partition's) rows, `jobs` of those at a time; last, the
    data entries with no file of their own (sequence values). A file that fails its check stops the
    download and any restore not yet started, waits for those running (so no process outlives the call),
    and raises: the caller drops the new database. The seconds until the last file was checked and in all,
    and the bytes downloaded."""
    t0 = time.monotonic()
    fetch = _FileFetcher(store, manifest, dump_dir, identity_file, progress)
    toc = next((f for f in manifest.files if f.name == "toc.dat"), None)
    if toc is None:
        raise VerificationError(f"backup {manifest.id}: the manifest lists no toc.dat")
    fetch(toc)
    _run(listed_restore(db_env, str(dump_dir), section="pre-data", use_list=None), db_env)
    lines = b"".join(source([Stage("pg_restore --list", toc_list(str(dump_dir)))], 1 << 16)).decode().splitlines()
    stored = {f.name for f in manifest.files}
    # Only files the manifest lists: a TABLE DATA entry whose file it lacks goes with the rest at the end,
    # where pg_restore fails naming the missing file.
    own_file = {name: line for line in lines
                if (found := _TABLE_DATA.match(line)) and (name := manifest.data_file(found[1])) in stored}
    lists = dump_dir.parent / "lists"
    lists.mkdir(mode=0o700, exist_ok=True)

    def load(name: str) -> None:
        use_list = lists / f"{name}.list"
        use_list.write_text(own_file[name] + "\n")
        _run(listed_restore(db_env, str(dump_dir), section="data", use_list=str(use_list)), db_env)

    rest = [f for f in manifest.files if f.name != "toc.dat"]
    rest.sort(key=lambda f: f.stored_bytes, reverse=True)
    downloads = ThreadPoolExecutor(max_workers=max(1, jobs))
    loads = ThreadPoolExecutor(max_workers=max(1, jobs))
    loading: list[Future[None]] = []
    downloaded = 0.0
    try:
        pending = [downloads.submit(fetch, entry) for entry in rest]
        for future in as_completed(pending):
            entry = future.result()
            if entry.name in own_file:
                loading.append(loads.submit(load, entry.name))
        downloaded = time.monotonic() - t0
        for done in as_completed(loading):
            done.result()
    finally:
        downloads.shutdown(wait=True, cancel_futures=True)
        loads.shutdown(wait=True, cancel_futures=True)
    others = [line for line in lines if line and not line.startswith(";") and line not in own_file.values()]
    if others:
        use_list = lists / "others.list"
        use_list.write_text("\n".join(others) + "\n")
        _run(listed_restore(db_env, str(dump_dir), section="data", use_list=str(use_list)), db_env)
    return {"download": round(downloaded, 2), "download+data": round(time.monotonic() - t0, 2)}, fetch.bytes


def fetch(store: ObjectStore, manifest: m.Manifest, target: Any, *, progress: Progress = _noop) -> int:
    """Download the stored object to `target` (a binary file), checking its sha256; the bytes written."""
    chunks, (sha, state) = _checked_stream(store, manifest, progress)
    for chunk in chunks:
        target.write(chunk)
    if sha.hexdigest() != manifest.sha256:
        raise VerificationError(f"downloaded {manifest.data_key}, but its sha256 differs from the manifest")
    return int(state["bytes"])


def default_jobs() -> int:
    """pg_restore jobs: one per core of the machine running it (the server builds the indexes)."""
    return max(1, os.cpu_count() or 1)


def restore_plan(env: Environment, manifest: m.Manifest, *, jobs: int | None = None) -> list[str]:
    target = env.database_url()
    from ops.secrets import mask_url

    name = unquote(urlsplit(target).path.lstrip("/"))
    if manifest.is_directory:
        return [
            f"download the {len(manifest.files)} files under {manifest.data_key} ({manifest.stored_bytes} bytes), "
            f"{jobs or default_jobs()} at a time, biggest first, decrypt (age"
            + (") and decompress (zstd)" if manifest.files_piped else "; pg_dump compressed them")
            + " each into a local dump directory, checking each against the manifest's size and sha256",
            f"into a new database {swap.staging_name(name)} beside {mask_url(target)}: the schema, then each "
            f"table's or month's rows as soon as its file has arrived ({jobs or default_jobs()} at a time), then "
            f"indexes and constraints with pg_restore --jobs {jobs or default_jobs()}",
            f"expect {len(manifest.tables)} tables, {manifest.total_rows} rows (as dumped at {manifest.finished_at}); "
            "on any difference or failure the new database is dropped and nothing has changed",
            f"swap: {name} is renamed aside, the restored database takes its name (sessions on {name} are ended), "
            "the old one is dropped",
        ]
    return [
        f"download {manifest.data_key} ({manifest.stored_bytes} bytes), decrypt (age) and decompress (zstd), "
        f"loading tables and rows into a new database {swap.staging_name(name)} beside {mask_url(target)} "
        "as they arrive and keeping a local archive; check the download against the manifest's sha256",
        f"pg_restore --jobs {jobs or default_jobs()} from the archive: indexes and constraints",
        f"expect {len(manifest.tables)} tables, {manifest.total_rows} rows (as dumped at {manifest.finished_at}); "
        "on any difference or failure the new database is dropped and nothing has changed",
        f"swap: {name} is renamed aside, the restored database takes its name (sessions on {name} are ended), "
        "the old one is dropped",
    ]


def restore(env: Environment, store: ObjectStore, manifest: m.Manifest, *, jobs: int | None = None,
            progress: Progress = _noop, phase: Phase = _no_phase) -> dict[str, Any]:
    """Replace the environment's database with the backup, atomically (a new database, then a swap)."""
    target = env.database_url()
    require_client_for(manifest.server_version, name="pg_restore", what=f"backup {manifest.id}")
    name = unquote(urlsplit(target).path.lstrip("/"))
    admin = with_database(target, "postgres")
    jobs = jobs or default_jobs()
    t0 = time.monotonic()
    for item in swap.recover(admin, name):
        phase(item)
    timings: dict[str, float] = {}
    # One folder per database, emptied first: a run killed with -9 leaves its archive for the next run to remove.
    work = work_folder("restore", name, target)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        archive = str(work / "dump.pgc")
        staging = swap.create_staging(admin, name)
        try:
            staging_env = libpq_env(target, database=staging)
            # The rows load while the backup downloads (one stream: a table's rows can't be split
            # across jobs, and this app's data is nearly all one table), and the archive is kept
            # for the indexes and constraints, built --jobs at a time. The sha256 is checked before
            # anything but the new database has been touched: on a difference it is dropped.
            if manifest.is_directory:
                # Each table's (each month's partition's) rows load as soon as its file is downloaded and
                # checked, `jobs` at a time, while the other files are still arriving.
                phase(f"download, decrypt, decompress {len(manifest.files)} files; restore tables and rows "
                      f"as each arrives ({jobs} jobs)")
                dump_dir = work / m.DIRECTORY_NAME
                loaded, downloaded = restore_as_downloaded(store, manifest, dump_dir, staging_env,
                                                           identity_file=_identity(env), jobs=jobs, progress=progress)
                timings.update(loaded)
                state = {"bytes": downloaded}
                archive = str(dump_dir)
            else:
                phase("download, decrypt, decompress; restore tables and rows as they arrive")
                chunks, (sha, state) = _checked_stream(store, manifest, progress)
                sink(stream_restore_stages(_identity(env), archive, staging_env), chunks)
                if sha.hexdigest() != manifest.sha256:
                    raise VerificationError("the stored object's sha256 differs from the manifest: nothing was "
                                            "restored")
                timings["download+data"] = round(time.monotonic() - t0, 2)
            failpoints.hit("restore.after.data")
            phase(f"restore indexes and constraints ({jobs} jobs)")
            t1 = time.monotonic()
            _run(parallel_restore(staging_env, archive, jobs=jobs, section="post-data"), staging_env)
            timings["post-data"] = round(time.monotonic() - t1, 2)
            failpoints.hit("restore.after.post-data")
            with connect(with_database(target, staging)) as conn:
                restored = row_counts(conn)
            mismatched = {t: (restored.get(t), n) for t, n in manifest.tables.items() if restored.get(t) != n}
            if mismatched:
                raise VerificationError(f"row counts differ from the manifest: {mismatched}; nothing was changed")
        except BaseException:
            drop_database(admin, staging)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    phase(f"swap {staging} into {name}")
    t1 = time.monotonic()
    swap.swap(admin, name)
    timings["swap"] = round(time.monotonic() - t1, 2)
    return {"backup": manifest.id, "bytes": state["bytes"], "seconds": round(time.monotonic() - t0, 2),
            "jobs": jobs, "timings_s": timings, "tables": len(manifest.tables), "mismatched_tables": {}}


def _run(argv: list[str], db_env: dict[str, str]) -> None:
    pipe = Pipeline([Stage(argv[0].rsplit("/", 1)[-1], argv, db_env)], feed_stdin=False, capture_stdout=False)
    try:
        pipe.check()
    except BaseException:
        pipe.kill()
        raise


@dataclass
class PrunePlan:
    keep: list[str]
    delete: list[str]


def prune_plan(env_name: str, store: ObjectStore, *, daily: int, monthly: int) -> PrunePlan:
    backups = list_backups(env_name, store)
    candidates = [Candidate(mf.id, mf.finished_at, bool(v and v.ok)) for mf, v in backups]
    keep = keep_set(candidates, daily=daily, monthly=monthly)
    ordered = [c.id for c in candidates]
    return PrunePlan(keep=[i for i in ordered if i in keep], delete=[i for i in ordered if i not in keep])


def prune(env_name: str, store: ObjectStore, plan: PrunePlan) -> list[str]:
    """Delete the planned backups: manifest first, so a half-deleted backup never lists as complete."""
    if plan.keep == [] and plan.delete:
        raise RefusedError("refusing to delete every backup")
    deleted = []
    for backup_id in plan.delete:
        store.delete(backup_key(env_name, backup_id, m.MANIFEST_NAME))
        for key in store.list_keys(backup_key(env_name, backup_id, "")):
            store.delete(key)  # a directory backup's files, a single stream's object, verified.json
        deleted.append(backup_id)
    return deleted


def manifest_json(manifest: m.Manifest) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest.model_dump_json())
    return data
