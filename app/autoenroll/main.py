"""The ASGI application: `autoenroll.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autoenroll import __version__, sentry
from autoenroll.api import ROUTES
from autoenroll.billing import ROUTES as BILLING_ROUTES
from autoenroll.config import Settings, load_settings
from autoenroll.errors import AppError
from autoenroll.logs import request_id_var
from autoenroll.middleware import RequestContextMiddleware
from autoenroll.readiness import readiness, reason
from autoenroll.resources import close_resources, open_resources
from autoenroll.uploads import return_large_buffers_to_the_system
from autoenroll.web import ROUTES as WEB_ROUTES

_HEALTH_BODY = b'{"status":"ok"}'


async def health(_request: Request) -> Response:
    """Liveness: no I/O at all, so it stays fast when a dependency is slow."""
    return Response(_HEALTH_BODY, media_type="application/json")


async def ready(request: Request) -> Response:
    resources = request.app.state.resources
    ok, checks = await readiness(resources, resources.settings.ready_check_timeout_s)
    body: dict[str, Any] = {"status": "ready" if ok else "not ready", "checks": checks}
    if not ok:
        body["reason"] = reason(checks)
    return JSONResponse(body, status_code=200 if ok else 503)


async def version(request: Request) -> Response:
    """Which release this is and which database it serves from (failover drills read it)."""
    resources = request.app.state.resources
    settings: Settings = resources.settings
    async with resources.db_pool.connection() as conn:
        row = await (await conn.execute("SELECT current_database()")).fetchone()
    return JSONResponse({"version": settings.app_version, "code": __version__, "env": settings.app_env,
                         "database": row[0] if row else None})


async def app_error(_request: Request, exc: Exception) -> Response:
    """An AppError answers with the status it carries and a body naming what is wrong."""
    assert isinstance(exc, AppError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers or None)


async def unexpected(_request: Request, exc: Exception) -> Response:
    """Still JSON, with the request id to quote; the middleware logs the traceback under the same id."""
    return JSONResponse({"error": "something went wrong on our side; quote this request id if you report it",
                         "request_id": request_id_var.get()}, status_code=500)


def create_app(settings: Settings | None = None) -> Any:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        resolved = settings or load_settings()
        return_large_buffers_to_the_system()
        sentry.init(resolved.sentry_dsn, resolved.app_env, resolved.app_version)
        resources = await open_resources(resolved)
        app.state.resources = resources
        try:
            yield
        finally:
            await close_resources(resources)

    starlette = Starlette(
        routes=[
            Route("/health", health, methods=["GET", "HEAD"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            *ROUTES,
            *BILLING_ROUTES,
            *WEB_ROUTES,
        ],
        lifespan=lifespan,
        exception_handlers={AppError: app_error, Exception: unexpected},
    )
    return RequestContextMiddleware(starlette)


app = create_app()
