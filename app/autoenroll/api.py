"""The app's JSON API: thin HTTP over the domain modules (accounts, uploads, runs, gdpr).

Each handler reads the request into typed values (schemas.py), calls one domain function and
turns its result into JSON; domain functions raise AppError subclasses that carry their status,
which main.py's handler answers with, so nothing here chooses a status by reading a message."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autoenroll import accounts, gdpr, runs, uploads
from autoenroll.db import tenant_tx
from autoenroll.errors import BadRequest, TooLarge
from autoenroll.files import MAX_UPLOAD_BYTES
from autoenroll.resources import Resources
from autoenroll.schemas import Page, Presign, SignIn, SignUp, TenantUpdate, filename, parse_as, ppsn_path
from autoenroll.security import Claims

__all__ = ["ROUTES", "error", "tenant_tx"]
MAX_JSON_BYTES = 64 * 1024


def error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def client_ip(request: Request) -> str:
    """The visitor's address, which rate limits are keyed on.

    The socket peer is the app's proxy, never the visitor: Caddy on the sandbox's loopback, or on a
    host the Docker bridge's gateway (docker-proxy relays the published port). So the visitor comes
    from `CF-Connecting-IP`, believed only when the peer is in TRUSTED_PROXIES: Caddy either passes
    Cloudflare's header (on a host, where origin-pull TLS admits only Cloudflare, which sets it) or
    overwrites it with its own peer (where Caddy is the edge: app/Caddyfile). From any other peer the
    header is anyone's to forge, and the peer itself is the client."""
    peer = request.client.host if request.client else "unknown"
    header = request.headers.get("cf-connecting-ip", "").strip()
    if not header:
        return peer
    try:
        peer_address = ipaddress.ip_address(peer)
        visitor = ipaddress.ip_address(header)
    except ValueError:
        return peer
    if any(peer_address in network for network in _resources(request).settings.trusted_proxies):
        return str(visitor)
    return peer


def _resources(request: Request) -> Resources:
    resources: Resources = request.app.state.resources
    return resources


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes `limit` bytes (declared or sent)."""
    if int(request.headers.get("content-length") or 0) > limit:
        raise TooLarge(f"the body is larger than {limit:,} bytes", field="body")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than {limit:,} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request) -> Any:
    raw = await read_body(request, MAX_JSON_BYTES)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: [[[[...]]]] nested past the parser's depth
        raise BadRequest("the body must be JSON", field="body") from None


Handler = Callable[[Request, Claims], Awaitable[Response]]


def authenticated(endpoint: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Rate limit, then the bearer token's claims for the handler."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint_fn(request: Request) -> Response:
            resources = _resources(request)
            await accounts.rate_limit(resources, client_ip(request), endpoint, resources.settings.rate_limit_per_minute)
            token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            return await handler(request, await accounts.authenticate(resources, token))

        return endpoint_fn

    return wrap


async def signup(request: Request) -> Response:
    resources = _resources(request)
    await accounts.rate_limit(resources, client_ip(request), "/api/signup",
                              resources.settings.login_rate_limit_per_minute)
    form = parse_as(SignUp, await json_body(request))
    return JSONResponse(await accounts.sign_up(resources, form), status_code=201)


async def login(request: Request) -> Response:
    resources = _resources(request)
    await accounts.rate_limit(resources, client_ip(request), "/api/auth/login",
                              resources.settings.login_rate_limit_per_minute)
    token, claims = await accounts.sign_in(resources, parse_as(SignIn, await json_body(request)))
    return JSONResponse({"token": token, "expires_at": claims.expires_at})


@authenticated("/api/auth/logout")
async def logout(request: Request, claims: Claims) -> Response:
    await accounts.sign_out(_resources(request), claims)
    return Response(status_code=204)


@authenticated("/api/me")
async def me(request: Request, claims: Claims) -> Response:
    return JSONResponse({"user_id": claims.user_id, "tenant": await accounts.tenant(_resources(request),
                                                                                    claims.tenant_id)})


@authenticated("/api/tenant")
async def update_tenant(request: Request, claims: Claims) -> Response:
    form = parse_as(TenantUpdate, await json_body(request))
    return JSONResponse(await accounts.rename_tenant(_resources(request), claims.tenant_id, form.name))


def _query(request: Request) -> Page:
    return parse_as(Page, dict(request.query_params), what="query")


@authenticated("/api/uploads")
async def list_uploads(request: Request, claims: Claims) -> Response:
    page = _query(request)
    return JSONResponse(await uploads.list_uploads(_resources(request), claims.tenant_id, page.limit, page.offset))


@authenticated("/api/uploads:create")
async def create_upload(request: Request, claims: Claims) -> Response:
    try:
        data = await read_body(request, MAX_UPLOAD_BYTES)
    except TooLarge:
        raise uploads.too_large() from None
    name = filename(request.headers.get("x-filename"))
    stored = await uploads.check_and_store(_resources(request), claims, data, name,
                                           utf8_header(request.headers.get("x-column-map")), request.is_disconnected)
    return JSONResponse(stored.body(), status_code=201,
                        headers=uploads.server_timing(stored.cpu_seconds, stored.peak_rss_kb))


def utf8_header(value: str | None) -> str | None:
    """A header as its sender meant it: raw UTF-8 bytes arrive decoded as Latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8") if value else value
    except UnicodeError:
        return value


@authenticated("/api/runs")
async def get_run(request: Request, claims: Claims) -> Response:
    page = _query(request)
    return JSONResponse(await runs.get_run(_resources(request), claims.tenant_id, str(request.path_params["run_id"]),
                                           page.offset))


async def report_response(resources: Resources, claims: Claims, run_id: str, kind: str) -> Response:
    body, name, content_type = await runs.report(resources, claims.tenant_id, run_id, kind)
    return Response(body, media_type=content_type, headers={"Content-Disposition": uploads.content_disposition(name)})


@authenticated("/api/runs/report")
async def get_report(request: Request, claims: Claims) -> Response:
    return await report_response(_resources(request), claims, str(request.path_params["run_id"]),
                                 str(request.path_params["kind"]))


@authenticated("/api/uploads/download")
async def download_url(request: Request, claims: Claims) -> Response:
    return JSONResponse(await uploads.download_url(_resources(request), claims.tenant_id,
                                                   str(request.path_params["upload_id"])))


@authenticated("/api/uploads/presign")
async def presign_upload(request: Request, claims: Claims) -> Response:
    form = parse_as(Presign, await json_body(request))
    return JSONResponse(await uploads.presign_upload(_resources(request), claims.tenant_id, form.size_bytes))


@authenticated("/api/tenant:erase")
async def erase_tenant(request: Request, claims: Claims) -> Response:
    return JSONResponse(await gdpr.erase_tenant(_resources(request), claims.tenant_id))


@authenticated("/api/employees:erase")
async def erase_employee(request: Request, claims: Claims) -> Response:
    ppsn = ppsn_path(request.path_params["ppsn"])
    return JSONResponse(await gdpr.erase_employee(_resources(request), claims.tenant_id, ppsn))


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
