"""Three hosts' Caddy (Debian's 2.6.2, the host's Caddyfile and health-check site) behind HAProxy
configured from the Hetzner fake's load-balancer description (tests/haproxy_lb.py): a host whose
app stops leaves the rotation, and comes back when it runs again; the time each takes is measured
and printed (never asserted: performance belongs to benchmarks/), and so are the requests through
the load balancer (TLS passed through to the hosts' Caddy, with the client certificate it requires,
from a test origin-pull CA) that failed meanwhile; once the host is out, none fails.

Skipped by a narrower run (about a minute, with the stack's real 10 s interval and 3 retries); the whole
suite (`bin/test`, tests/parts.py) runs it; alone:
`AUTOENROLL_LB_LAB=1 .venv/bin/pytest -s tests/stacks/test_load_balancer_haproxy.py`.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ops.tcp_ports import free_port
from stacks.compute import lb_health_check
from stacks.host_role import lb_health_site
from tests.haproxy_lb import (
    HAPROXY,
    Backend,
    fully_healthy,
    haproxy_config,
    running_haproxy,
    server_states,
    unusual_log_lines,
)
from tests.hcloud_fake import FakeHetzner
from tests.stacks.test_host_software import (  # noqa: F401 - fixtures used here
    _host_caddy_setup,
    _StandInApp,
    host_files,
    origin_cert,
    release_ports,
    reserved_port,
    run_host_caddy,
)

pytestmark = [
    pytest.mark.stacks,
    pytest.mark.skipif(os.environ.get("AUTOENROLL_LB_LAB") != "1",
                       reason="opt-in (about a minute): AUTOENROLL_LB_LAB=1 runs it"),
    pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed (apt-get install haproxy)"),
]

NAMES = ("app-1", "app-2", "app-3")


@dataclass(frozen=True)
class PullCa:
    """A stand-in for Cloudflare's origin-pull CA and the client certificate Cloudflare shows."""

    ca: Path
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def pull_ca(tmp_path_factory: pytest.TempPathFactory) -> PullCa:
    folder = tmp_path_factory.mktemp("pull")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=test origin pull CA", "-keyout", str(folder / "ca.key"), "-out", str(folder / "ca.pem"))
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=test edge", "-keyout", str(folder / "client.key"), "-out", str(folder / "client.csr"))
    openssl("x509", "-req", "-in", str(folder / "client.csr"), "-CA", str(folder / "ca.pem"), "-CAkey",
            str(folder / "ca.key"), "-CAcreateserial", "-days", "2", "-out", str(folder / "client.pem"))
    return PullCa(folder / "ca.pem", folder / "client.pem", folder / "client.key")


def _through(port: int, context: ssl.SSLContext) -> int | str:
    """One request to the app site through the load balancer, as the edge sends it: its status, or
    what failed."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="app.example.ie") as conn:
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: app.example.ie\r\nConnection: close\r\n\r\n")
            head = conn.recv(64).decode(errors="replace")
        return int(head.split()[1])
    except (OSError, IndexError, ValueError) as exc:
        return exc.__class__.__name__


class Host:
    """One host's Caddy on its own ports (80 and 443 as http_port/https_port), its app on slot one."""

    def __init__(self, name: str, files: dict[str, str], cert: Path, folder: Path, pull: PullCa) -> None:
        folder.mkdir()
        self.name = name
        self.slots = (reserved_port(), reserved_port())
        self.http, self.https, admin = free_port(), free_port(), free_port()
        site = lb_health_site("127.0.0.0/8", tuple(f"127.0.0.1:{p}" for p in self.slots))
        caddyfile, env = _host_caddy_setup(files, cert, folder, lb_health=site)
        (folder / "pull-ca.pem").write_text(pull.ca.read_text())  # the test edge's CA in Cloudflare's place
        env = {**env, "CADDY_ADMIN": f"127.0.0.1:{admin}", "APP_UPSTREAMS": f"127.0.0.1:{self.slots[0]}",
               "CADDY_EXTRA_GLOBAL_OPTIONS": f"http_port {self.http}\n\thttps_port {self.https}"}
        self.caddy = run_host_caddy(caddyfile, env, folder, self.http)
        self.app: _StandInApp | None = _StandInApp(self.slots[0])

    def stop_app(self) -> None:
        assert self.app is not None
        self.app.stop()
        self.app = None

    def start_app(self) -> None:
        self.app = _StandInApp(self.slots[0])

    def close(self) -> None:
        if self.app is not None:
            self.app.stop()
        self.caddy.terminate()
        self.caddy.wait(timeout=10)
        release_ports(self.slots)


@pytest.fixture
def hosts(host_files: dict[str, str], origin_cert: Path,  # noqa: F811 - the imported fixtures
          pull_ca: PullCa, tmp_path: Path) -> Iterator[dict[int, Host]]:
    started: dict[int, Host] = {}
    try:
        for index, name in enumerate(NAMES):
            started[31 + index] = Host(name, host_files, origin_cert, tmp_path / name, pull_ca)
        yield started
    finally:
        for host in started.values():
            host.close()


def _until(sock: Path, name: str, state: str, limit: float = 180.0) -> float:
    """Seconds until HAProxy reports `name` in `state` (the limit only keeps a broken run from hanging)."""
    started = time.monotonic()
    while (found := server_states(sock).get(name)) != state:
        assert time.monotonic() - started < limit, f"{name} still {found} after {limit:g}s"
        time.sleep(0.25)
    return time.monotonic() - started


def test_a_host_whose_app_stops_leaves_the_rotation_and_comes_back(hosts: dict[int, Host], pull_ca: PullCa,
                                                                   tmp_path: Path) -> None:
    fake = FakeHetzner()
    for server_id, host in hosts.items():
        fake.add_server(server_id, host.name)
    fake.add_load_balancer(5, "autoenroll-production-lb", [
        {"protocol": "tcp", "listen_port": 443, "destination_port": 443, "health_check": dict(lb_health_check())}],
        list(hosts))
    status, answer = fake.handle("GET", "/v1/load_balancers/5", f"Bearer {fake.token}", None)
    assert status == 200
    description = answer["load_balancer"]
    backends = {sid: Backend(h.name, "127.0.0.1", {443: h.https, 80: h.http}) for sid, h in hosts.items()}
    lb_port = free_port()
    config = haproxy_config(description, backends, {443: lb_port}, tmp_path / "haproxy.sock")
    check = description["services"][0]["health_check"]
    edge = ssl.create_default_context()
    edge.check_hostname, edge.verify_mode = False, ssl.CERT_NONE  # the origin's test certificate
    edge.load_cert_chain(pull_ca.cert, pull_ca.key)
    no_client_cert = ssl.create_default_context()
    no_client_cert.check_hostname, no_client_cert.verify_mode = False, ssl.CERT_NONE
    with running_haproxy(config, tmp_path) as sock:
        started = time.monotonic()
        while not fully_healthy(sock):  # every target healthy for a while, as in steady service
            assert time.monotonic() - started < 180, f"not all healthy: {server_states(sock)}"
            time.sleep(0.5)
        assert [_through(lb_port, edge) for _ in range(6)] == [200] * 6  # round robin over all three
        assert _through(lb_port, no_client_cert) != 200  # the origin's client-certificate rule holds
        down_host = hosts[32]
        down_host.stop_app()
        stopped = time.monotonic()
        answers: list[int | str] = []
        while server_states(sock).get(down_host.name) != "DOWN":
            assert time.monotonic() - stopped < 180, "app-2 never left the rotation"
            answers.append(_through(lb_port, edge))
            time.sleep(0.1)
        left = time.monotonic() - stopped
        assert {n: s for n, s in server_states(sock).items() if n != down_host.name} == {"app-1": "UP", "app-3": "UP"}
        after = [_through(lb_port, edge) for _ in range(30)]
        assert after == [200] * 30, after  # out of the rotation: nothing reaches it any more
        down_host.start_app()
        back = _until(sock, down_host.name, "UP")
    # The load balancer's log (what the drills quote when a request fails) has both changes, and none
    # of the connections that ended normally.
    unusual = unusual_log_lines(tmp_path, limit=1000)
    assert any(f"/{down_host.name} is DOWN" in line for line in unusual), unusual
    assert any(f"/{down_host.name} is UP" in line for line in unusual), unusual
    assert not [line for line in unusual if " -- " in line], unusual
    failed = [a for a in answers if a != 200]
    print(f"\nload balancer lab: {down_host.name} out of rotation {left:.1f}s after its app stopped "
          f"(check every {check['interval']}s, {check['retries']} retries, {check['timeout']}s timeout); "
          f"{len(failed)} of {len(answers)} requests meanwhile failed ({sorted(set(map(str, failed)))}); "
          f"back {back:.1f}s after it started again")
