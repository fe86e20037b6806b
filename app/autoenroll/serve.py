"""The container's start command: `python -m autoenroll.serve`.

Validates the configuration before anything starts (one line naming a bad variable, exit
2), then runs uvicorn, which on SIGTERM stops accepting connections and lets in-flight
requests finish (up to GRACEFUL_TIMEOUT seconds).
"""

from __future__ import annotations

import os
import sys

import uvicorn

from autoenroll.config import ConfigurationError, load_settings
from autoenroll.logs import configure_logging


def main() -> int:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    uvicorn.run(
        "autoenroll.main:app",
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        # Off: the client's address has one owner, api.client_ip (CF-Connecting-IP from TRUSTED_PROXIES).
        # uvicorn's X-Forwarded-For rewriting would replace the socket peer that check needs, and on a
        # host X-Forwarded-For ends with Cloudflare's edge, not the visitor.
        proxy_headers=False,
        timeout_graceful_shutdown=int(os.environ.get("GRACEFUL_TIMEOUT", "20")),
        timeout_keep_alive=75,  # longer than Caddy's idle keep-alive, so Caddy closes first
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
