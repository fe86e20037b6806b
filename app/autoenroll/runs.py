"""Validation runs: a run's summary and its row errors a page at a time, and its stored reports."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg import AsyncConnection

from autoenroll.db import lag_tolerant_read, tenant_tx
from autoenroll.errors import NotFound
from autoenroll.resources import Resources

PAGE_MAX = 50
REPORT_NAMES = {"summary.json": "application/json", "errors.csv": "text/csv", "summary.pdf": "application/pdf"}
REPORT_TYPES = {"json": ("summary.json", "application/json"), "csv": ("errors.csv", "text/csv; charset=utf-8"),
                "pdf": ("summary.pdf", "application/pdf")}


def report_keys(run_id: str) -> list[str]:
    return [f"reports/{run_id}/{name}" for name in REPORT_NAMES]


async def run_errors(conn: AsyncConnection[Any], run_id: str, offset: int = 0) -> list[dict[str, Any]]:
    """A page (at most PAGE_MAX rows) of a run's row errors, in file order."""
    rows = await (await conn.execute(
        "SELECT row_number, errors FROM employee_results WHERE run_id = %s AND errors <> '[]'::jsonb"
        " ORDER BY row_number LIMIT %s OFFSET %s", (run_id, PAGE_MAX, offset))).fetchall()
    return [{"row": r[0], **e} for r in rows for e in r[1]]


async def get_run(resources: Resources, tenant_id: str, run_id: str, offset: int = 0) -> dict[str, Any]:
    """The run's status, summary and a page of its row errors; NotFound unless it is this tenant's."""
    async with tenant_tx(resources, tenant_id) as conn:
        row = await (await conn.execute("SELECT summary, status FROM validation_runs WHERE id = %s",
                                        (run_id,))).fetchone()
        if row is None:
            raise NotFound("no such run", field="run_id")
        errors = await run_errors(conn, run_id, offset)
    return {"status": row[1], "summary": row[0], "errors": errors}


async def recent_runs(resources: Resources, tenant_id: str, limit: int = 20) -> list[tuple[Any, ...]]:
    """The dashboard's history of checks, newest first: from the read replica when there is one (a check
    finished a moment ago may appear a moment later; its own page, right after the upload, is the primary's)."""
    async def read(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
        return list(await (await conn.execute(
            "SELECT v.id, u.original_filename, v.row_count, v.error_count, v.finished_at FROM validation_runs v"
            " JOIN uploads u ON u.id = v.upload_id ORDER BY v.started_at DESC LIMIT %s", (limit,))).fetchall())

    return await lag_tolerant_read(resources, tenant_id, read)


async def report(resources: Resources, tenant_id: str, run_id: str, kind: str) -> tuple[bytes, str, str]:
    """(body, file name, content type) of a run's report (json, csv or pdf), if the run is this tenant's."""
    if kind not in REPORT_TYPES:
        raise NotFound("reports are json, csv or pdf", field="kind")
    async with tenant_tx(resources, tenant_id) as conn:  # RLS: only this tenant's runs exist
        row = await (await conn.execute("SELECT 1 FROM validation_runs WHERE id = %s", (run_id,))).fetchone()
    if row is None:
        raise NotFound("no such run", field="run_id")
    name, content_type = REPORT_TYPES[kind]
    obj = await asyncio.to_thread(resources.s3.get_object, Bucket=resources.settings.s3_bucket_uploads,
                                  Key=f"reports/{run_id}/{name}")
    body = await asyncio.to_thread(obj["Body"].read)
    return bytes(body), name, content_type
