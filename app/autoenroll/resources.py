"""Long-lived clients (database pool, Redis, S3) and the upload checker's workers, opened at start-up
and closed on shutdown."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import redis.asyncio as aioredis
from botocore.config import Config
from psycopg_pool import AsyncConnectionPool

from autoenroll.config import Settings
from autoenroll.validation.worker import Checker

log = logging.getLogger("autoenroll.replica")

# After the replica fails, reads skip it for this long instead of each waiting on a dead server.
REPLICA_RETRY_S = 30.0
# How long a read waits for a replica connection before taking the primary's.
REPLICA_WAIT_S = 1.0


@dataclass
class Replica:
    """The replica's pool and whether it is worth trying now. One warning when it fails (naming only
    its host and the kind of failure, never the URL: it holds the password), one line when it is back.

    A failure closes the pool and the next try opens a fresh one: a pool that failed to connect backs off
    its reconnect attempts on its own schedule, so it would keep refusing reads for a while after the
    replica is back (and redial it in the background, in vain, while it is down)."""

    open_pool: Callable[[], AsyncConnectionPool]
    where: str  # host:port, for the log
    pool: AsyncConnectionPool | None = None
    retry_at: float = 0.0
    down: bool = False

    async def current_pool(self) -> AsyncConnectionPool | None:
        """The pool to read from now, or None while a failed replica waits out REPLICA_RETRY_S."""
        if self.down and time.monotonic() < self.retry_at:
            return None
        if self.pool is None:
            self.pool = self.open_pool()
            await self.pool.open(wait=False)
        return self.pool

    async def failed(self, exc: BaseException) -> None:
        self.retry_at = time.monotonic() + REPLICA_RETRY_S
        if not self.down:
            self.down = True
            sqlstate = getattr(exc, "sqlstate", None)
            log.warning("database replica at %s unavailable (%s%s): lag-tolerant reads go to the primary, "
                        "the replica is tried again after %d s", self.where, type(exc).__name__,
                        f", SQLSTATE {sqlstate}" if sqlstate else "", int(REPLICA_RETRY_S))
        await self.close()

    def served(self) -> None:
        if self.down:
            self.down = False
            log.info("database replica at %s is back: lag-tolerant reads go to it again", self.where)

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await pool.close(timeout=1.0)


def replica_where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


@dataclass
class Resources:
    settings: Settings
    db_pool: AsyncConnectionPool
    redis: aioredis.Redis
    s3: Any
    checker: Checker
    replica: Replica | None = None  # DATABASE_REPLICA_URL's pool, for autoenroll.db.lag_tolerant_read


def make_s3_client(settings: Settings) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.s3_access_key_id,
        aws_secret_access_key=settings.s3_secret_access_key,
        # SigV4 always: R2 requires it, and SigV2 presigned URLs with response overrides fail on S3 servers.
        config=Config(signature_version="s3v4", connect_timeout=2, read_timeout=10,
                      retries={"max_attempts": 2, "mode": "standard"},
                      s3={"addressing_style": "path"}),
    )


REPLICA_POOL = "replica"


class _QuietReplicaPool(logging.Filter):
    """Drop psycopg_pool's own warnings about the replica pool (one per reconnect attempt while it is
    down): Replica says it once, and the reads go on at the primary."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.WARNING and isinstance(record.args, tuple)
                    and REPLICA_POOL in record.args)


def _pool(url: str, settings: Settings, name: str | None, min_size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(
        url,
        name=name,
        min_size=min_size,
        max_size=settings.db_pool_max,
        max_idle=settings.db_pool_max_idle_s,
        timeout=settings.db_connect_timeout_s,
        kwargs={"connect_timeout": int(settings.db_connect_timeout_s)},
        # A connection the server ended (a restore's swap, a failover, a Neon restart) is replaced
        # before a request gets it, instead of failing that request.
        check=AsyncConnectionPool.check_connection,
        open=False,
    )


async def open_database(settings: Settings) -> tuple[AsyncConnectionPool, Replica | None]:
    """The primary's pool, and the replica's (DATABASE_REPLICA_URL) when there is one."""
    # The seed's pool: at most 20 connections, idle ones closed after 30 s, 2 s to connect.
    pool = _pool(settings.database_url, settings, None, min_size=1)
    await pool.open(wait=False)
    if not settings.database_replica_url:
        return pool, None
    # No connection kept open while idle (min_size 0): a read opens one when it needs it.
    replica_url = settings.database_replica_url
    pool_log = logging.getLogger("psycopg.pool")
    if not any(isinstance(f, _QuietReplicaPool) for f in pool_log.filters):
        pool_log.addFilter(_QuietReplicaPool())
    return pool, Replica(lambda: _pool(replica_url, settings, REPLICA_POOL, min_size=0), replica_where(replica_url))


async def open_resources(settings: Settings) -> Resources:
    pool, replica = await open_database(settings)
    # rediss:// only: Redis Cloud signs its servers' certificates with its own CA (its console's
    # "Download CA certificates"), not one in the image's trust store.
    tls: dict[str, Any] = ({"ssl_ca_data": settings.redis_ca_pem}
                           if settings.redis_ca_pem and settings.redis_url.startswith("rediss://") else {})
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=1, health_check_interval=10, **tls
    )
    checker = Checker(settings.limits)
    await asyncio.to_thread(checker.start)
    return Resources(settings=settings, db_pool=pool, redis=client, s3=make_s3_client(settings), checker=checker,
                     replica=replica)


async def close_resources(resources: Resources) -> None:
    await resources.db_pool.close()
    if resources.replica is not None:
        await resources.replica.close()
    await resources.redis.aclose()
