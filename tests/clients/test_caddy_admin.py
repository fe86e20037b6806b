"""Caddy's admin API client (clients/caddy_admin.py) against a real Caddy (the sandbox's wheel):
upstreams read and replaced live; an unreachable admin API and a config without a reverse proxy
are `clients.errors`, which the sandbox's traffic switch shows as ExternalError
with the words ops has always used."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from clients.caddy_admin import CaddyAdminClient
from clients.errors import ClientConnectError, ClientResponseError
from ops.errors import ExternalError
from ops.paths import venv_binary
from ops.sandbox.traffic_caddy import CaddyUpstreams
from ops.tcp_ports import free_port

pytestmark = pytest.mark.integration


def _config(admin: int, listen: int, *, proxy: bool) -> dict[str, object]:
    handler = ({"handler": "reverse_proxy", "upstreams": [{"dial": "127.0.0.1:9"}]} if proxy
               else {"handler": "static_response", "body": "ok"})
    return {"admin": {"listen": f"127.0.0.1:{admin}"}, "apps": {"http": {"servers": {"s": {
        "listen": [f"127.0.0.1:{listen}"], "routes": [{"handle": [handler]}], "automatic_https": {"disable": True}}}}}}


def _caddy(tmp_path: Path, *, proxy: bool) -> Iterator[str]:
    admin = free_port()
    config = tmp_path / "caddy.json"
    config.write_text(json.dumps(_config(admin, free_port(), proxy=proxy)))
    log = (tmp_path / "caddy.log").open("ab")
    process = subprocess.Popen([venv_binary("caddy", "caddyserver"), "run", "--config", str(config)],
                               stdout=log, stderr=log, env={"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
                                                            "XDG_CONFIG_HOME": str(tmp_path)})
    url = f"http://127.0.0.1:{admin}"
    try:
        for _ in range(150):
            try:
                httpx.get(url + "/config/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


@pytest.fixture
def caddy(tmp_path: Path) -> Iterator[str]:
    yield from _caddy(tmp_path, proxy=True)


@pytest.fixture
def caddy_without_proxy(tmp_path: Path) -> Iterator[str]:
    yield from _caddy(tmp_path, proxy=False)


def test_upstreams_are_read_and_replaced_live(caddy: str) -> None:
    with CaddyAdminClient(caddy) as client:
        assert client.reverse_proxy_path() == "/config/apps/http/servers/s/routes/0/handle/0"
        assert client.upstreams() == ["127.0.0.1:9"]
        client.set_upstreams(["127.0.0.1:10", "127.0.0.1:11"])
        assert client.upstreams() == ["127.0.0.1:10", "127.0.0.1:11"]
    with CaddyUpstreams(caddy) as switch:  # the ops-side switch over the same client
        assert switch.current_upstreams() == ["127.0.0.1:10", "127.0.0.1:11"]


def test_a_config_without_a_reverse_proxy_is_named(caddy_without_proxy: str) -> None:
    with CaddyAdminClient(caddy_without_proxy) as client, \
            pytest.raises(ClientResponseError, match="no reverse_proxy handler"):
        client.upstreams()
    with CaddyUpstreams(caddy_without_proxy) as switch, \
            pytest.raises(ExternalError, match=r"^Caddy's config has no reverse_proxy handler$"):
        switch.current_upstreams()


def test_an_admin_api_nobody_listens_on_is_a_connect_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with CaddyAdminClient(url, timeout=2) as client, pytest.raises(ClientConnectError, match="unreachable: Connect"):
        client.upstreams()
    with CaddyUpstreams(url, timeout=2) as switch, \
            pytest.raises(ExternalError, match=r"^Caddy admin API unreachable: ConnectError$"):
        switch.set_upstreams(["127.0.0.1:1"])
