"""A stand-in for Hetzner's load balancer: Debian's HAProxy, configured from the Hetzner fake's
load-balancer description (`GET /load_balancers/{id}`, the shape `pulumi up` leaves: TCP services,
server targets, each service's health check), for tests that want a real proxy in front of hosts.

Why HAProxy: Hetzner's TCP services pass TLS through to the targets, which Debian's Caddy cannot
(that needs its layer4 plugin); HAProxy in `mode tcp` does, and its `http-check` does what the
health check does (a GET with a Host header on another port, healthy on listed status codes).
Hetzner's `retries` is HAProxy's `fall`; Hetzner does not document how many passing checks bring a
target back, so `rise 1` (one).

The hosts here are addressed as this machine reaches them (`Backend`): in the lab each has its own
ports where a server has 443 and 80 (its Caddy's http_port/https_port).
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HAPROXY = "/usr/sbin/haproxy"


@dataclass(frozen=True)
class Backend:
    name: str
    host: str
    ports: dict[int, int]  # a server's port (443, 80) -> where this machine reaches it


def _status_regex(codes: list[str]) -> str:
    """Hetzner's status codes ("200", "2??") as one anchored regex for `http-check expect rstatus`."""
    return "^(" + "|".join(re.escape(c).replace(r"\?", "?").replace("?", "[0-9]") for c in codes) + ")$"


def haproxy_config(description: dict[str, Any], backends: dict[int, Backend], listen: dict[int, int],
                   stats_socket: Path, bind: str = "127.0.0.1") -> str:
    """haproxy.cfg for one load balancer: per service a frontend on `bind`:`listen[listen_port]` and a
    backend over the targets (`backends` by server id), checked as the service's health check says."""
    # The log (on stdout, kept by running_haproxy in its folder's haproxy.log): a line per connection
    # (tcplog: the server chosen, the timers, the termination state; "--" is a normal end) and one per
    # server state change, so a drill that fails a request can show what the load balancer did.
    lines = ["global", f"    stats socket {stats_socket} mode 600 level admin", "    log stdout format raw local0", "",
             "defaults", "    mode tcp", "    log global", "    option tcplog", "    timeout connect 5s",
             "    timeout client 60s", "    timeout server 60s", ""]
    for service in description["services"]:
        port = service["listen_port"]
        check = service["health_check"]
        name = f"service_{port}"
        lines += [f"frontend {name}", f"    bind {bind}:{listen[port]}", f"    default_backend {name}", "",
                  f"backend {name}", f"    balance {description['algorithm']['type'].replace('_', '')}",
                  f"    timeout check {check['timeout']}s"]
        if check["protocol"] == "http":
            http = check["http"]
            host = f" hdr Host {http['domain']}" if http.get("domain") else ""
            lines += ["    option httpchk", f"    http-check send meth GET uri {http['path']} ver HTTP/1.1{host}",
                      f"    http-check expect rstatus {_status_regex(list(http['status_codes']))}"]
        for target in description["targets"]:
            backend = backends[target["server"]["id"]]
            lines.append(f"    server {backend.name} {backend.host}:{backend.ports[service['destination_port']]} "
                         f"check port {backend.ports[check['port']]} inter {check['interval']}s "
                         f"fall {check['retries']} rise 1")
        lines.append("")
    return "\n".join(lines)


def server_states(stats_socket: Path) -> dict[str, str]:
    """Each server's state as HAProxy sees it now (UP, DOWN, ...), from its runtime API."""
    return {name: fields["status"].split()[0] for name, fields in server_stats(stats_socket).items()}


def fully_healthy(stats_socket: Path) -> bool:
    """Every server UP with its health counter at the top (rise + fall - 1): only then does a
    failing target take `fall` checks to leave, as a target long healthy on Hetzner takes `retries`.
    (HAProxy starts a server at the bottom of UP: one failed check would take it out.)"""
    stats = server_stats(stats_socket)
    return bool(stats) and all(
        f["status"] == "UP" and int(f["check_health"]) == int(f["check_rise"]) + int(f["check_fall"]) - 1
        for f in stats.values())


def runtime(stats_socket: Path, command: str) -> str:
    """One command to HAProxy's runtime API; its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5)
        conn.connect(str(stats_socket))
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks).decode()


def set_in_rotation(stats_socket: Path, server: str, present: bool) -> None:
    """A target added to (`present`) or removed from the load balancer: the server back from, or into,
    maintenance in every service's backend. In maintenance HAProxy sends it no new connection and lets
    the open ones finish, as a removed Hetzner target; back, it serves once its check passes."""
    for backend in sorted({f["pxname"] for f in server_stats(stats_socket).values()}):
        answer = runtime(stats_socket, f"set server {backend}/{server} state {'ready' if present else 'maint'}")
        if answer.strip():
            raise AssertionError(f"haproxy: set server {backend}/{server}: {answer.strip()}")


def server_stats(stats_socket: Path) -> dict[str, dict[str, str]]:
    """`show stat` of HAProxy's runtime API, per server (frontends and backends left out)."""
    rows = runtime(stats_socket, "show stat").splitlines()
    header = rows[0].lstrip("# ").split(",")
    out = {}
    for row in rows[1:]:
        fields = dict(zip(header, row.split(","), strict=False))
        if fields.get("svname") not in (None, "", "FRONTEND", "BACKEND"):
            out[fields["svname"]] = fields
    return out


@contextlib.contextmanager
def running_haproxy(config: str, folder: Path) -> Iterator[Path]:
    """HAProxy in the foreground on `config` (checked first with `haproxy -c`); yields its stats socket.
    What it logs goes to `folder`/haproxy.log (see `unusual_log_lines`)."""
    cfg = folder / "haproxy.cfg"
    cfg.write_text(config)
    checked = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
    if checked.returncode != 0:
        raise AssertionError(f"haproxy -c refused the config: {checked.stdout[-600:]}{checked.stderr[-600:]}")
    sock = Path(re.search(r"stats socket (\S+)", config).group(1))  # type: ignore[union-attr]
    # stdout only: with -db HAProxy also writes each warning and alert to stderr, the same lines again.
    log = (folder / "haproxy.log").open("ab")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=log, stderr=subprocess.DEVNULL)
    log.close()  # the child holds its own copy
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("haproxy did not start")
            time.sleep(0.05)
        yield sock
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def unusual_log_lines(folder: Path, limit: int = 40) -> list[str]:
    """The last `limit` lines of running_haproxy's log in `folder` other than a connection that ended
    normally (tcplog's termination state "--", or "CD": the client closed after its answer, as the
    lab's edge does): connections the server side cut or refused, servers going up or down."""
    log = folder / "haproxy.log"
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if _TCPLOG_END.search(line) is None][-limit:]


# tcplog: ... [accept date] frontend backend/server Tw/Tc/Tt bytes STATE actconn/... (the state's two letters)
_TCPLOG_END = re.compile(r"\] \S+ \S+ \S+ \d+ (--|CD) ")
