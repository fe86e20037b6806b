"""The tenant's transaction: every tenant query runs inside one, with `app.tenant_id` set, so
PostgreSQL's row-level security confines it even if a WHERE clause is forgotten.

Reads that may lag go to the read replica (DATABASE_REPLICA_URL) through `lag_tolerant_read`. Which ones,
and why those: the dashboard's history of checks (runs.recent_runs) and the upload listing
(GET /api/uploads, uploads.list_uploads). Both are lists a user browses, where a check finished a moment
ago showing up a second later is harmless; they are also the reads that grow with a tenant's months of
history. Everything else stays on the primary because it must see what the user just wrote, or writes:
a run's result page (the redirect right after an upload), its reports and downloads (linked from that
page), the tenant's record (re-read right after a rename), sign-in and sessions, billing and erasure.

A physical replica has the primary's roles and policies, so the same role and the same per-transaction
`app.tenant_id` confine a replica read exactly as they do a primary one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from autoenroll.resources import REPLICA_WAIT_S, Resources

T = TypeVar("T")


@asynccontextmanager
async def tenant_tx(resources: Resources, tenant_id: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A transaction in which row-level security sees only `tenant_id`'s rows."""
    async with _tenant_tx(resources.db_pool, tenant_id) as conn:
        yield conn


@asynccontextmanager
async def _tenant_tx(pool: AsyncConnectionPool, tenant_id: str, *, read_only: bool = False,
                     timeout: float | None = None) -> AsyncIterator[AsyncConnection[Any]]:
    async with pool.connection(timeout=timeout) as conn, conn.transaction():
        if read_only:  # first: it must precede any query; a lag-tolerant read never writes, on either server
            await conn.execute("SET TRANSACTION READ ONLY")
        await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        yield conn


async def lag_tolerant_read(resources: Resources, tenant_id: str,
                            read: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
    """Run `read` in a read-only tenant transaction on the replica when one is configured and up, else on
    the primary. A replica that cannot be reached, refuses the connection, or ends the query (a recovery
    conflict, a restart) costs the read nothing: it runs again on the primary, so `read` must only read.
    Only for reads that may lag behind the user's own writes (see the module's docstring)."""
    replica = resources.replica
    pool = await replica.current_pool() if replica is not None else None
    if replica is not None and pool is not None:
        try:
            async with _tenant_tx(pool, tenant_id, read_only=True, timeout=REPLICA_WAIT_S) as conn:
                result = await read(conn)
        except (psycopg.OperationalError, PoolTimeout) as exc:
            await replica.failed(exc)
        else:
            replica.served()
            return result
    async with _tenant_tx(resources.db_pool, tenant_id, read_only=True) as conn:
        return await read(conn)
