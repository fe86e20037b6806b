"""PostgreSQL helpers shared by use-cases: libpq environment from a URL, row counts, scratch databases.
The one home of ops's PostgreSQL code: this package; which binaries (pg_dump, psql, the server) is
ops.pg.tools.

Connection secrets go to child processes through the libpq environment (PGPASSWORD, ...),
never on argv, where `ps` would show them.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import sql

from ops.errors import ExternalError, RefusedError, map_exceptions
from ops.pg import tools as pgtools


def libpq_env(url: str, *, database: str | None = None) -> dict[str, str]:
    """The environment for pg_dump/pg_restore/psql that points at `url` (optionally another database)."""
    parts = urlsplit(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({
        "PGHOST": parts.hostname or "localhost",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": database or parts.path.lstrip("/"),
        "PGCONNECT_TIMEOUT": "10",
    })
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    for key, variable in LIBPQ_TLS_PARAMETERS.items():
        if key in query:
            env[variable] = query[key]
    mode = tls_mode(env["PGHOST"], env.get("PGSSLMODE"))
    if mode:
        env["PGSSLMODE"] = mode
        pgtools.require_tls_tools(env["PGHOST"])
    return env


# The URL query parameters libpq reads for TLS, and the variables the tools take them from.
LIBPQ_TLS_PARAMETERS = {"sslmode": "PGSSLMODE", "channel_binding": "PGCHANNELBINDING",
                        "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY"}


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(url)
    return parts._replace(path=f"/{database}").geturl()


def tls_mode(host: str, asked: str | None) -> str | None:
    """The sslmode to use for `host`: off this machine at least `require` (Neon refuses anything else, and
    psycopg's and libpq's default `prefer` would talk in clear to a server without TLS); `disable` there is
    refused rather than obeyed. None: a local database, left as the URL says."""
    if pgtools.is_local_host(host):
        return None
    if asked == "disable":
        raise RefusedError(f"the database URL for {host} asks sslmode=disable; a database off this machine "
                           "is reached only over TLS", hint="remove sslmode=disable from the URL")
    return "require" if asked in (None, "allow", "prefer") else asked


def tls_off_this_machine(url: str) -> str:
    """`url` with the sslmode `tls_mode` asks for."""
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    mode = tls_mode(parts.hostname or "", query.get("sslmode"))
    if mode is None or mode == query.get("sslmode"):
        return url
    return parts._replace(query=urlencode({**query, "sslmode": mode})).geturl()


def connect(url: str, *, connect_timeout: int = 10, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
    url = tls_off_this_machine(url)
    try:
        return psycopg.connect(url, connect_timeout=connect_timeout, **kwargs)  # type: ignore[arg-type]
    except psycopg.OperationalError as exc:
        from ops.secrets import scrub_text

        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise ExternalError(f"database unreachable: {scrub_text(first)}",
                            hint="is the database up? (sandbox: ops sandbox status)") from None


def pg_errors(what: str) -> AbstractContextManager[None]:
    """The boundary for queries: a psycopg error (a lost connection, a failed statement) is exit 7, not a bug."""
    return map_exceptions({psycopg.Error: ExternalError}, what,
                          hint="is the database up? (sandbox: ops sandbox status)")


def user_tables(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    rows = conn.execute(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) FROM pg_stat_user_tables ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def row_counts(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int]:
    """Exact row counts of every user table (in the connection's current snapshot)."""
    counts = {}
    for table in user_tables(conn):
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.SQL(table))).fetchone()
        counts[table] = int(row[0]) if row else 0  # type: ignore[call-overload]
    return counts


def create_database(admin_url: str, name: str) -> None:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
