"""Running the app's migrations against an environment's database (the same command deploys run)."""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

from autoenroll.contract import APP_DATABASE_ROLE
from ops.errors import ConfigError, VerificationError
from ops.processes import run_checked

APP_ROLE = APP_DATABASE_ROLE


def migrate_argv() -> list[str]:
    return [sys.executable, "-m", "autoenroll.migrate", "upgrade"]


def migrate(owner_url: str, *, app_role: str = APP_ROLE, app_url: str | None = None) -> None:
    """Bring the database to the app's head revision (idempotent), then check the app's role is no more than
    the migrations made it.

    With `app_url` (the app's own connection URL, as the stack made it), the app's role is first made, or
    given that URL's password, in SQL by the owner: a role made by Neon's API would be a member of
    neon_superuser (BYPASSRLS), so the app's role is never one (stacks/providers/neon.py)."""
    if app_url:
        check_app_role(owner_url, app_role)  # before touching it: the owner may not alter an API-made role
        ensure_app_role(owner_url, app_role, unquote(urlsplit(app_url).password or ""))
    env = {**os.environ, "DATABASE_URL": owner_url, "APP_DB_ROLE": app_role}
    run_checked(migrate_argv(), env=env, what="database migration")
    check_app_role(owner_url, app_role)


def ensure_app_role(owner_url: str, role: str, password: str) -> None:
    """The app's login role, made by the owner in SQL (default privileges only) or given `password` anew."""
    from psycopg import sql

    from ops.pg import connect, pg_errors

    if not password:
        raise ConfigError(f"the app's database URL has no password for {role}",
                          hint="the stack output connection_strings.<branch>.pooled carries it")
    with connect(owner_url, autocommit=True) as conn, pg_errors(f"making the app's role {role}"):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        verb = sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}")
        conn.execute(verb.format(sql.Identifier(role), sql.Literal(password)))


# Roles the app's role is or can become (pg_has_role MEMBER includes itself) holding an attribute that gets
# around row-level security or out of its grants (neon_superuser has BYPASSRLS, CREATEROLE, CREATEDB).
POWERFUL_MEMBERSHIPS = ("SELECT r.rolname FROM pg_roles r WHERE pg_has_role(%s, r.oid, 'MEMBER') "
                        "AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR r.rolcreatedb) ORDER BY 1")


def check_app_role(owner_url: str, role: str) -> None:
    """Exit 8 when the app's role holds, or can SET ROLE to a role that holds, a power around row-level
    security: then one tenant's request could read every tenant's rows."""
    from ops.pg import connect, pg_errors

    with connect(owner_url) as conn, pg_errors(f"checking the app's role {role}"):
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
            return  # not made yet (a migration without the app's URL): nothing can use it
        rows = conn.execute(POWERFUL_MEMBERSHIPS, (role,)).fetchall()
    if rows:
        names = ", ".join(str(r[0]) for r in rows)
        raise VerificationError(
            f"the app's database role {role} is or can become {names} (superuser, BYPASSRLS, CREATEROLE or "
            "CREATEDB): row-level security would not hold",
            hint="a role made through Neon's API is a member of neon_superuser: drop it and run "
                 "`ops db migrate`, which makes the app's role in SQL")


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
