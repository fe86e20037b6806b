"""GDPR erasure of a tenant or of one employee: rows, stored objects and cached keys, with a
report that shows, by looking again afterwards, that nothing is left (or exactly what is, and why)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import zipfile
from typing import Any

from botocore.exceptions import ClientError

from autoenroll import keys
from autoenroll.db import tenant_tx
from autoenroll.resources import Resources
from autoenroll.runs import REPORT_NAMES, report_keys
from autoenroll.uploads import insert_results, temp_prefix
from autoenroll.validation.worker import Checked, Refused, redact_and_check

TENANT_TABLES = ("users", "uploads", "validation_runs", "employee_results", "stripe_events")


async def _object_exists(resources: Resources, key: str) -> bool:
    try:
        await asyncio.to_thread(resources.s3.head_object, Bucket=resources.settings.s3_bucket_uploads, Key=key)
        return True
    except ClientError:
        return False


async def _keys_under(resources: Resources, prefix: str) -> list[str]:
    def listing() -> list[str]:
        pages = resources.s3.get_paginator("list_objects_v2").paginate(
            Bucket=resources.settings.s3_bucket_uploads, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    return await asyncio.to_thread(listing)


async def erase_tenant(resources: Resources, tenant_id: str) -> dict[str, Any]:
    async with tenant_tx(resources, tenant_id) as conn:
        object_keys = [r[0] for r in await (await conn.execute("SELECT object_key FROM uploads")).fetchall()]
        run_ids = [str(r[0]) for r in await (await conn.execute("SELECT id FROM validation_runs")).fetchall()]
        object_keys += [k for run in run_ids for k in report_keys(run)]
        user_ids = [str(r[0]) for r in await (await conn.execute("SELECT id FROM users")).fetchall()]
        counts = {t: int((await (await conn.execute(f"SELECT count(*) FROM {t}")).fetchone())[0])  # type: ignore[index]  # noqa: S608
                  for t in TENANT_TABLES}
    object_keys += await _keys_under(resources, temp_prefix(tenant_id))
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
    remaining_objects += [k for k in await _keys_under(resources, temp_prefix(tenant_id))
                          if k not in remaining_objects]
    remaining_keys = int(await resources.redis.exists(*redis_keys)) if redis_keys else 0
    return {"tenant_id": tenant_id, "deleted": {"rows": counts, "objects": len(object_keys),
                                                "cache_keys": len(redis_keys)},
            "remaining": {"rows": remaining_rows, "objects": remaining_objects, "cache_keys": remaining_keys},
            "erased": not any(remaining_rows.values()) and not remaining_objects and not remaining_keys}


async def _get(resources: Resources, key: str) -> bytes | None:
    try:
        obj = await asyncio.to_thread(resources.s3.get_object, Bucket=resources.settings.s3_bucket_uploads, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return bytes(await asyncio.to_thread(obj["Body"].read))


def _holds(body: bytes, ppsn: str) -> bool:
    """Whether a stored object still spells the PPSN, in any of the encodings a payroll file comes in."""
    if zipfile.is_zipfile(io.BytesIO(body)):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return any(_holds(archive.read(name), ppsn) for name in archive.namelist())
    upper = body.upper()
    return any(ppsn.encode(codec) in upper for codec in ("utf-8", "utf-16-le", "utf-16-be"))


async def erase_employee(resources: Resources, tenant_id: str, ppsn: str) -> dict[str, Any]:
    """Every stored trace of one employee in this tenant: their result rows, and their rows in each
    uploaded file and its reports (rewritten with those rows blanked, and the run's results re-checked
    from the rewritten file). The answer lists what was rewritten and, looking again, what still holds
    the PPSN."""
    target = ppsn.replace(" ", "").strip().upper()
    bucket = resources.settings.s3_bucket_uploads
    async with tenant_tx(resources, tenant_id) as conn:
        runs = await (await conn.execute(
            "SELECT DISTINCT v.id, v.assessment_date, u.id, u.object_key, u.original_filename, u.content_type,"
            " v.summary, v.month"
            " FROM employee_results e JOIN validation_runs v ON v.id = e.run_id JOIN uploads u ON u.id = v.upload_id"
            " WHERE upper(replace(ppsn, ' ', '')) = %s", (target,))).fetchall()
        found = await (await conn.execute(
            "SELECT count(*) FROM employee_results WHERE upper(replace(ppsn, ' ', '')) = %s", (target,))).fetchone()
    rewritten: list[str] = []
    missing: list[str] = []
    refused: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for run_id, assessment_date, upload_id, object_key, filename, content_type, summary, month in runs:
        run_id, upload_id = str(run_id), str(upload_id)
        original = await _get(resources, object_key)
        if original is None:
            missing.append(object_key)
            continue
        kind = "xlsx" if "spreadsheetml" in content_type else "csv"
        result = await resources.checker.call(
            redact_and_check, (original, kind, filename, run_id, assessment_date, resources.checker.limits, target,
                               summary.get("columns", {}), summary.get("column_map")))
        if isinstance(result, Refused):  # a limit stopped the rewrite: the file is left as it is, and said so
            unreadable[object_key] = result.message
            continue
        redacted, _blanked, outcome = result
        if not isinstance(outcome, Checked):
            # Nobody else left in the file (or it can't be re-read): the evidence goes, with its reports.
            refused[object_key] = outcome.message
            for key in (object_key, *report_keys(run_id)):
                await asyncio.to_thread(resources.s3.delete_object, Bucket=bucket, Key=key)
            rewritten += [object_key, *report_keys(run_id)]
            async with tenant_tx(resources, tenant_id) as conn:
                await conn.execute("DELETE FROM uploads WHERE id = %s", (upload_id,))  # cascades to the run
            continue
        await asyncio.to_thread(resources.s3.put_object, Bucket=bucket, Key=object_key, Body=redacted,
                                ContentType=content_type)
        for name in REPORT_NAMES:
            await asyncio.to_thread(resources.s3.put_object, Bucket=bucket, Key=f"reports/{run_id}/{name}",
                                    Body=outcome.reports[name], ContentType=REPORT_NAMES[name])
        rewritten += [object_key, *report_keys(run_id)]
        async with tenant_tx(resources, tenant_id) as conn:
            await conn.execute("DELETE FROM employee_results WHERE run_id = %s", (run_id,))
            await insert_results(conn, tenant_id, run_id, month, outcome.rows_copy)
            await conn.execute(
                "UPDATE validation_runs SET summary = %s, row_count = %s, error_count = %s, report_bytes = %s"
                " WHERE id = %s", (json.dumps(outcome.summary), outcome.summary["rows"], outcome.summary["errors"],
                                  sum(len(b) for b in outcome.reports.values()), run_id))
            await conn.execute("UPDATE uploads SET size_bytes = %s, sha256 = %s WHERE id = %s",
                               (len(redacted), hashlib.sha256(redacted).hexdigest(), upload_id))
    async with tenant_tx(resources, tenant_id) as conn:
        await conn.execute("DELETE FROM employee_results WHERE upper(replace(ppsn, ' ', '')) = %s", (target,))
        row = await (await conn.execute(
            "SELECT count(*) FROM employee_results WHERE upper(replace(ppsn, ' ', '')) = %s", (target,))).fetchone()
    remaining = int(row[0]) if row else 0
    deleted = (int(found[0]) if found else 0) - remaining
    # The proof: read back every object that was rewritten, and look for the PPSN in it.
    still = list(unreadable)
    for key in rewritten:
        body = await _get(resources, key)
        if body is not None and _holds(body, target):
            still.append(key)
    return {"deleted_rows": deleted, "remaining_rows": remaining, "rewritten_objects": rewritten,
            "removed_files": refused, "missing_objects": missing, "remaining_objects": still,
            "not_rewritten": unreadable,
            "erased": remaining == 0 and not still}
