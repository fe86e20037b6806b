"""Caddy's admin API (its JSON config over HTTP, docs: caddyserver.com/docs/api): the upstreams of
the first reverse_proxy handler, read and replaced.

Hand-written on httpx: Caddy publishes no Python client, and the two calls are a GET and a PATCH
of a config path. The transport is injectable: the sandbox's Caddy is on loopback; a host's is
reached through SSH (ops.adapters.cloud.ssh_hosts.SshCaddyTransport). Raises only `clients.errors`;
an exception the transport raises itself (the SSH transport's own) passes through.
"""

from __future__ import annotations

from typing import Any, Self

import httpx

from clients.errors import ClientConnectError, ClientResponseError, http_error


def find_reverse_proxy(node: Any, path: list[str]) -> list[str] | None:
    """Path (admin API segments) of the first reverse_proxy handler in Caddy's JSON config."""
    if isinstance(node, dict):
        if node.get("handler") == "reverse_proxy":
            return path
        for key, value in node.items():
            found = find_reverse_proxy(value, [*path, str(key)])
            if found is not None:
                return found
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found = find_reverse_proxy(value, [*path, str(index)])
            if found is not None:
                return found
    return None


class CaddyAdminClient:
    def __init__(self, admin_url: str, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        self._client = httpx.Client(base_url=admin_url, timeout=timeout, transport=transport)

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ClientConnectError(f"Caddy admin API unreachable: {exc.__class__.__name__}") from None

    def reverse_proxy_path(self) -> str:
        """The config path of the first reverse_proxy handler."""
        response = self._call("GET", "/config/")
        if response.status_code >= 400:  # as unreachable: the admin API is not answering as Caddy's
            raise http_error("Caddy admin API unreachable: HTTPStatusError", response.status_code)
        try:
            config = response.json()
        except ValueError:
            raise ClientResponseError("Caddy admin API: /config/ is not JSON") from None
        path = find_reverse_proxy(config, [])
        if path is None:
            raise ClientResponseError("Caddy's config has no reverse_proxy handler")
        return "/config/" + "/".join(path)

    def upstreams(self) -> list[str]:
        """The dial addresses the reverse proxy sends to now."""
        response = self._call("GET", self.reverse_proxy_path() + "/upstreams")
        if response.status_code >= 400:
            raise http_error(f"Caddy admin API: HTTP {response.status_code} reading the upstreams",
                             response.status_code)
        return [str(u["dial"]) for u in response.json() or []]

    def set_upstreams(self, dials: list[str]) -> None:
        """Replace the upstream list atomically (one PATCH; Caddy swaps config gracefully)."""
        response = self._call("PATCH", self.reverse_proxy_path() + "/upstreams", json=[{"dial": d} for d in dials])
        if response.status_code >= 400:
            raise http_error(f"Caddy refused the upstream change: {response.text.strip()[:200]}",
                             response.status_code)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
