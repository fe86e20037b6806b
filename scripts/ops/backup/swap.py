"""Restore all-or-nothing with parallel jobs: build the database beside the live one, then swap names.

`pg_restore --jobs` can't run in one transaction, so the restore goes into `<db>_restoring`
and only a complete, counted restore takes the live name, by two renames while nobody is
connected. The database's own properties (owner, grants, settings), which a dump without
`--create` does not carry, are copied across. A crash between the two renames leaves the
old database as `<db>_pre_restore`; the next run puts it back before anything else.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from ops import failpoints
from ops.pg import connect

Conn = psycopg.Connection[tuple[object, ...]]
RENAME_WAIT_S = 10.0


def staging_name(name: str) -> str:
    return f"{name}_restoring"


def preserved_name(name: str) -> str:
    return f"{name}_pre_restore"


def _exists(conn: Conn, name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _rename(conn: Conn, old: str, new: str) -> None:
    statement = sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new))
    deadline = time.monotonic() + RENAME_WAIT_S
    while True:
        try:
            conn.execute(statement)
            return
        except psycopg.errors.ObjectInUse:
            # A terminated session takes a moment to exit; nothing new can connect meanwhile.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _drop(conn: Conn, name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def recover(admin_url: str, name: str) -> list[str]:
    """Undo what an interrupted restore left: its half-built database, or a swap cut in half."""
    done = []
    with connect(admin_url, autocommit=True) as conn:
        old = preserved_name(name)
        if _exists(conn, old):
            if _exists(conn, name):
                _drop(conn, old)  # the swap finished; only the old copy's drop did not
                done.append(f"dropped {old}, left by a finished restore")
            else:
                _rename(conn, old, name)
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
                done.append(f"an interrupted swap: {old} is {name} again")
        if _exists(conn, staging_name(name)):
            _drop(conn, staging_name(name))
            done.append(f"dropped {staging_name(name)}, left by an interrupted restore")
    return done


def create_staging(admin_url: str, name: str) -> str:
    """An empty database for the restore, owned like the live one."""
    staging = staging_name(name)
    with connect(admin_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,)).fetchone()
        owner = str(row[0]) if row else str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(staging), sql.Identifier(owner)))
        if row:
            _copy_properties(conn, name, staging)
    return staging


def _copy_properties(conn: Conn, source: str, target: str) -> None:
    acl = conn.execute(
        "SELECT a.grantee, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a"
        " WHERE d.datname = %s AND a.grantee <> d.datdba", (source,)).fetchall()
    has_acl = conn.execute("SELECT datacl IS NOT NULL FROM pg_database WHERE datname = %s", (source,)).fetchone()
    if has_acl and has_acl[0]:
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(target)))
    for grantee, privilege in acl:
        who = sql.SQL("PUBLIC") if int(str(grantee)) == 0 else sql.Identifier(
            str(conn.execute("SELECT pg_get_userbyid(%s::oid)", (grantee,)).fetchone()[0]))  # type: ignore[index]
        conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}").format(
            sql.SQL(str(privilege)), sql.Identifier(target), who))
    settings = conn.execute(
        "SELECT coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), ''), unnest(s.setconfig) FROM pg_db_role_setting s"
        " JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s", (source,)).fetchall()
    for role, item in settings:
        key, _, value = str(item).partition("=")
        if role:
            conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET {} = {}").format(
                sql.Identifier(str(role)), sql.Identifier(target), sql.Identifier(key), sql.Literal(value)))
        else:
            conn.execute(sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(target), sql.Identifier(key), sql.Literal(value)))


def swap(admin_url: str, name: str) -> None:
    """Give the restored database the live name; drop the old one."""
    staging, old = staging_name(name), preserved_name(name)
    with connect(admin_url, autocommit=True) as conn:
        if _exists(conn, name):
            # No new sessions, then end the current ones: a rename needs the database to itself.
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            _rename(conn, name, old)
        failpoints.hit("restore.mid_swap")
        _rename(conn, staging, name)
        _drop(conn, old)
