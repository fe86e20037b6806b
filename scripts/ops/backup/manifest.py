"""A backup's manifest, and the names of a backup's objects in the bucket (keys: ops.store_keys).

A directory backup (the default since issue 28):

    <env>/<id>/dump/<file>.age      one object per file of `pg_dump --format=directory
                                    --compress=zstd:1` (toc.dat, and a <dumpId>.dat.zst per
                                    table or partition), each encrypted with age on its own,
                                    uploaded first
    <env>/<id>/manifest.json        written last: only a manifest makes a backup exist;
                                    it lists every file with its stored size and sha256
    <env>/<id>/verified.json        written by `ops backup verify` when a restore test passed

The first directory backups (before 2026-12-07) were dumped uncompressed and stored each file
`zstd | age`, as `<file>.zst.age` (`<dumpId>.dat` files); restore, verify and fetch still read them
(their manifest's `format` says which). An older single-stream backup has one
`<env>/<id>/dump.pgc.zst.age` (pg_dump custom | zstd | age) and no file list; its manifest's
`format` says so, and restore and verify still read it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

DATA_NAME = "dump.pgc.zst.age"  # the single-stream format's one object
DIRECTORY_NAME = "dump"  # the directory format's objects are under <id>/dump/
FILE_SUFFIX = ".age"
PIPED_FILE_SUFFIX = ".zst.age"  # PIPED_DIRECTORY_FORMAT's files: compressed by zstd, then encrypted
MANIFEST_NAME = "manifest.json"
VERIFIED_NAME = "verified.json"
FORMAT = "pg_dump --format=custom --compress=0 | zstd | age"  # what a manifest without a file list holds
DIRECTORY_FORMAT = "pg_dump --format=directory --compress=zstd:1 --jobs N; each file age"
PIPED_DIRECTORY_FORMAT = "pg_dump --format=directory --compress=0 --jobs N; each file zstd | age"  # read only


def new_backup_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


class StoredFile(BaseModel):
    """One file of the dump directory as stored: `name` is its name in the directory pg_restore reads."""

    name: str
    key: str
    stored_bytes: int
    sha256: str


class Manifest(BaseModel):
    id: str
    environment: str
    database: str
    branch: str
    server_version: str
    tables: dict[str, int]
    # Single stream: the object, its size and sha256. Directory: the objects' common prefix, their
    # total size, and the sha256 of the file list (`files_digest`), so a listing shows one digest.
    data_key: str
    stored_bytes: int
    sha256: str
    format: str = FORMAT
    files: list[StoredFile] = []
    jobs: int = 1
    recipient: str
    tool_version: str
    started_at: datetime
    finished_at: datetime

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())

    @property
    def is_directory(self) -> bool:
        return self.format in (DIRECTORY_FORMAT, PIPED_DIRECTORY_FORMAT)

    @property
    def files_piped(self) -> bool:
        """Whether each file was stored `zstd | age` (so fetching it decompresses too), not age alone."""
        return self.format == PIPED_DIRECTORY_FORMAT

    @property
    def file_suffix(self) -> str:
        """What a file's stored object appends to its name in the dump directory."""
        return PIPED_FILE_SUFFIX if self.files_piped else FILE_SUFFIX

    def data_file(self, dump_id: str) -> str:
        """The dump directory's file holding a TOC entry's rows: pg_dump names it after the entry's dump id,
        with its compression's suffix."""
        return f"{dump_id}.dat" if self.files_piped else data_file_name(dump_id)


def data_file_name(dump_id: str) -> str:
    """The file `pg_dump --format=directory --compress=zstd` writes a table's rows to."""
    return f"{dump_id}.dat.zst"


def files_digest(files: list[StoredFile]) -> str:
    import hashlib

    listing = "".join(f"{f.sha256}  {f.name}\n" for f in sorted(files, key=lambda f: f.name))
    return hashlib.sha256(listing.encode()).hexdigest()


class Verification(BaseModel):
    backup_id: str
    verified_at: datetime
    ok: bool
    tables_checked: int
    rows_checked: int
    sanity_checks: dict[str, int]
    duration_s: float
