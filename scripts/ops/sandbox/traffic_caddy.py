"""Upstreams (ops.ports) over Caddy's admin API: the sandbox's edge Caddy, and a host's Caddy
through an SSH transport; the reverse proxy's upstreams read and changed live."""

from __future__ import annotations

from typing import Any

import httpx

from ops.errors import ExternalError


def _find_reverse_proxy(node: Any, path: list[str]) -> list[str] | None:
    """Path (admin API segments) of the first reverse_proxy handler in Caddy's JSON config."""
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            return path
        for key, value in node.items():
            found = _find_reverse_proxy(value, [*path, str(key)])
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = _find_reverse_proxy(value, [*path, str(index)])
            if found is not None:
                return found
    return None


class CaddyUpstreams:
    """Upstreams: points Caddy's reverse proxy at one or more upstreams (host:port)."""

    def __init__(self, admin_url: str, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        # A transport reaches a host's Caddy over SSH (ops.adapters.cloud.ssh_hosts); the API is the same.
        self._client = httpx.Client(base_url=admin_url, timeout=timeout, transport=transport)

    def _handler_path(self) -> str:
        try:
            response = self._client.get("/config/")
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise ExternalError(f"Caddy admin API unreachable: {exc.__class__.__name__}") from None
        path = _find_reverse_proxy(response.json(), [])
        if path is None:
            raise ExternalError("Caddy's config has no reverse_proxy handler")
        return "/config/" + "/".join(path)

    def current_upstreams(self) -> list[str]:
        """The dial addresses Caddy proxies to now."""
        response = self._client.get(self._handler_path() + "/upstreams")
        if response.status_code >= 400:
            raise ExternalError(f"Caddy admin API: HTTP {response.status_code} reading the upstreams")
        return [str(u["dial"]) for u in response.json() or []]

    def set_upstreams(self, dials: list[str]) -> None:
        """Replace the upstream list atomically (one PATCH; Caddy swaps config gracefully)."""
        url = self._handler_path() + "/upstreams"
        response = self._client.patch(url, json=[{"dial": d} for d in dials])
        if response.status_code >= 400:
            raise ExternalError(f"Caddy refused the upstream change: {response.text.strip()[:200]}")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CaddyUpstreams:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
