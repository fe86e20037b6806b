"""On the lab: what the edge tells the app, and how the app reaches Redis (issue 25, items 6 and 11).

- The edge sets CF-Connecting-IP to the visitor's address, as Cloudflare does; the host's Caddy passes it
  on and the app believes it from its proxy only, so two visitors get two rate-limit buckets (before,
  every visitor shared the Docker bridge gateway's).
- The app reaches Redis over TLS only (rediss://, the lab's CA as REDIS_CA_CERT): the lab's Redis
  answers nothing in clear, as a Redis Cloud database with TLS on.
Run under the test-host lock: `flock /tmp/autoenroll-testhosts.lock pytest tests/drills/test_lab_edge.py`."""

from __future__ import annotations

import json
import socket
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.drills.lab import Lab
from tests.drills.test_lab import ops

pytestmark = pytest.mark.drill


@pytest.fixture(scope="module")
def deployed(lab: Lab) -> Lab:
    done = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert done.returncode == 0, done.stderr
    return lab


def _visitor(lab: Lab, address: str) -> httpx.Client:
    """A browser on its own address (a loopback one: the edge sees it as the socket's peer)."""
    return httpx.Client(base_url=lab.edge_url, timeout=30,
                        transport=httpx.HTTPTransport(local_address=address, verify=lab.edge_tls()))


def _login_statuses(client: httpx.Client, email: str, count: int) -> list[int]:
    # Each visitor also sends a CF-Connecting-IP of its own choosing: the edge overwrites it.
    return [client.post("/api/auth/login", json={"email": email, "password": "wrong password!!"},
                        headers={"CF-Connecting-IP": f"203.0.113.{n}"}).status_code for n in range(count)]


def test_lab_two_visitors_get_separate_rate_limit_buckets(deployed: Lab) -> None:
    from autoenroll.config import Settings

    app_env = json.loads(deployed.outputs_file.read_text())["app_env"]
    limit = int(app_env.get("LOGIN_RATE_LIMIT_PER_MINUTE", Settings.login_rate_limit_per_minute))
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.ie"
    _wait_until_ready(deployed)
    with _visitor(deployed, "127.0.0.2") as a, _visitor(deployed, "127.0.0.3") as b:
        statuses = _login_statuses(a, email, limit + 1)
        assert statuses[-1] == 429 and 429 not in statuses[:-1], statuses
        # The app counted A under A's address (not the proxy's, nor the one A made up).
        buckets = sorted(k.decode() for k in _redis(deployed).scan_iter("rate:*:/api/auth/login"))
        assert "rate:127.0.0.2:/api/auth/login" in buckets, (buckets, _trusted_proxies(deployed))
        assert _login_statuses(b, email, 1) != [429]


def _wait_until_ready(lab: Lab, attempts: int = 60) -> None:
    """The app answers /ready through the edge (its first Redis connections, each a TLS handshake with
    the lab's forwarder on a busy machine, can miss the app's 1 s Redis timeout and answer 503: a
    request the rate limiter never counted)."""
    import time

    for _ in range(attempts):
        if lab.edge_get("/ready").status_code == 200:
            return
        time.sleep(1)
    pytest.fail("the app did not answer /ready through the edge")


def _redis(lab: Lab) -> Any:
    import redis

    from ops.sandbox.state import load_state

    return redis.Redis.from_url(load_state(lab.root).redis_url())


def _trusted_proxies(lab: Lab) -> list[str]:
    """What the serving host's app containers were told to trust (for a failure's message)."""
    host = lab.hosts["primary"]
    return [line for name in lab.containers("primary")
            for line in host.docker("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}",
                                    name).stdout.splitlines() if line.startswith("TRUSTED_PROXIES=")]


def test_lab_app_reaches_redis_over_tls_only(deployed: Lab) -> None:
    outputs = json.loads(deployed.outputs_file.read_text())
    url = urlsplit(outputs["app_env"]["REDIS_URL"])
    assert url.scheme == "rediss" and outputs["app_env"]["REDIS_CA_CERT"]
    # The app is ready (its /ready pings Redis) through the TLS-only forwarder.
    assert deployed.edge_get("/ready").status_code == 200
    assert url.hostname and url.port
    # A client in clear gets no Redis answer: the forwarder wants a TLS handshake first.
    with socket.create_connection((url.hostname, url.port), timeout=10) as plain:
        plain.sendall(b"PING\r\n")
        plain.settimeout(10)
        try:
            answer = plain.recv(64)
        except OSError:
            answer = b""
    assert not answer.startswith(b"+PONG")
    # And with TLS (the lab's CA trusted, as the app does with REDIS_CA_CERT) the same port answers.
    import base64

    context = ssl.create_default_context(cadata=base64.b64decode(outputs["app_env"]["REDIS_CA_CERT"]).decode())
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=url.hostname) as tls:
        tls.sendall(f"AUTH {url.password}\r\nPING\r\n".encode())
        received = b""
        while b"PONG" not in received:
            chunk = tls.recv(64)
            if not chunk:
                break
            received += chunk
    assert b"+PONG" in received
