"""Uploads: check a payroll file and store it with its reports, all or nothing; list a tenant's
uploads; short-lived URLs to download one or to upload straight into object storage."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import AsyncConnection

from autoenroll import partitions
from autoenroll.db import lag_tolerant_read, tenant_tx
from autoenroll.errors import NotFound, NotReady, TooLarge, Unreadable, UnsupportedFile
from autoenroll.files import KINDS, MAX_UPLOAD_BYTES, NotAPayrollFile, RejectedFile, detect
from autoenroll.resources import Resources
from autoenroll.runs import PAGE_MAX, REPORT_NAMES
from autoenroll.security import Claims
from autoenroll.validation.worker import RESULT_COLUMNS, Checked, Refused

PRESIGN_SECONDS = 300
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
_M_MMAP_THRESHOLD = -3
LARGE_BUFFER = 1024 * 1024


def return_large_buffers_to_the_system() -> None:
    """Once, at start: every buffer of 1 MB or more (an upload, its reports, the rows sent to the
    database) gets its own mapping, unmapped when freed. glibc otherwise raises this threshold after
    the first big free, and later big buffers land in the heap, where they stay after a big upload."""
    _LIBC.mallopt(_M_MMAP_THRESHOLD, LARGE_BUFFER)


def server_timing(cpu_seconds: float, peak_rss_kb: int = 0) -> dict[str, str]:
    """The worker's CPU time and peak memory for the file, for clients, tests and benchmarks to see."""
    return {"Server-Timing": f"parse-cpu;dur={cpu_seconds * 1000:.1f}, parse-rss;desc=\"{peak_rss_kb} kB\""}


def temp_prefix(tenant_id: str) -> str:
    """Where the tenant's direct (pre-signed) uploads land before they are checked."""
    return f"temp/{tenant_id}/"


def too_large() -> TooLarge:
    return TooLarge(f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB", field="file")


def content_disposition(filename: str) -> str:
    """`attachment` with the name twice (RFC 6266): ASCII with no quote for old clients, UTF-8 for the rest."""
    fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@dataclass(frozen=True)
class Stored:
    upload_id: str
    run_id: str
    kind: str
    size_bytes: int
    summary: dict[str, Any]
    cpu_seconds: float
    peak_rss_kb: int

    def body(self) -> dict[str, Any]:
        return {"id": self.upload_id, "run_id": self.run_id, "kind": self.kind, "size_bytes": self.size_bytes,
                "summary": self.summary}


async def _used_and_quota(conn: AsyncConnection[Any], upload_id: str) -> tuple[int, int]:
    """Bytes stored by the tenant's other uploads and their reports, and the quota."""
    # FOR UPDATE: two uploads of one tenant at once must not both fit into the same free space.
    row = await (await conn.execute(
        "SELECT (SELECT coalesce(sum(size_bytes), 0) FROM uploads WHERE id <> %s)"
        " + (SELECT coalesce(sum(report_bytes), 0) FROM validation_runs WHERE upload_id <> %s), storage_quota_bytes"
        " FROM tenants FOR UPDATE", (upload_id, upload_id))).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def check_and_store(resources: Resources, claims: Claims, data: bytes, filename: str,
                          raw_column_map: str | None = None,
                          gone: Callable[[], Awaitable[bool]] | None = None) -> Stored:
    """Upload -> validate -> report, all or nothing: a file that can't be read is refused before
    anything is stored, and if the database write fails the stored objects are removed again.
    `raw_column_map` is the employer's JSON {field: header in the file} (validation/columns.py);
    `gone()` says whether the client hung up (then the worker is stopped)."""
    if not data:
        raise UnsupportedFile("the file is empty", field="file")
    if len(data) > MAX_UPLOAD_BYTES:
        raise too_large()
    try:
        kind = detect(data)
    except NotAPayrollFile as exc:
        raise UnsupportedFile(str(exc), field="file") from None
    except RejectedFile as exc:
        raise Unreadable(str(exc), field="file") from None
    try:
        return await _check_and_store(resources, claims, data, filename, kind, raw_column_map, gone)
    finally:
        # The reports and rows of a big file were tens of MB in this process: give them back to the system.
        gc.collect()
        await asyncio.to_thread(_LIBC.malloc_trim, 0)


async def _check_and_store(resources: Resources, claims: Claims, data: bytes, filename: str, kind: str,
                           raw_column_map: str | None, gone: Callable[[], Awaitable[bool]] | None) -> Stored:
    """One transaction around the whole check: the rows go into the database chunk by chunk while the worker
    is still checking the rest (so the two overlap), and a refused or failed check rolls every row back."""
    upload_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    # The worker slot first: an upload waiting for a worker must not hold one of the pool's connections.
    async with resources.checker.slot(), tenant_tx(resources, claims.tenant_id) as conn:
        await conn.execute(
            "INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type, size_bytes,"
            " sha256, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'processing')",
            (upload_id, claims.tenant_id, claims.user_id, f"compliance-evidence/{upload_id}", filename, KINDS[kind],
             len(data), hashlib.sha256(data).hexdigest()))
        # The run's month (the database's default: its UTC month now) is the partition its rows go to.
        month = (await (await conn.execute(
            "INSERT INTO validation_runs (id, tenant_id, upload_id, status) VALUES (%s, %s, %s, 'processing')"
            " RETURNING month", (run_id, claims.tenant_id, upload_id))).fetchone())[0]  # type: ignore[index]
        results = ResultsWriter(conn, claims.tenant_id, run_id, month)
        await results.start()
        outcome = await resources.checker.run(data, kind, filename, run_id, date.today(), raw_column_map, gone,
                                              results.write, slot_held=True)
        if isinstance(outcome, Refused):
            # the detail of unrecognised columns is what the page needs to offer a column map
            raise Unreadable(outcome.message, field="file", extra={**outcome.detail, "limits": outcome.limits},
                             headers=server_timing(outcome.cpu_seconds))
        for chunk in outcome.rows_copy:  # none when streamed; kept for a worker that hands them back at the end
            await results.write(chunk)
        await results.finish()
        await _store(resources, conn, data, filename, kind, upload_id, run_id, outcome)
    return Stored(upload_id, run_id, kind, len(data), outcome.summary, outcome.cpu_seconds, outcome.peak_rss_kb)


async def _store(resources: Resources, conn: AsyncConnection[Any], data: bytes, filename: str, kind: str,
                 upload_id: str, run_id: str, outcome: Checked) -> None:
    bucket = resources.settings.s3_bucket_uploads
    objects = {f"compliance-evidence/{upload_id}": (data, KINDS[kind]),
               **{f"reports/{run_id}/{name}": (outcome.reports[name], REPORT_NAMES[name]) for name in REPORT_NAMES}}
    report_bytes = sum(len(b) for b in outcome.reports.values())
    used, quota = await _used_and_quota(conn, upload_id)
    if used + len(data) + report_bytes > quota:
        raise TooLarge(f"your storage quota is full ({used} of {quota} bytes used; this file and its reports "
                       f"need {len(data) + report_bytes})", field="file")
    # The four objects go up at once, while the run is finished in the database. On any failure every put is
    # first let finish (a thread can't be stopped, and a put landing after the delete would be an orphan), and
    # so is the database write (the transaction is rolled back after it), then all four keys are deleted.
    metadata = {"original-filename": filename.encode("ascii", "replace").decode()}
    puts = [asyncio.ensure_future(asyncio.to_thread(resources.s3.put_object, Bucket=bucket, Key=key, Body=body,
                                                    ContentType=content_type, Metadata=metadata))
            for key, (body, content_type) in objects.items()]
    try:
        done = await asyncio.gather(*puts, _finish_run(conn, upload_id, run_id, outcome, report_bytes),
                                    return_exceptions=True)
        failure = next((d for d in done if isinstance(d, BaseException)), None)
        if failure is not None:
            raise failure
    except BaseException:
        await asyncio.shield(_remove(resources, bucket, list(objects), puts))
        raise


async def _remove(resources: Resources, bucket: str, keys: list[str], puts: Sequence[asyncio.Future[Any]]) -> None:
    await asyncio.wait(puts)
    for key in keys:  # deleting a key never written is a no-op
        await asyncio.to_thread(resources.s3.delete_object, Bucket=bucket, Key=key)


# COPY FROM is refused on a table under row-level security, so each chunk is copied into a temporary table
# (the fastest way in) and moved from there by one INSERT ... SELECT, which the tenant policy still checks.
_INCOMING = ("CREATE TEMP TABLE incoming_results (row_number integer, employee_id text, ppsn text, first_name text,"
             " last_name text, date_of_birth date, email text, gross_pay numeric, pay_frequency text, eligibility text,"
             " employee_contribution numeric, employer_contribution numeric, state_contribution numeric,"
             " errors jsonb) ON COMMIT DROP")
_COLUMNS = ", ".join(RESULT_COLUMNS)


class ResultsWriter:
    """A run's employee_results, written chunk by chunk (COPY text, worker.ResultRows) in the caller's transaction,
    into the partition of the run's `month` (validation_runs.month: the composite key checks they agree)."""

    def __init__(self, conn: AsyncConnection[Any], tenant_id: str, run_id: str, month: date) -> None:
        self.conn, self.tenant_id, self.run_id, self.month = conn, tenant_id, run_id, month

    async def start(self) -> None:
        await self.conn.execute(_INCOMING)

    async def write(self, chunk: bytes) -> None:
        async with self.conn.cursor().copy(f"COPY incoming_results ({_COLUMNS}) FROM STDIN") as copy:
            await copy.write(chunk)
        try:
            await self.conn.execute(f"INSERT INTO employee_results (tenant_id, run_id, month, {_COLUMNS})"  # noqa: S608
                                    f" SELECT %s, %s, %s, {_COLUMNS} FROM incoming_results",
                                    (self.tenant_id, self.run_id, self.month))
        except psycopg.errors.CheckViolation as exc:
            if not partitions.is_missing_partition(exc.diag.message_primary):
                raise
            # An operator's problem, not the user's file: nothing of the upload is kept (the caller's
            # transaction rolls back), and the message says which month and what makes it. The month is the
            # one written (every row of the statement has it): PostgreSQL leaves the failing row out of its
            # DETAIL on a table under row-level security, so the error itself can't be asked.
            raise NotReady(f"results for {self.month:%Y-%m} can't be stored yet: the database has no partition of"
                           f" {partitions.PARENT} for that month (operators: ops db partitions --ensure);"
                           " nothing of this upload was kept, try again later", field="file") from None
        await self.conn.execute("TRUNCATE incoming_results")

    async def finish(self) -> None:
        await self.conn.execute("DROP TABLE incoming_results")  # a second run in the same transaction makes its own


async def insert_results(conn: AsyncConnection[Any], tenant_id: str, run_id: str, month: date,
                         chunks: Iterable[bytes]) -> None:
    """Store a run's employee_results, given as COPY text (worker.ResultRows), inside the caller's transaction."""
    writer = ResultsWriter(conn, tenant_id, run_id, month)
    await writer.start()
    for chunk in chunks:
        await writer.write(chunk)
    await writer.finish()


async def _finish_run(conn: AsyncConnection[Any], upload_id: str, run_id: str, outcome: Checked,
                      report_bytes: int) -> None:
    summary = outcome.summary
    await conn.execute("UPDATE uploads SET status = 'validated' WHERE id = %s", (upload_id,))
    await conn.execute(
        "UPDATE validation_runs SET status = 'completed', assessment_date = %s, row_count = %s, error_count = %s,"
        " summary = %s, report_bytes = %s, finished_at = now() WHERE id = %s",
        (summary["assessment_date"], summary["rows"], summary["errors"], json.dumps(summary), report_bytes, run_id))


async def list_uploads(resources: Resources, tenant_id: str, limit: int, offset: int) -> dict[str, Any]:
    """A page of the tenant's uploads, newest first: from the read replica when there is one (the upload's
    own answer already names it, so a listing a moment behind loses the client nothing)."""
    limit = min(PAGE_MAX, limit)

    async def read(conn: AsyncConnection[Any]) -> list[tuple[Any, ...]]:
        return list(await (await conn.execute(
            "SELECT id, original_filename, content_type, size_bytes, status, created_at FROM uploads"
            " ORDER BY created_at DESC LIMIT %s OFFSET %s", (limit + 1, offset))).fetchall())

    rows = await lag_tolerant_read(resources, tenant_id, read)
    items = [{"id": str(r[0]), "filename": r[1], "content_type": r[2], "size_bytes": r[3], "status": r[4],
              "created_at": r[5].isoformat()} for r in rows[:limit]]
    return {"items": items, "limit": limit, "offset": offset,
            "next_offset": offset + limit if len(rows) > limit else None}


async def download_url(resources: Resources, tenant_id: str, upload_id: str) -> dict[str, Any]:
    async with tenant_tx(resources, tenant_id) as conn:
        row = await (await conn.execute("SELECT object_key, original_filename FROM uploads WHERE id = %s",
                                        (upload_id,))).fetchone()
    if row is None:
        raise NotFound("no such upload", field="upload_id")
    url = resources.s3.generate_presigned_url(
        "get_object", Params={"Bucket": resources.settings.s3_bucket_uploads, "Key": row[0],
                              "ResponseContentDisposition": content_disposition(row[1])},
        ExpiresIn=PRESIGN_SECONDS)
    return {"url": url, "expires_in": PRESIGN_SECONDS}


async def presign_upload(resources: Resources, tenant_id: str, size_bytes: int) -> dict[str, Any]:
    """A short-lived URL for the browser to PUT a file of exactly `size_bytes` into the tenant's temp/
    (expires by lifecycle; erased with the tenant). The length is signed, so a bigger body is refused."""
    if size_bytes > MAX_UPLOAD_BYTES:
        raise TooLarge(f"size_bytes: at most {MAX_UPLOAD_BYTES} ({MAX_UPLOAD_BYTES // (1024 * 1024)} MB)",
                       field="size_bytes")
    key = f"{temp_prefix(tenant_id)}{uuid.uuid4()}"
    url = resources.s3.generate_presigned_url(
        "put_object", Params={"Bucket": resources.settings.s3_bucket_uploads, "Key": key, "ContentLength": size_bytes},
        ExpiresIn=PRESIGN_SECONDS)
    return {"url": url, "key": key, "expires_in": PRESIGN_SECONDS, "size_bytes": size_bytes}
