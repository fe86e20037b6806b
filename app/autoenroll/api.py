"""The app's JSON API: sign-up, sign-in/out, the tenant, uploads (object storage), GDPR erasure.

Every tenant query runs in a transaction with `app.tenant_id` set, so PostgreSQL's row-level
security confines it even if a WHERE clause is forgotten. Redis holds sessions, rate limits,
revoked tokens and a cache, with exactly DOMAIN.md's keys and TTLs; the app stays correct
(only slower) when Redis's cache is flushed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autoenroll import keys
from autoenroll.files import KINDS, MAX_UPLOAD_BYTES, RejectedFile, detect
from autoenroll.resources import Resources
from autoenroll.security import Claims, hash_password, issue_token, read_token, verify_password
from autoenroll.validation.columns import ColumnProblem, UnrecognisedColumns, column_map
from autoenroll.validation.engine import Validation, validate
from autoenroll.validation.parse import parse
from autoenroll.validation.reports import errors_csv, summary_json, summary_pdf

PAGE_MAX = 50
PRESIGN_SECONDS = 300


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


@asynccontextmanager
async def tenant_tx(resources: Resources, tenant_id: str) -> AsyncIterator[AsyncConnection[Any]]:
    """A transaction in which row-level security sees only `tenant_id`'s rows."""
    async with resources.db_pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        yield conn


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def rate_limited(request: Request, endpoint: str, limit: int) -> JSONResponse | None:
    """Fixed one-minute window per IP and endpoint: `rate:{ip}:{endpoint}`; 429 with Retry-After."""
    redis = request.app.state.resources.redis
    key = keys.rate(_client_ip(request), endpoint)
    count = await redis.incr(key)
    if count == 1:
        await redis.expire(key, keys.RATE_WINDOW_S)
    if count > limit:
        ttl = await redis.ttl(key)
        return error(429, "too many requests: slow down", **{"Retry-After": str(max(1, ttl))})
    return None


Handler = Callable[[Request, Claims], Awaitable[Response]]


def authenticated(endpoint: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Bearer token, not revoked (`blacklist:{jti}`), session alive (`session:{user_id}`, sliding 30 min)."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint_fn(request: Request) -> Response:
            resources: Resources = request.app.state.resources
            limited = await rate_limited(request, endpoint, resources.settings.rate_limit_per_minute)
            if limited:
                return limited
            header = request.headers.get("authorization", "")
            claims = read_token(resources.settings.auth_secret, header.removeprefix("Bearer ").strip())
            if claims is None:
                return error(401, "sign in first")
            revoked, session = await asyncio.gather(resources.redis.exists(keys.blacklist(claims.jti)),
                                                    resources.redis.get(keys.session(claims.user_id)))
            if revoked:
                return error(401, "this token was revoked: sign in again")
            if session is None or json.loads(session).get("jti") != claims.jti:
                return error(401, "your session ended: sign in again")
            await resources.redis.expire(keys.session(claims.user_id), keys.SESSION_TTL_S)
            return await handler(request, claims)

        return endpoint_fn

    return wrap


async def _json(request: Request, *fields: str) -> dict[str, Any] | JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return error(400, "the body must be JSON")
    if not isinstance(body, dict):
        return error(400, "the body must be a JSON object")
    missing = [f for f in fields if not str(body.get(f, "")).strip()]
    if missing:
        return error(400, f"missing: {', '.join(missing)}")
    return body


async def signup(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    limited = await rate_limited(request, "/api/signup", resources.settings.login_rate_limit_per_minute)
    if limited:
        return limited
    body = await _json(request, "company", "email", "full_name", "password")
    if isinstance(body, JSONResponse):
        return body
    if len(body["password"]) < 12:
        return error(400, "the password must have at least 12 characters")
    tenant_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with resources.db_pool.connection() as conn:
        existing = await (await conn.execute("SELECT 1 FROM auth_lookup(%s)", (body["email"],))).fetchone()
    if existing:
        return error(409, "an account with this e-mail exists: sign in instead")
    async with tenant_tx(resources, tenant_id) as conn:
        await conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, body["company"]))
        await conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash, role)"
                           " VALUES (%s, %s, %s, %s, %s, 'owner')",
                           (user_id, tenant_id, body["email"], body["full_name"], hash_password(body["password"])))
    return JSONResponse({"tenant_id": tenant_id, "user_id": user_id}, status_code=201)


async def login(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    limited = await rate_limited(request, "/api/auth/login", resources.settings.login_rate_limit_per_minute)
    if limited:
        return limited
    body = await _json(request, "email", "password")
    if isinstance(body, JSONResponse):
        return body
    async with resources.db_pool.connection() as conn:
        row = await (await conn.execute("SELECT user_id, tenant_id, password_hash FROM auth_lookup(%s)",
                                        (body["email"],))).fetchone()
    if row is None or not verify_password(body["password"], row[2]):
        return error(401, "wrong e-mail or password")
    token, claims = issue_token(resources.settings.auth_secret, str(row[0]), str(row[1]))
    session = json.dumps({"tenant_id": claims.tenant_id, "jti": claims.jti})
    await resources.redis.set(keys.session(claims.user_id), session, ex=keys.SESSION_TTL_S)
    return JSONResponse({"token": token, "expires_at": claims.expires_at})


@authenticated("/api/auth/logout")
async def logout(request: Request, claims: Claims) -> Response:
    redis = request.app.state.resources.redis
    ttl = max(1, claims.expires_at - int(time.time()))
    await redis.set(keys.blacklist(claims.jti), "1", ex=ttl)  # revoked until the token would have expired
    await redis.delete(keys.session(claims.user_id))
    return Response(status_code=204)


async def _tenant(resources: Resources, tenant_id: str) -> dict[str, Any] | None:
    cache_key = keys.cache("tenant", tenant_id)
    cached = await resources.redis.get(cache_key)
    if cached:
        return dict(json.loads(cached))
    async with tenant_tx(resources, tenant_id) as conn:
        row = await (await conn.execute("SELECT id, name, storage_quota_bytes, billing_status FROM tenants")).fetchone()
    if row is None:
        return None
    tenant = {"id": str(row[0]), "name": row[1], "storage_quota_bytes": row[2], "billing_status": row[3]}
    await resources.redis.set(cache_key, json.dumps(tenant), ex=3600)
    return tenant


@authenticated("/api/me")
async def me(request: Request, claims: Claims) -> Response:
    tenant = await _tenant(request.app.state.resources, claims.tenant_id)
    return JSONResponse({"user_id": claims.user_id, "tenant": tenant})


@authenticated("/api/tenant")
async def update_tenant(request: Request, claims: Claims) -> Response:
    resources: Resources = request.app.state.resources
    body = await _json(request, "name")
    if isinstance(body, JSONResponse):
        return body
    async with tenant_tx(resources, claims.tenant_id) as conn:
        await conn.execute("UPDATE tenants SET name = %s", (body["name"],))  # RLS: only this tenant's row
    await resources.redis.delete(keys.cache("tenant", claims.tenant_id))  # invalidate on write
    return JSONResponse(await _tenant(resources, claims.tenant_id))


@authenticated("/api/uploads")
async def list_uploads(request: Request, claims: Claims) -> Response:
    try:
        limit = min(PAGE_MAX, max(1, int(request.query_params.get("limit", PAGE_MAX))))
        offset = max(0, int(request.query_params.get("offset", 0)))
    except ValueError:
        return error(400, "limit and offset must be integers")
    async with tenant_tx(request.app.state.resources, claims.tenant_id) as conn:
        rows = await (await conn.execute(
            "SELECT id, original_filename, content_type, size_bytes, status, created_at FROM uploads"
            " ORDER BY created_at DESC LIMIT %s OFFSET %s", (limit + 1, offset))).fetchall()
    items = [{"id": str(r[0]), "filename": r[1], "content_type": r[2], "size_bytes": r[3], "status": r[4],
              "created_at": r[5].isoformat()} for r in rows[:limit]]
    return JSONResponse({"items": items, "limit": limit, "offset": offset,
                         "next_offset": offset + limit if len(rows) > limit else None})


async def store_and_validate(resources: Resources, claims: Claims, data: bytes, filename: str,
                             raw_column_map: str | None = None) -> JSONResponse:
    """Upload -> validate -> report, all or nothing: a file that can't be read is refused before
    anything is stored, and if the database write fails the stored objects are removed again.
    `raw_column_map` is the employer's JSON {field: header in the file} (validation/columns.py)."""
    if not data:
        return error(415, "the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        return error(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    try:
        kind = detect(data)
        parsed = await asyncio.to_thread(parse, data, kind, column_map(raw_column_map))
    except UnrecognisedColumns as exc:  # the body says what the page needs to offer a column map
        return JSONResponse({"error": str(exc), **exc.detail()}, status_code=422)
    except RejectedFile as exc:
        not_a_payroll = "is a" in str(exc) or "binary" in str(exc) or "empty" in str(exc)
        status = 415 if not_a_payroll and not isinstance(exc, ColumnProblem) else 422
        return error(status, str(exc))
    validation = await asyncio.to_thread(validate, parsed, date.today())
    upload_id, run_id = str(uuid.uuid4()), str(uuid.uuid4())
    bucket = resources.settings.s3_bucket_uploads
    objects = {f"compliance-evidence/{upload_id}": (data, KINDS[kind]),
               f"reports/{run_id}/summary.json": (summary_json(validation, {"run_id": run_id}), "application/json"),
               f"reports/{run_id}/errors.csv": (errors_csv(validation), "text/csv"),
               f"reports/{run_id}/summary.pdf": (await asyncio.to_thread(summary_pdf, validation, filename),
                                                 "application/pdf")}
    async with tenant_tx(resources, claims.tenant_id) as conn:
        used_row = await (await conn.execute(
            "SELECT coalesce(sum(size_bytes), 0), (SELECT storage_quota_bytes FROM tenants) FROM uploads")).fetchone()
        used, quota = (int(used_row[0]), int(used_row[1])) if used_row else (0, 0)
        if used + len(data) > quota:
            return error(413, f"your storage quota is full ({used} of {quota} bytes used)")
        written: list[str] = []
        try:
            for key, (body, content_type) in objects.items():
                metadata = {"original-filename": filename.encode("ascii", "replace").decode()}
                await asyncio.to_thread(resources.s3.put_object, Bucket=bucket, Key=key, Body=body,
                                        ContentType=content_type, Metadata=metadata)
                written.append(key)
            await write_run(conn, claims, upload_id, run_id, filename, KINDS[kind], data, validation)
        except BaseException:
            for key in written:  # no orphan object: the rows failed, so the files go too
                await asyncio.to_thread(resources.s3.delete_object, Bucket=bucket, Key=key)
            raise
    return JSONResponse({"id": upload_id, "run_id": run_id, "kind": kind, "size_bytes": len(data),
                         "summary": validation.summary()}, status_code=201)


async def write_run(conn: AsyncConnection[Any], claims: Claims, upload_id: str, run_id: str, filename: str,
                    content_type: str, data: bytes, validation: Validation) -> None:
    summary = validation.summary()
    await conn.execute(
        "INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type, size_bytes,"
        " sha256, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'validated')",
        (upload_id, claims.tenant_id, claims.user_id, f"compliance-evidence/{upload_id}", filename, content_type,
         len(data), hashlib.sha256(data).hexdigest()))
    await conn.execute(
        "INSERT INTO validation_runs (id, tenant_id, upload_id, status, assessment_date, row_count, error_count,"
        " summary, finished_at) VALUES (%s, %s, %s, 'completed', %s, %s, %s, %s, now())",
        (run_id, claims.tenant_id, upload_id, validation.assessment_date, summary["rows"], summary["errors"],
         json.dumps(summary)))
    # COPY FROM is refused under row-level security; executemany runs as a pipeline instead.
    rows = []
    for r in validation.results:
        v = r.values
        errors = json.dumps([{"column": e.column, "rule": e.rule, "message": e.message} for e in r.errors])
        rows.append((claims.tenant_id, run_id, r.row, v.get("employee_id", "")[:100], v.get("ppsn", "")[:20],
                     v.get("first_name", "")[:200], v.get("last_name", "")[:200], r.dob,
                     v.get("email", "")[:320] or None, r.gross, v.get("pay_frequency", "")[:40], r.eligibility,
                     r.employee, r.employer, r.state, errors))
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO employee_results (tenant_id, run_id, row_number, employee_id, ppsn, first_name, last_name,"
            " date_of_birth, email, gross_pay, pay_frequency, eligibility, employee_contribution,"
            " employer_contribution, state_contribution, errors) VALUES"
            " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)


@authenticated("/api/uploads:create")
async def create_upload(request: Request, claims: Claims) -> Response:
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_UPLOAD_BYTES:
        return error(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            return error(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    filename = (request.headers.get("x-filename") or "upload")[:255]
    return await store_and_validate(request.app.state.resources, claims, b"".join(chunks), filename,
                                    utf8_header(request.headers.get("x-column-map")))


def utf8_header(value: str | None) -> str | None:
    """A header as its sender meant it: raw UTF-8 bytes arrive decoded as Latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8") if value else value
    except UnicodeError:
        return value


async def run_errors(conn: AsyncConnection[Any], run_id: str, offset: int = 0) -> list[dict[str, Any]]:
    """A page (at most PAGE_MAX rows) of a run's row errors, in file order."""
    rows = await (await conn.execute(
        "SELECT row_number, errors FROM employee_results WHERE run_id = %s AND errors <> '[]'::jsonb"
        " ORDER BY row_number LIMIT %s OFFSET %s", (run_id, PAGE_MAX, offset))).fetchall()
    return [{"row": r[0], **e} for r in rows for e in r[1]]


@authenticated("/api/runs")
async def get_run(request: Request, claims: Claims) -> Response:
    run_id = str(request.path_params["run_id"])
    async with tenant_tx(request.app.state.resources, claims.tenant_id) as conn:
        row = await (await conn.execute("SELECT summary, status FROM validation_runs WHERE id = %s",
                                        (run_id,))).fetchone()
        if row is None:
            return error(404, "no such run")
        errors = await run_errors(conn, run_id, int(request.query_params.get("offset", 0)))
    return JSONResponse({"status": row[1], "summary": row[0], "errors": errors})


REPORT_TYPES = {"json": ("summary.json", "application/json"), "csv": ("errors.csv", "text/csv; charset=utf-8"),
                "pdf": ("summary.pdf", "application/pdf")}


async def report_for(request: Request, claims: Claims) -> Response:
    """A run's report (json, csv or pdf), if the run is this tenant's."""
    resources: Resources = request.app.state.resources
    kind = request.path_params["kind"]
    if kind not in REPORT_TYPES:
        return error(404, "reports are json, csv or pdf")
    async with tenant_tx(resources, claims.tenant_id) as conn:  # RLS: only this tenant's runs exist
        row = await (await conn.execute("SELECT 1 FROM validation_runs WHERE id = %s",
                                        (request.path_params["run_id"],))).fetchone()
    if row is None:
        return error(404, "no such run")
    name, content_type = REPORT_TYPES[kind]
    obj = await asyncio.to_thread(resources.s3.get_object, Bucket=resources.settings.s3_bucket_uploads,
                                  Key=f"reports/{request.path_params['run_id']}/{name}")
    body = await asyncio.to_thread(obj["Body"].read)
    return Response(body, media_type=content_type,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@authenticated("/api/uploads/download")
async def download_url(request: Request, claims: Claims) -> Response:
    resources: Resources = request.app.state.resources
    async with tenant_tx(resources, claims.tenant_id) as conn:
        row = await (await conn.execute("SELECT object_key, original_filename FROM uploads WHERE id = %s",
                                        (request.path_params["upload_id"],))).fetchone()
    if row is None:
        return error(404, "no such upload")
    url = resources.s3.generate_presigned_url(
        "get_object", Params={"Bucket": resources.settings.s3_bucket_uploads, "Key": row[0],
                              "ResponseContentDisposition": f'attachment; filename="{row[1]}"'},
        ExpiresIn=PRESIGN_SECONDS)
    return JSONResponse({"url": url, "expires_in": PRESIGN_SECONDS})


@authenticated("/api/uploads/presign")
async def presign_upload(request: Request, claims: Claims) -> Response:
    """A short-lived URL for the browser to PUT a file straight into temp/ (expires by lifecycle)."""
    resources: Resources = request.app.state.resources
    key = f"temp/{uuid.uuid4()}"
    url = resources.s3.generate_presigned_url(
        "put_object", Params={"Bucket": resources.settings.s3_bucket_uploads, "Key": key}, ExpiresIn=PRESIGN_SECONDS)
    return JSONResponse({"url": url, "key": key, "expires_in": PRESIGN_SECONDS})


@authenticated("/api/tenant:erase")
async def erase_tenant(request: Request, claims: Claims) -> Response:
    from autoenroll.gdpr import erase_tenant as erase

    return JSONResponse(await erase(request.app.state.resources, claims.tenant_id))


@authenticated("/api/employees:erase")
async def erase_employee(request: Request, claims: Claims) -> Response:
    from autoenroll.gdpr import erase_employee as erase

    return JSONResponse(await erase(request.app.state.resources, claims.tenant_id, request.path_params["ppsn"]))


get_report = authenticated("/api/runs/report")(report_for)

ROUTES = [
    Route("/api/signup", signup, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/me", me, methods=["GET"]),
    Route("/api/tenant", update_tenant, methods=["PATCH"]),
    Route("/api/tenant", erase_tenant, methods=["DELETE"]),
    Route("/api/uploads", list_uploads, methods=["GET"]),
    Route("/api/uploads", create_upload, methods=["POST"]),
    Route("/api/uploads/presign", presign_upload, methods=["POST"]),
    Route("/api/uploads/{upload_id:uuid}/download", download_url, methods=["GET"]),
    Route("/api/employees/{ppsn}", erase_employee, methods=["DELETE"]),
    Route("/api/runs/{run_id:uuid}", get_run, methods=["GET"]),
    Route("/api/runs/{run_id:uuid}/report.{kind}", get_report, methods=["GET"]),
]
