"""`/ready`: the database, Redis and object storage each really checked, with a deadline.

Every check runs concurrently under its own timeout, so a dead dependency makes `/ready`
answer 503 quickly instead of hanging the load balancer's probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from autoenroll.resources import Resources


async def _check(name: str, probe: Callable[[], Awaitable[Any]], timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout)
        ok, error = True, None
    except TimeoutError:
        ok, error = False, f"timed out after {timeout:g}s"
    except Exception as exc:  # report, never raise: /ready must answer
        ok, error = False, exc.__class__.__name__
    result: dict[str, Any] = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    if error:
        result["error"] = error
    return {name: result}


async def readiness(resources: Resources, timeout: float) -> tuple[bool, dict[str, Any]]:
    async def database() -> None:
        async with resources.db_pool.connection(timeout=timeout) as conn:
            await conn.execute("SELECT 1")

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
    return all(c["ok"] for c in checks.values()), checks
