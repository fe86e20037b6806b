"""Running the app's migrations against an environment's database (the same command deploys run)."""

from __future__ import annotations

import os
import sys

from ops.processes import run_checked

APP_ROLE = "autoenroll_app"


def migrate_argv() -> list[str]:
    return [sys.executable, "-m", "autoenroll.migrate", "upgrade"]


def migrate(owner_url: str, *, app_role: str = APP_ROLE) -> None:
    """Bring the database to the app's head revision (idempotent)."""
    env = {**os.environ, "DATABASE_URL": owner_url, "APP_DB_ROLE": app_role}
    run_checked(migrate_argv(), env=env, what="database migration")


def head_revision() -> str:
    from autoenroll.migrate import head_revision as app_head

    return app_head()


def schema_revision(url: str) -> str | None:
    """The revision a database is at (None before the first migration)."""
    import psycopg

    from ops.pg import connect, pg_errors

    with connect(url) as conn, pg_errors("reading the schema revision"):
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return str(row[0]) if row else None
