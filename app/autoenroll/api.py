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
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autoenroll import keys
from autoenroll.files import KINDS, MAX_UPLOAD_BYTES, RejectedFile, detect
from autoenroll.resources import Resources
from autoenroll.security import Claims, hash_password, issue_token, read_token, verify_password

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
        row = await (await conn.execute("SELECT id, name, storage_quota_bytes FROM tenants")).fetchone()
    if row is None:
        return None
    tenant = {"id": str(row[0]), "name": row[1], "storage_quota_bytes": row[2]}
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


@authenticated("/api/uploads:create")
async def create_upload(request: Request, claims: Claims) -> Response:
    resources: Resources = request.app.state.resources
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_UPLOAD_BYTES:
        return error(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            return error(413, f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        chunks.append(chunk)
    data = b"".join(chunks)
    try:
        kind = detect(data)
    except RejectedFile as exc:
        return error(415, str(exc))
    filename = (request.headers.get("x-filename") or "upload")[:255]
    upload_id = str(uuid.uuid4())
    object_key = f"compliance-evidence/{upload_id}"

    async with tenant_tx(resources, claims.tenant_id) as conn:
        used_row = await (await conn.execute(
            "SELECT coalesce(sum(size_bytes), 0), (SELECT storage_quota_bytes FROM tenants) FROM uploads")).fetchone()
        used, quota = (int(used_row[0]), int(used_row[1])) if used_row else (0, 0)
        if used + size > quota:
            return error(413, f"your storage quota is full ({used} of {quota} bytes used)")
        await asyncio.to_thread(
            resources.s3.put_object, Bucket=resources.settings.s3_bucket_uploads, Key=object_key, Body=data,
            ContentType=KINDS[kind], Metadata={"original-filename": filename.encode("ascii", "replace").decode()})
        try:
            await conn.execute(
                "INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,"
                " size_bytes, sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (upload_id, claims.tenant_id, claims.user_id, object_key, filename, KINDS[kind], size,
                 hashlib.sha256(data).hexdigest()))
        except Exception:
            # No orphan object: the row failed, so the stored file goes too.
            await asyncio.to_thread(resources.s3.delete_object, Bucket=resources.settings.s3_bucket_uploads,
                                    Key=object_key)
            raise
    return JSONResponse({"id": upload_id, "kind": kind, "size_bytes": size}, status_code=201)


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
]
