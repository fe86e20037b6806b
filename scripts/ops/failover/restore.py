"""Restoring the latest verified backup as the database a standby takes over with, and
counting the writes the old one received after the restored point (sandbox and cloud alike)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from ops.backup import usecase as backups
from ops.environment import Environment
from ops.failover.usecase import LATE_WRITE_QUERIES, SEED_SETTINGS, require_backup
from ops.migrations import migrate
from ops.pg import connect, create_database, with_database
from ops.ports import ObjectStore


def restore_latest_backup(env: Environment, store: ObjectStore, admin_url: str, database: str, *,
                          tune: bool, app_url: str | None = None) -> dict[str, Any]:
    """Latest verified backup into `database` on the server of `admin_url`, migrated to head;
    `tune` applies the recommended production settings (needs a superuser). With `app_url` (the
    app's URL on that server), the app's role is made there too (`migrate`), so the app serves
    from the restored database as itself, under row-level security, not as the server's owner."""
    manifest = require_backup(backups.list_backups(env.name, store))
    create_database(admin_url, database)
    url = with_database(admin_url, database)
    target = env.model_copy(update={"database_urls": {env.branch: SecretStr(url)}})
    result = backups.restore(target, store, manifest)
    migrate(url, app_url=app_url)  # the backup may predate the code now deployed
    pending: list[str] = []
    if tune:
        with connect(admin_url, autocommit=True) as conn:
            for name, value in SEED_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names and values are our constants
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)  # the reload is a signal: give the postmaster a moment before asking what is pending
            pending = [str(r[0]) for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart")]
    return {"database": database, "kind": "standby", "backup_id": manifest.id,
            "point": manifest.finished_at.isoformat(), "restored_tables": result["tables"],
            "settings_applied": len(SEED_SETTINGS) if tune else 0, "settings_pending_restart": pending}


def count_late_writes(url: str, point: datetime) -> dict[str, int]:
    with connect(url) as conn:
        return {table: int(conn.execute(query, (point,)).fetchone()[0])  # type: ignore[index, arg-type]
                for table, query in LATE_WRITE_QUERIES.items()}
