"""A backup's manifest, and the names of a backup's objects in the bucket (keys: ops.store_keys).

    <env>/<id>/dump.pgc.zst.age   the data (pg_dump custom | zstd | age), uploaded first
    <env>/<id>/manifest.json      written last: only a manifest makes a backup exist
    <env>/<id>/verified.json      written by `ops backup verify` when a restore test passed
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

DATA_NAME = "dump.pgc.zst.age"
MANIFEST_NAME = "manifest.json"
VERIFIED_NAME = "verified.json"
FORMAT = "pg_dump --format=custom --compress=0 | zstd | age"


def new_backup_id(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


class Manifest(BaseModel):
    id: str
    environment: str
    database: str
    branch: str
    server_version: str
    tables: dict[str, int]
    data_key: str
    stored_bytes: int
    sha256: str
    format: str = FORMAT
    recipient: str
    tool_version: str
    started_at: datetime
    finished_at: datetime

    @property
    def total_rows(self) -> int:
        return sum(self.tables.values())


class Verification(BaseModel):
    backup_id: str
    verified_at: datetime
    ok: bool
    tables_checked: int
    rows_checked: int
    sanity_checks: dict[str, int]
    duration_s: float
