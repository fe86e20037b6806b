"""Upstreams (ops.ports) over Caddy's admin API: the sandbox's edge Caddy, and a host's Caddy
through an SSH transport; the reverse proxy's upstreams read and changed live (the client is
clients/caddy_admin.py; this maps its errors into ops's, as ExternalError)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from clients.caddy_admin import CaddyAdminClient
from clients.errors import ClientError
from ops.errors import ExternalError


@contextmanager
def _caddy_errors() -> Iterator[None]:
    # ExternalError with the client's words (no HTTP suffix): the messages ops has always shown.
    try:
        yield
    except ClientError as exc:
        raise ExternalError(exc.detail) from None


class CaddyUpstreams:
    """Upstreams: points Caddy's reverse proxy at one or more upstreams (host:port)."""

    def __init__(self, admin_url: str, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        # A transport reaches a host's Caddy over SSH (ops.adapters.cloud.ssh_hosts); the API is the same.
        self._client = CaddyAdminClient(admin_url, timeout=timeout, transport=transport)

    def current_upstreams(self) -> list[str]:
        """The dial addresses Caddy proxies to now."""
        with _caddy_errors():
            return self._client.upstreams()

    def set_upstreams(self, dials: list[str]) -> None:
        """Replace the upstream list atomically (one PATCH; Caddy swaps config gracefully)."""
        with _caddy_errors():
            self._client.set_upstreams(dials)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CaddyUpstreams:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
