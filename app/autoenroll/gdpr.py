"""GDPR erasure of a tenant or of one employee: rows, stored objects and cached keys, with a
report that shows, by looking again afterwards, that nothing is left."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import ClientError

from autoenroll import keys
from autoenroll.resources import Resources

TENANT_TABLES = ("users", "uploads", "validation_runs", "employee_results", "stripe_events")


async def _object_exists(resources: Resources, key: str) -> bool:
    try:
        await asyncio.to_thread(resources.s3.head_object, Bucket=resources.settings.s3_bucket_uploads, Key=key)
        return True
    except ClientError:
        return False


async def erase_tenant(resources: Resources, tenant_id: str) -> dict[str, Any]:
    from autoenroll.api import tenant_tx

    async with tenant_tx(resources, tenant_id) as conn:
        object_keys = [r[0] for r in await (await conn.execute("SELECT object_key FROM uploads")).fetchall()]
        run_ids = [str(r[0]) for r in await (await conn.execute("SELECT id FROM validation_runs")).fetchall()]
        object_keys += [f"reports/{run}/{name}" for run in run_ids
                        for name in ("summary.json", "errors.csv", "summary.pdf")]
        user_ids = [str(r[0]) for r in await (await conn.execute("SELECT id FROM users")).fetchall()]
        counts = {t: int((await (await conn.execute(f"SELECT count(*) FROM {t}")).fetchone())[0])  # type: ignore[index]  # noqa: S608
                  for t in TENANT_TABLES}
    # Objects first: if this crashes, the rows still list them and erasure can run again.
    for key in object_keys:
        await asyncio.to_thread(resources.s3.delete_object, Bucket=resources.settings.s3_bucket_uploads, Key=key)
    redis_keys = [keys.cache("tenant", tenant_id), *(keys.session(u) for u in user_ids)]
    if redis_keys:
        await resources.redis.delete(*redis_keys)
    async with tenant_tx(resources, tenant_id) as conn:
        await conn.execute("DELETE FROM tenants WHERE id = %s", (tenant_id,))  # cascades to every tenant table
    # The proof: look again, with a fresh transaction, in every place the data could be.
    async with resources.db_pool.connection() as conn:
        remaining_rows = {t: int((await (await conn.execute(
            f"SELECT count(*) FROM {t} WHERE tenant_id = %s", (tenant_id,))).fetchone())[0])  # type: ignore[index]  # noqa: S608
            for t in TENANT_TABLES}
    remaining_objects = [k for k in object_keys if await _object_exists(resources, k)]
    remaining_keys = int(await resources.redis.exists(*redis_keys)) if redis_keys else 0
    return {"tenant_id": tenant_id, "deleted": {"rows": counts, "objects": len(object_keys),
                                                "cache_keys": len(redis_keys)},
            "remaining": {"rows": remaining_rows, "objects": remaining_objects, "cache_keys": remaining_keys},
            "erased": not any(remaining_rows.values()) and not remaining_objects and not remaining_keys}


async def erase_employee(resources: Resources, tenant_id: str, ppsn: str) -> dict[str, Any]:
    from autoenroll.api import tenant_tx

    async with tenant_tx(resources, tenant_id) as conn:
        cursor = await conn.execute("DELETE FROM employee_results WHERE upper(ppsn) = upper(%s)", (ppsn,))
        deleted = cursor.rowcount
        row = await (await conn.execute("SELECT count(*) FROM employee_results WHERE upper(ppsn) = upper(%s)",
                                        (ppsn,))).fetchone()
    remaining = int(row[0]) if row else 0
    return {"deleted_rows": deleted, "remaining_rows": remaining, "erased": remaining == 0}
