"""Pure-ASGI request middleware: a request id on every request, response and log line.

Pure ASGI (not BaseHTTPMiddleware) because it sits on the `/health` hot path.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from autoenroll.logs import request_id_var

log = logging.getLogger("autoenroll.access")
_QUIET_PATHS = {"/health"}
_HEALTH_START: dict[str, Any] = {"type": "http.response.start", "status": 200,
                 "headers": [(b"content-type", b"application/json"), (b"content-length", b"15")]}
_HEALTH_BODY = {"type": "http.response.body", "body": b'{"status":"ok"}'}
_EMPTY_BODY = {"type": "http.response.body", "body": b""}  # probed every few seconds; logging each would drown the rest


class RequestContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/health" and scope["method"] in ("GET", "HEAD"):
            # Liveness is probed constantly (Caddy, the load balancer, BetterStack): answer it here,
            # before routing, with no I/O and no log line.
            incoming = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), None)
            start = _HEALTH_START if incoming is None else {
                **_HEALTH_START, "headers": [*_HEALTH_START["headers"], (b"x-request-id", incoming[:64])]}
            await send(start)
            await send(_HEALTH_BODY if scope["method"] == "GET" else _EMPTY_BODY)
            return
        incoming = None
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")[:64]
                break
        request_id = incoming or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [0]

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette has answered with main.unexpected's JSON 500 and re-raised: log it here, where the
            # request id is still set (uvicorn would log it again without one, and without a traceback).
            status_holder[0] = status_holder[0] or 500
            log.exception("unhandled error", extra={"fields": {"method": scope["method"], "path": scope["path"]}})
        finally:
            if scope["path"] not in _QUIET_PATHS or status_holder[0] >= 400:
                log.info(
                    "request",
                    extra={"fields": {
                        "method": scope["method"], "path": scope["path"], "status": status_holder[0],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }},
                )
            request_id_var.reset(token)
