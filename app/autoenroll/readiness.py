"""`/ready`: the database, Redis and object storage each really checked, with a deadline, and the
database's schema at this release's head revision.

Every check runs concurrently under its own timeout, so a dead dependency makes `/ready`
answer 503 quickly instead of hanging the load balancer's probe. `ops deploy` switches a host's
traffic only once `/ready` answers 200, so a release never goes live over a database that
`ops db migrate` has not brought to its schema (an empty one, or one a release behind).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from psycopg import AsyncConnection

from autoenroll.migrate import head_revision, known_revisions
from autoenroll.resources import Resources


def _last_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else "no message")[:300]


async def _check(name: str, probe: Callable[[], Awaitable[Any]], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout)
        ok, error = True, None
    except TimeoutError:
        ok, error = False, f"timed out after {timeout:g}s"
    except psycopg.OperationalError as exc:
        # The server's own words ('database "x" does not exist', 'password authentication failed
        # for user "y"', 'SSL is required'): the on-call engineer's next step depends on which.
        # libpq's messages name hosts, users and databases, never passwords.
        ok, error = False, f"{exc.__class__.__name__}: {_last_line(exc)}"
    except Exception as exc:  # report, never raise: /ready must answer
        ok, error = False, exc.__class__.__name__
    result: dict[str, Any] = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if error:
        result["error"] = error
    return {name: result}


async def database_revision(conn: AsyncConnection[Any]) -> tuple[str | None, str | None]:
    """(revision, why there is none): the one row Alembic keeps, read as the app role.

    The same round trip the connection check needs anyway, so no cache is wanted for it; only
    the head (fixed in the image) is read once per process."""
    try:
        row = await (await conn.execute("SELECT version_num FROM alembic_version")).fetchone()
    except psycopg.errors.UndefinedTable:
        await conn.rollback()  # the pool must get the connection back out of the failed transaction
        return None, "the database has no alembic_version table: it was never migrated"
    except psycopg.errors.InsufficientPrivilege:
        await conn.rollback()
        return None, ("the app's role cannot read alembic_version: the migrations that grant it "
                      "access have not run for this role")
    return (str(row[0]), None) if row else (None, "alembic_version is empty: the database was never migrated")


def schema_check(revision: str | None, why: str | None, app_env: str) -> dict[str, Any]:
    """Ready when the database is at this release's head, or at a revision this release does not
    know (a later release's, migrated before its deploy: a rollback must still become ready)."""
    head = head_revision()
    result: dict[str, Any] = {"ok": False, "revision": revision, "head": head}
    migrate = f"run `ops db migrate --env {app_env}` before deploying"
    if revision is None:
        result["error"] = f"{why}; this release needs revision {head}: {migrate}"
    elif revision != head and revision in known_revisions():
        result["error"] = (f"the database is at revision {revision}, this release needs {head} "
                           f"(its head): {migrate}")
    else:
        result["ok"] = True
    return result


async def readiness(resources: Resources, timeout: float) -> tuple[bool, dict[str, Any]]:
    found: list[tuple[str | None, str | None]] = []

    async def database() -> None:
        stats = resources.db_pool.get_stats()
        if not stats.get("pool_available") and stats.get("connections_errors"):
            # No idle connection, and the pool has failed to make one (no such database, a wrong
            # password, TLS refused): it retries that in the background, silently, so waiting on it
            # would report only "timed out". One direct attempt reports the server's reason.
            direct = await AsyncConnection.connect(resources.settings.database_url,
                                                   connect_timeout=max(1, int(timeout)))
            async with direct as conn:
                found.append(await database_revision(conn))
            return
        async with resources.db_pool.connection(timeout=timeout) as conn:
            found.append(await database_revision(conn))

    async def redis() -> None:
        await resources.redis.ping()

    async def storage() -> None:
        await asyncio.to_thread(resources.s3.head_bucket, Bucket=resources.settings.s3_bucket_uploads)

    results = await asyncio.gather(
        _check("database", database, timeout),
        _check("redis", redis, timeout),
        _check("storage", storage, timeout),
    )
    checks: dict[str, Any] = {}
    for item in results:
        checks.update(item)
    if found:  # the database answered: its schema is the app's
        checks["schema"] = schema_check(*found[0], resources.settings.app_env)
    else:
        checks["schema"] = {"ok": False, "skipped": "the database did not answer"}  # its own error says why
    return all(c["ok"] for c in checks.values()), checks


def reason(checks: dict[str, Any]) -> str:
    """One line naming every failing check, for whoever reads a 503 (`ops deploy`'s message)."""
    return "; ".join(f"{name}: {check['error']}" for name, check in checks.items()
                     if not check["ok"] and "error" in check)
