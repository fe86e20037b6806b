"""Every SaaS client can be pointed at a fake from a subprocess by one variable (the lab's loopback
fakes); unset, the provider's own URL is used."""

from __future__ import annotations

import re

import httpx
import pytest

from clients.betterstack_api import BetterStackClient
from clients.cloudflare_api import CloudflareClient
from clients.errors import ClientConfigError
from clients.http_api import ProviderClient
from clients.neon_api import NeonClient
from clients.stripe_api import StripeClient

pytestmark = pytest.mark.unit

CLIENTS: list[tuple[type[ProviderClient | CloudflareClient], str, str]] = [
    (BetterStackClient, "OPS_BETTERSTACK_API_URL", "https://uptime.betterstack.com/api/v2"),
    (StripeClient, "OPS_STRIPE_API_URL", "https://api.stripe.com/v1"),
    (CloudflareClient, "OPS_CLOUDFLARE_API_URL", "https://api.cloudflare.com/client/v4"),
    (NeonClient, "OPS_NEON_API_URL", "https://console.neon.tech/api/v2"),
]


def _seen(cls: type[ProviderClient | CloudflareClient], monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL a request from `cls.from_environ()` goes to."""
    urls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={})

    monkeypatch.setenv(cls.credential_variable, "token")
    if issubclass(cls, CloudflareClient):  # the SDK's client: its plain GET
        with cls.from_environ(transport=httpx.MockTransport(answer)) as cloudflare:
            cloudflare.get("/probe")
    else:
        with cls.from_environ(transport=httpx.MockTransport(answer), sleep=lambda _s: None) as client:
            client.request("GET", "/probe")
    return urls[0]


@pytest.mark.parametrize("cls, variable, default", CLIENTS, ids=[c[0].__name__ for c in CLIENTS])
def test_the_override_variable_moves_the_base_url_and_unset_keeps_the_providers(
        cls: type[ProviderClient | CloudflareClient], variable: str, default: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert cls.base_url_variable == variable
    monkeypatch.delenv(variable, raising=False)
    assert _seen(cls, monkeypatch) == f"{default}/probe"
    assert cls.base_url.rstrip("/") == default
    monkeypatch.setenv(variable, "http://127.0.0.1:9/fake/v9")
    assert _seen(cls, monkeypatch) == "http://127.0.0.1:9/fake/v9/probe"


def test_an_override_that_is_not_a_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test")
    monkeypatch.setenv("OPS_STRIPE_API_URL", "127.0.0.1:9")
    with pytest.raises(ClientConfigError, match=re.escape("OPS_STRIPE_API_URL: '127.0.0.1:9' is not an http")):
        StripeClient.from_environ()


def test_an_explicit_base_url_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_BETTERSTACK_API_URL", "http://127.0.0.1:9/env")
    monkeypatch.setenv("BETTERSTACK_API_TOKEN", "t")
    with BetterStackClient.from_environ(base_url="http://127.0.0.1:9/given") as client:
        assert str(client._client.base_url).startswith("http://127.0.0.1:9/given")


def test_the_sdk_clients_overrides_are_checked_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cloudflare and hcloud SDK clients (DNS switch, SSH opening) read their override through
    the same base_url_override, so a value that is not a URL is named there too."""
    from clients.http_api import base_url_override

    monkeypatch.delenv("OPS_HCLOUD_API_URL", raising=False)
    assert base_url_override("OPS_HCLOUD_API_URL") is None
    monkeypatch.setenv("OPS_HCLOUD_API_URL", "http://127.0.0.1:9/v1")
    assert base_url_override("OPS_HCLOUD_API_URL") == "http://127.0.0.1:9/v1"
    monkeypatch.setenv("OPS_CLOUDFLARE_API_URL", "localhost:9")
    with pytest.raises(ClientConfigError, match=re.escape("OPS_CLOUDFLARE_API_URL: 'localhost:9' is not an http")):
        base_url_override(CloudflareClient.base_url_variable)
