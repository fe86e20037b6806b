"""Accounts: sign-up, sign-in and out, the session behind a token, rate limits, and the tenant.

Redis holds sessions, rate limits, revoked tokens and a cache, with exactly DOMAIN.md's keys and
TTLs; the app stays correct (only slower) when Redis's cache is flushed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from autoenroll import keys
from autoenroll.db import tenant_tx
from autoenroll.errors import Conflict, NotFound, TooManyRequests, Unauthorized
from autoenroll.resources import Resources
from autoenroll.schemas import SignIn, SignUp
from autoenroll.security import Claims, hash_password, issue_token, read_token, verify_password


async def rate_limit(resources: Resources, client_ip: str, endpoint: str, limit: int) -> None:
    """Fixed one-minute window per IP and endpoint: `rate:{ip}:{endpoint}`; TooManyRequests past `limit`."""
    key = keys.rate(client_ip, endpoint)
    count = await resources.redis.incr(key)
    if count == 1:
        await resources.redis.expire(key, keys.RATE_WINDOW_S)
    if count > limit:
        ttl = await resources.redis.ttl(key)
        raise TooManyRequests("too many requests: slow down", headers={"Retry-After": str(max(1, ttl))})


async def authenticate(resources: Resources, token: str) -> Claims:
    """The token's claims if it is genuine, not revoked (`blacklist:{jti}`) and its session is alive
    (`session:{user_id}`, sliding 30 min) for the same tenant; else Unauthorized."""
    claims = read_token(resources.settings.auth_secret, token)
    if claims is None:
        raise Unauthorized("sign in first")
    revoked, session = await asyncio.gather(resources.redis.exists(keys.blacklist(claims.jti)),
                                            resources.redis.get(keys.session(claims.user_id)))
    if revoked:
        raise Unauthorized("this token was revoked: sign in again")
    stored = json.loads(session) if session else {}
    if stored.get("jti") != claims.jti or stored.get("tenant_id") != claims.tenant_id:
        raise Unauthorized("your session ended: sign in again")
    await resources.redis.expire(keys.session(claims.user_id), keys.SESSION_TTL_S)
    return claims


async def sign_up(resources: Resources, form: SignUp) -> dict[str, str]:
    tenant_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with resources.db_pool.connection() as conn:
        existing = await (await conn.execute("SELECT 1 FROM auth_lookup(%s)", (form.email,))).fetchone()
    if existing:
        raise Conflict("an account with this e-mail exists: sign in instead", field="email")
    async with tenant_tx(resources, tenant_id) as conn:
        await conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant_id, form.company))
        await conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash, role)"
                           " VALUES (%s, %s, %s, %s, %s, 'owner')",
                           (user_id, tenant_id, form.email, form.full_name, hash_password(form.password)))
    return {"tenant_id": tenant_id, "user_id": user_id}


async def sign_in(resources: Resources, form: SignIn) -> tuple[str, Claims]:
    async with resources.db_pool.connection() as conn:
        row = await (await conn.execute("SELECT user_id, tenant_id, password_hash FROM auth_lookup(%s)",
                                        (form.email,))).fetchone()
    if row is None or not verify_password(form.password, row[2]):
        raise Unauthorized("wrong e-mail or password")
    token, claims = issue_token(resources.settings.auth_secret, str(row[0]), str(row[1]))
    session = json.dumps({"tenant_id": claims.tenant_id, "jti": claims.jti})
    await resources.redis.set(keys.session(claims.user_id), session, ex=keys.SESSION_TTL_S)
    return token, claims


async def sign_out(resources: Resources, claims: Claims) -> None:
    ttl = max(1, claims.expires_at - int(time.time()))
    await resources.redis.set(keys.blacklist(claims.jti), "1", ex=ttl)  # revoked until the token would have expired
    await resources.redis.delete(keys.session(claims.user_id))


async def tenant(resources: Resources, tenant_id: str) -> dict[str, Any]:
    cache_key = keys.cache("tenant", tenant_id)
    cached = await resources.redis.get(cache_key)
    if cached:
        return dict(json.loads(cached))
    async with tenant_tx(resources, tenant_id) as conn:
        row = await (await conn.execute("SELECT id, name, storage_quota_bytes, billing_status FROM tenants")).fetchone()
    if row is None:
        raise NotFound("no such tenant")
    found = {"id": str(row[0]), "name": row[1], "storage_quota_bytes": row[2], "billing_status": row[3]}
    await resources.redis.set(cache_key, json.dumps(found), ex=3600)
    return found


async def rename_tenant(resources: Resources, tenant_id: str, name: str) -> dict[str, Any]:
    async with tenant_tx(resources, tenant_id) as conn:
        await conn.execute("UPDATE tenants SET name = %s", (name,))  # RLS: only this tenant's row
    await resources.redis.delete(keys.cache("tenant", tenant_id))  # invalidate on write
    return await tenant(resources, tenant_id)
