"""The tenant's transaction: every tenant query runs inside one, with `app.tenant_id` set, so
PostgreSQL's row-level security confines it even if a WHERE clause is forgotten."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection

from autoenroll.resources import Resources


@asynccontextmanager
async def tenant_tx(resources: Resources, tenant_id: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A transaction in which row-level security sees only `tenant_id`'s rows."""
    async with resources.db_pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        yield conn
