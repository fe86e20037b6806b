"""The backup's commands as data. The stored formats are standard, so the plain tools restore them.

A directory backup (the default): `pg_dump --format=directory --jobs N --compress=zstd:1` writes one
zstd-compressed file per table (per partition: `employee_results` is partitioned by month, so its
months dump and restore side by side), and each file is stored as its own object, encrypted with
age. The plain tools put it back with a loop over the manifest's files, then a parallel restore
(pg_restore reads zstd-compressed files itself; runbooks/restore-database.md):

    age -d -i KEY.txt -o dump/FILE FILE.age                      (for each file)
    pg_restore --no-owner -j 4 -d TARGET dump

Why pg_dump compresses, not a zstd process per file: each of pg_dump's jobs then compresses its own
table's rows as it reads them, so compression splits over the jobs with the dump and never touches
disk uncompressed. The first directory backups dumped with --compress=0 and piped each finished file
through `zstd -T0 | age`: a second pass over every byte, which at 1.1 GB took the backup from 4.1 s
(pg_dump alone, compressing) to 8-9 s, no faster than pgBackRest (benchmarks/results/backup.txt).
Those backups (`<file>.zst.age`) restore with `age -d ... | zstd -d -o dump/FILE`.

An older single-stream backup (its manifest's `format` says which):

    age -d -i KEY.txt < OBJECT | zstd -d | pg_restore --no-owner -d TARGET

or, in parallel, from a file (pg_restore can only run jobs on an archive it can seek in):

    age -d -i KEY.txt < OBJECT | zstd -d -o dump.pgc && pg_restore --no-owner -j 4 -d TARGET dump.pgc

(`ops backup restore` loads the rows while downloading, `... | zstd -d | tee dump.pgc | pg_restore
--section=pre-data --section=data`, then builds indexes and keys with `pg_restore -j N --section=post-data`.)

zstd at level 1: on pg_dump output it is both faster and smaller than -3 (benchmarks/backup.py); age
encrypts to a public key, so the machine that makes backups can't read them. A directory backup's
table files are uploaded as pg_dump completes them (its `--verbose` log names each finished item),
toc.dat and the rest once it has exited.
"""

from __future__ import annotations

from collections.abc import Mapping

from ops.pg.tools import tool as pg_tool
from ops.pipeline import Stage

ZSTD_LEVEL = 1  # measured: on pg_dump output, -1 is both faster and smaller than -3 (benchmarks/backup.py)


def dump_stages(db_env: Mapping[str, str], recipient: str, *, snapshot: str | None) -> list[Stage]:
    pg_dump = [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password"]
    if snapshot:
        pg_dump.append(f"--snapshot={snapshot}")
    return [
        Stage("pg_dump", pg_dump, db_env),
        Stage("zstd", ["zstd", f"-{ZSTD_LEVEL}", "-T0", "-q", "-c"]),
        Stage("age", ["age", "--encrypt", "-r", recipient]),
    ]


def directory_dump(db_env: Mapping[str, str], out_dir: str, *, jobs: int, snapshot: str | None) -> Stage:
    """pg_dump in directory format, `jobs` tables at a time, each job compressing its table's file with
    zstd (PostgreSQL 16 and later; the tools are production's major, 17). With `--jobs`, pg_dump's
    workers join `snapshot`, so every file and the manifest's row counts describe one moment."""
    argv = [pg_tool("pg_dump"), "--format=directory", f"--compress=zstd:{ZSTD_LEVEL}", f"--jobs={jobs}",
            "--no-password", "-f", out_dir]
    if snapshot:
        argv.append(f"--snapshot={snapshot}")
    return Stage("pg_dump", argv, db_env)


def file_store_stages(path: str, recipient: str) -> list[Stage]:
    """One dump file as stored: age reads the file (pg_dump compressed it) and encrypts to the public key."""
    return [Stage("age", ["age", "--encrypt", "-r", recipient, path])]


def file_fetch_stages(identity_file: str, path: str, *, piped: bool = False) -> list[Stage]:
    """One stored object back into the dump directory as `path`: decrypted (pg_restore decompresses);
    a file of the first directory backups (`piped`, stored `zstd | age`) decompressed as well."""
    if piped:
        return [Stage("age", ["age", "--decrypt", "-i", identity_file]),
                Stage("zstd", ["zstd", "-d", "-q", "-f", "-o", path])]
    return [Stage("age", ["age", "--decrypt", "-i", identity_file, "-o", path])]


def directory_restore(db_env: Mapping[str, str], dump_dir: str, *, jobs: int, section: str,
                      scratch: bool = False) -> list[str]:
    """pg_restore of a dump directory into a new, empty database, one phase at a time: `data`
    (tables and rows, `jobs` tables or partitions at a time) or `post-data` (indexes, keys)."""
    argv = parallel_restore(db_env, dump_dir, jobs=jobs, section=section)
    if scratch:
        argv.insert(1, "--no-privileges")  # a scratch server may lack the app's roles
    return argv


def toc_list(dump_dir: str) -> list[str]:
    """`pg_restore --list` of a dump directory (it reads toc.dat only): one TOC entry a line."""
    return [pg_tool("pg_restore"), "--list", dump_dir]


def listed_restore(db_env: Mapping[str, str], dump_dir: str, *, section: str, use_list: str | None) -> list[str]:
    """pg_restore of one section (`pre-data` or `data`) of a dump directory into a new database, only the
    TOC entries listed in the file `use_list` when given (`-L`): a table's or partition's rows, from its
    own file, while other files are still downloading (pg_restore opens only the files it restores)."""
    return _pg_restore_into(db_env, dump_dir, f"--section={section}", *(["-L", use_list] if use_list else []))


def stream_restore_stages(identity_file: str, archive: str, db_env: Mapping[str, str]) -> list[Stage]:
    """Decrypt and decompress a stream, keep it as a local archive (`pg_restore --jobs` needs to seek
    for the post-data phase) and load the tables and their rows from the same stream meanwhile."""
    return [
        Stage("age", ["age", "--decrypt", "-i", identity_file]),
        Stage("zstd", ["zstd", "-d", "-q", "-c"]),
        Stage("tee", ["tee", archive]),
        Stage("pg_restore", [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--no-password",
                             "--section=pre-data", "--section=data", "-d", db_env["PGDATABASE"]], db_env),
    ]


def parallel_restore(db_env: Mapping[str, str], archive: str, *, jobs: int, section: str) -> list[str]:
    """pg_restore of one phase into a new, empty database: `data` (tables and their rows) or
    `post-data` (indexes, constraints, triggers: built `jobs` at a time)."""
    sections = ["--section=pre-data", "--section=data"] if section == "data" else ["--section=post-data"]
    return _pg_restore_into(db_env, archive, f"--jobs={jobs}", *sections)


def _pg_restore_into(db_env: Mapping[str, str], archive: str, *options: str) -> list[str]:
    """pg_restore into the new database named by `db_env`, objects owned by whoever connects, stopping at
    the first error, never prompting for a password; `options` choose the phase, jobs and entries."""
    return [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--no-password", *options,
            "-d", db_env["PGDATABASE"], archive]


def restore_stages(db_env: Mapping[str, str], identity_file: str, *, scratch: bool) -> list[Stage]:
    """Into the environment (`scratch=False`): replace every object, keep the app role's grants.
    Into a scratch database on another server, where the app's role may not exist: no grants."""
    pg_restore = [pg_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction", "--no-password",
                  "-d", db_env["PGDATABASE"]]
    pg_restore[1:1] = ["--no-privileges"] if scratch else ["--clean", "--if-exists"]
    return [
        Stage("age", ["age", "--decrypt", "-i", identity_file]),
        Stage("zstd", ["zstd", "-d", "-q", "-c"]),
        Stage("pg_restore", pg_restore, db_env),
    ]
