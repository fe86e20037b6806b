"""Rate limits are keyed on the visitor, not on the proxy (issue 25, item 6).

Unit: `api.client_ip` believes CF-Connecting-IP only from a peer in TRUSTED_PROXIES (the app's Caddy:
loopback in the sandbox, the Docker bridge's gateway on a host). Sandbox: through the sandbox's Caddy
(the edge there) two visitors get two buckets, and a visitor cannot choose its bucket by sending
CF-Connecting-IP itself (Caddy overwrites it with the visitor's address)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
import pytest
from starlette.requests import Request

from autoenroll.api import client_ip
from autoenroll.config import ConfigurationError, load_settings
from ops.sandbox.state import SandboxState
from tests.app.test_config import GOOD


def _request(peer: str, trusted: str | None, header: str | None) -> Request:
    settings = load_settings({**GOOD, **({"TRUSTED_PROXIES": trusted} if trusted is not None else {})})
    app = SimpleNamespace(state=SimpleNamespace(resources=SimpleNamespace(settings=settings)))
    headers = [(b"cf-connecting-ip", header.encode())] if header is not None else []
    return Request({"type": "http", "method": "POST", "path": "/api/auth/login", "headers": headers,
                    "client": (peer, 40000), "app": app})


@pytest.mark.unit
@pytest.mark.parametrize(("peer", "trusted", "header", "expected"), [
    # A host: docker-proxy relays Caddy's connection from the bridge's gateway, which the deploy trusts.
    ("172.17.0.1", "172.17.0.1", "203.0.113.7", "203.0.113.7"),
    ("172.17.0.1", "172.17.0.0/16,127.0.0.1", "2001:db8::5", "2001:db8::5"),
    # The sandbox: Caddy on loopback, trusted by default.
    ("127.0.0.1", None, "198.51.100.4", "198.51.100.4"),
    # Anyone else may forge the header: the peer is the client.
    ("10.0.0.9", "172.17.0.1", "203.0.113.7", "10.0.0.9"),
    ("172.17.0.1", None, "203.0.113.7", "172.17.0.1"),
    # No header, or one that is not an address: the peer.
    ("172.17.0.1", "172.17.0.1", None, "172.17.0.1"),
    ("172.17.0.1", "172.17.0.1", "203.0.113.7, 10.0.0.1", "172.17.0.1"),
])
def test_client_ip_believes_cf_connecting_ip_only_from_a_trusted_proxy(
        peer: str, trusted: str | None, header: str | None, expected: str) -> None:
    assert client_ip(_request(peer, trusted, header)) == expected


@pytest.mark.unit
def test_a_bad_trusted_proxy_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"^TRUSTED_PROXIES: 'caddy' is not an IP address"):
        load_settings({**GOOD, "TRUSTED_PROXIES": "127.0.0.1,caddy"})


def _visitor(sandbox: SandboxState, address: str) -> httpx.Client:
    """A browser on its own loopback address (the sandbox's Caddy sees it as the peer)."""
    return httpx.Client(base_url=sandbox.public_url(), timeout=15,
                        transport=httpx.HTTPTransport(local_address=address))


def _logins(client: httpx.Client, email: str, count: int, forged: bool = False) -> list[int]:
    return [client.post("/api/auth/login", json={"email": email, "password": "wrong password!!"},
                        headers={"CF-Connecting-IP": f"198.51.100.{n}"} if forged else None).status_code
            for n in range(count)]


@pytest.mark.integration
def test_two_visitors_through_the_sandbox_edge_get_two_buckets(sandbox: SandboxState, api: httpx.Client) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.ie"
    with _visitor(sandbox, "127.0.0.2") as a, _visitor(sandbox, "127.0.0.3") as b:
        # A forges a new CF-Connecting-IP on every attempt: Caddy (the edge here) overwrites it.
        assert _logins(a, email, 11, forged=True) == [401] * 10 + [429]
        assert _logins(b, email, 1) == [401]
