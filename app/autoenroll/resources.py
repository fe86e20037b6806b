"""Long-lived clients (database pool, Redis, S3) and the upload checker's workers, opened at start-up
and closed on shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import boto3
import redis.asyncio as aioredis
from botocore.config import Config
from psycopg_pool import AsyncConnectionPool

from autoenroll.config import Settings
from autoenroll.validation.worker import Checker


@dataclass
class Resources:
    settings: Settings
    db_pool: AsyncConnectionPool
    redis: aioredis.Redis
    s3: Any
    checker: Checker


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


async def open_resources(settings: Settings) -> Resources:
    # The seed's pool: at most 20 connections, idle ones closed after 30 s, 2 s to connect.
    pool = AsyncConnectionPool(
        settings.database_url,
        min_size=1,
        max_size=settings.db_pool_max,
        max_idle=settings.db_pool_max_idle_s,
        timeout=settings.db_connect_timeout_s,
        kwargs={"connect_timeout": int(settings.db_connect_timeout_s)},
        # A connection the server ended (a restore's swap, a failover, a Neon restart) is replaced
        # before a request gets it, instead of failing that request.
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    await pool.open(wait=False)
    # rediss:// only: Redis Cloud signs its servers' certificates with its own CA (its console's
    # "Download CA certificates"), not one in the image's trust store.
    tls: dict[str, Any] = ({"ssl_ca_data": settings.redis_ca_pem}
                           if settings.redis_ca_pem and settings.redis_url.startswith("rediss://") else {})
    client = aioredis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=1, socket_timeout=1, health_check_interval=10, **tls
    )
    checker = Checker(settings.limits)
    await asyncio.to_thread(checker.start)
    return Resources(settings=settings, db_pool=pool, redis=client, s3=make_s3_client(settings), checker=checker)


async def close_resources(resources: Resources) -> None:
    await resources.db_pool.close()
    await resources.redis.aclose()
