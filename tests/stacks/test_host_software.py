"""The host role's files are checked by the software the hosts really run.

Caddy: Debian 12's package (the version the host role pins), `caddy validate` and `caddy adapt` on
the rendered Caddyfile with the host's environment; the sandbox's 2.11 wheel must accept the same
file. sshd: `sshd -t` on the rendered hardening. nftables: `nft -c` on the rendered ruleset.
Vector: no packaged binary exists on the registries this project reaches (Debian 12 has no
`vector`, and the PyPI and npm packages of that name are unrelated), so its config is checked for
the fields that matter and the real check (`vector validate`) is left to the pinned image on a host.
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from clients.caddy_admin import find_reverse_proxy
from ops.sandbox.components import venv_binary
from ops.tcp_ports import free_port
from stacks.compute import lb_health_check
from stacks.data import cloudflare_ranges
from stacks.host_role import (
    CADDY_APT_PIN,
    CADDY_LB_HEALTH_SNIPPET,
    CADDY_TLS_SNIPPET,
    CADDY_VERSION,
    CLOUDFLARE_PULL_CA,
    LB_HEALTH_HOST,
    HostRoleArgs,
    caddy_environment,
    lb_health_site,
    nftables_conf,
    origin_tls_snippet,
    render_user_data,
    vector_config,
)

pytestmark = pytest.mark.stacks

DEBIAN_CADDY = Path("/usr/bin/caddy")
ARGS = HostRoleArgs(
    hostname="autoenroll-production-app-1", environment="production", role="primary",
    site_address="app.example.ie", extra_site_addresses=("api.example.ie",),
    app_image="ghcr.io/komplyone/autoenroll-app", app_version="1.2.3", admin_cidrs=("198.51.100.0/28",),
    cloudflare_ranges=cloudflare_ranges(), ssh_public_keys=("ssh-ed25519 AAAAC3Nza test",),
    logs_ingest_host="s123.eu-nbg-2.betterstackdata.com", private_network="10.20.0.0/16",
)


def _files(user_data: str) -> dict[str, str]:
    doc: dict[str, Any] = yaml.safe_load(user_data.split("\n", 1)[1])
    return {str(f["path"]): str(f["content"]) for f in doc["write_files"]}


@pytest.fixture(scope="module")
def host_files() -> dict[str, str]:
    return _files(render_user_data(ARGS))


@pytest.fixture(scope="module")
def origin_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stand-in for the Origin CA certificate and key the deploy writes (Caddy loads them to validate)."""
    folder = tmp_path_factory.mktemp("origin")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=app.example.ie", "-keyout", str(folder / "key.pem"),
                    "-out", str(folder / "cert.pem")], check=True, capture_output=True)
    return folder


def _caddy(binary: str, command: str, caddyfile: Path, env: dict[str, str],
           home: Path) -> subprocess.CompletedProcess[str]:
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"), **env}
    return subprocess.run([binary, command, "--config", str(caddyfile), "--adapter", "caddyfile"],
                          capture_output=True, text=True, env=full, check=False, timeout=60)


def _adapted_host_config(host_files: dict[str, str], origin_cert: Path, tmp_path: Path) -> dict[str, Any]:
    """The host's Caddyfile as Debian's Caddy adapts it to JSON (what its admin API then serves)."""
    caddyfile, env = _host_caddy_setup(host_files, origin_cert, tmp_path)
    out = _caddy(str(DEBIAN_CADDY), "adapt", caddyfile, env, tmp_path)
    assert out.returncode == 0, out.stderr[-600:]
    config: dict[str, Any] = json.loads(out.stdout)
    return config


def run_host_caddy(caddyfile: Path, env: dict[str, str], folder: Path, http_port: int) -> subprocess.Popen[bytes]:
    """Debian's Caddy running the host's Caddyfile, once it answers on `http_port` (its log in
    folder/caddy.log, shown if it does not start)."""
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config"), **env}
    with (folder / "caddy.log").open("w") as log:
        proc = subprocess.Popen([str(DEBIAN_CADDY), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                                env=full, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{http_port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError(f"Caddy did not start: {(folder / 'caddy.log').read_text()[-800:]}") from None
            time.sleep(0.2)


def _host_caddy_setup(host_files: dict[str, str], origin_cert: Path, tmp_path: Path,
                      lb_health: str | None = None) -> tuple[Path, dict[str, str]]:
    """The host's Caddyfile and environment with its files moved under tmp_path; `lb_health`
    replaces the health check's site (the same shape, other slots and network) for a running test."""
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(host_files["/etc/caddy/Caddyfile"])
    snippet = tmp_path / "origin-tls.caddy"
    assert host_files[CADDY_TLS_SNIPPET] == origin_tls_snippet()
    pull_ca = tmp_path / "pull-ca.pem"
    pull_ca.write_text(host_files[CLOUDFLARE_PULL_CA])
    snippet.write_text(origin_tls_snippet(str(origin_cert), str(pull_ca)))
    env = caddy_environment(host_files["/etc/systemd/system/caddy.service.d/autoenroll.conf"])
    assert env["CADDY_LB_HEALTH"] == CADDY_LB_HEALTH_SNIPPET
    health = tmp_path / "lb-health.caddy"
    health.write_text(host_files[CADDY_LB_HEALTH_SNIPPET] if lb_health is None else lb_health)
    return caddyfile, {**env, "CADDY_TLS": str(snippet), "CADDY_LB_HEALTH": str(health)}


def test_the_pinned_caddy_is_the_one_installed_here() -> None:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "caddy"], capture_output=True, text=True, check=False)
    assert out.returncode == 0, "Debian's caddy is not installed: bin/setup installs it"
    assert out.stdout.startswith(CADDY_VERSION + "-"), f"host role pins caddy {CADDY_VERSION}, here: {out.stdout}"
    version = subprocess.run([str(DEBIAN_CADDY), "version"], capture_output=True, text=True, check=True).stdout
    assert version.split()[0].lstrip("v") == CADDY_VERSION


def test_host_caddyfile_validates_under_the_hosts_caddy(host_files: dict[str, str], origin_cert: Path,
                                                        tmp_path: Path) -> None:
    caddyfile, env = _host_caddy_setup(host_files, origin_cert, tmp_path)
    for binary in (str(DEBIAN_CADDY), venv_binary("caddy", "caddyserver")):
        out = _caddy(binary, "validate", caddyfile, env, tmp_path)
        assert out.returncode == 0, f"{binary}: {out.stderr[-600:]}"


def test_host_caddy_serves_app_and_api_with_the_origin_certificate(host_files: dict[str, str], origin_cert: Path,
                                                                   tmp_path: Path) -> None:
    config = _adapted_host_config(host_files, origin_cert, tmp_path)
    servers = config["apps"]["http"]["servers"]
    hosts = {h for server in servers.values() for route in server.get("routes", [])
             for match in route.get("match", []) for h in match.get("host", [])}
    assert {"app.example.ie", "api.example.ie"} <= hosts
    loaded = config["apps"]["tls"]["certificates"]["load_files"]
    assert loaded == [{"certificate": str(origin_cert / "cert.pem"), "key": str(origin_cert / "key.pem"),
                       "tags": ["cert0"]}]
    # Only a client that shows a certificate from Cloudflare's origin-pull CA gets through (no bypass
    # through the load balancer's public address).
    policies_tls = [p for server in servers.values() for p in server.get("tls_connection_policies", [])]
    assert any(p.get("client_authentication", {}).get("mode") == "require_and_verify" for p in policies_tls)
    # No ACME issuer for the sites: behind Cloudflare's HTTPS redirect an HTTP-01 challenge never completes.
    policies = config["apps"]["tls"].get("automation", {}).get("policies", [])
    sites = {"app.example.ie", "api.example.ie"}
    assert not any(p.get("issuers") for p in policies if sites & set(p.get("subjects", [])))


def test_sandbox_caddy_still_accepts_the_same_file(host_files: dict[str, str], tmp_path: Path) -> None:
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text(host_files["/etc/caddy/Caddyfile"])
    env = {"SITE_ADDRESS": "http://127.0.0.1:8443", "APP_UPSTREAMS": "127.0.0.1:8000", "CADDY_ADMIN": "127.0.0.1:2999"}
    for binary in (venv_binary("caddy", "caddyserver"), str(DEBIAN_CADDY)):
        out = _caddy(binary, "validate", caddyfile, env, tmp_path)
        assert out.returncode == 0, f"{binary}: {out.stderr[-600:]}"


def test_caddy_validate_catches_a_global_option_2_6_2_lacks(tmp_path: Path) -> None:
    caddyfile = tmp_path / "Caddyfile"
    caddyfile.write_text("{\n\tpersist_config off\n}\n:8080 {\n\trespond ok\n}\n")
    out = _caddy(str(DEBIAN_CADDY), "validate", caddyfile, {}, tmp_path)
    assert out.returncode != 0 and "persist_config" in out.stderr


def test_sshd_accepts_the_rendered_hardening(host_files: dict[str, str], tmp_path: Path) -> None:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    # sshd -t insists on its privilege separation directory, which ssh.service makes at boot.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    config = tmp_path / "sshd_config"
    hardening = host_files["/etc/ssh/sshd_config.d/10-autoenroll-hardening.conf"]
    config.write_text(f"HostKey {key}\n{hardening}")
    out = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    config.write_text(f"HostKey {key}\n{hardening}MaxAuthTries three\n")
    broken = subprocess.run([sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False)
    assert broken.returncode != 0  # the check can fail


def test_nft_accepts_the_rendered_ruleset(host_files: dict[str, str], tmp_path: Path) -> None:
    ruleset = tmp_path / "nftables.conf"
    ruleset.write_text(host_files["/etc/nftables.conf"])
    out = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    ruleset.write_text(host_files["/etc/nftables.conf"].replace("policy drop", "policy dropp"))
    assert subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, check=False).returncode != 0


def test_host_firewall_admits_the_load_balancers_private_network() -> None:
    conf = nftables_conf(("198.51.100.0/28",), cloudflare_ranges(), "10.20.0.0/16")
    assert "ip saddr 10.20.0.0/16 tcp dport { 80, 443 } accept" in conf
    assert "10.20.0.0/16" not in nftables_conf(("198.51.100.0/28",), cloudflare_ranges())


def test_vector_ships_to_the_sources_ingest_host_and_keeps_its_checkpoints(host_files: dict[str, str]) -> None:
    config = yaml.safe_load(host_files["/etc/vector/vector.yaml"])
    assert config["sinks"]["betterstack"]["uri"] == "https://s123.eu-nbg-2.betterstackdata.com"
    assert "in.logs.betterstack.com" not in host_files["/etc/vector/vector.yaml"]
    assert config["data_dir"] == "/var/lib/vector"
    unit = host_files["/etc/systemd/system/vector.service"]
    assert "-v /var/lib/vector:/var/lib/vector" in unit
    assert "validate --no-environment" in unit  # the pinned image checks the config before it runs
    with pytest.raises(ValueError, match="logs ingest host"):
        vector_config("")


def test_sudoers_grants_no_systemctl() -> None:
    doc = yaml.safe_load(render_user_data(ARGS).split("\n", 1)[1])
    sudo = doc["users"][0]["sudo"]
    assert "systemctl" not in sudo
    # Exactly these commands with exactly these arguments: the deploy script only for its root
    # verbs (a bare path in sudoers would allow it with any arguments, every verb as root).
    assert sudo.removeprefix("ALL=(root) NOPASSWD: ").split(", ") == [
        "/usr/local/bin/autoenroll-deploy tls", "/usr/local/bin/autoenroll-deploy vector-env",
        "/usr/local/bin/autoenroll-deploy reboot",  # `ops hosts reboot`; the verb reboots only when flagged
        "/usr/sbin/sshd -T", "/usr/sbin/nft -j list ruleset"]


def test_caddy_keeps_retrying_until_its_certificate_is_written(host_files: dict[str, str]) -> None:
    drop_in = host_files["/etc/systemd/system/caddy.service.d/autoenroll.conf"]
    unit, _, service = drop_in.partition("[Service]")
    assert "StartLimitIntervalSec=0" in unit  # systemd would otherwise give up after 5 starts in 10 s
    assert "Restart=always" in service.splitlines()


def test_caddy_is_installed_at_the_pinned_version(host_files: dict[str, str]) -> None:
    doc = yaml.safe_load(render_user_data(ARGS).split("\n", 1)[1])
    assert "caddy" in doc["packages"]
    assert host_files["/etc/apt/preferences.d/caddy"] == CADDY_APT_PIN
    assert f"Pin: version {CADDY_VERSION}*" in CADDY_APT_PIN


def test_cloudflares_origin_pull_ca_is_the_real_one_and_not_about_to_expire(host_files: dict[str, str],
                                                                            tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text(host_files[CLOUDFLARE_PULL_CA])
    out = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-subject", "-checkend", str(180 * 86400)],
                         capture_output=True, text=True, check=False)
    assert "CN = origin-pull.cloudflare.net" in out.stdout
    if out.returncode != 0:
        pytest.fail("Cloudflare's origin-pull CA expires within 180 days: fetch its successor from Cloudflare's docs")


# --- The load balancer's health check against the host's Caddy (stacks/compute.py lb_health_check) ---


def test_the_admin_api_still_moves_the_app_sites_upstreams(host_files: dict[str, str], origin_cert: Path,
                                                           tmp_path: Path) -> None:
    # `ops deploy` patches the FIRST reverse_proxy handler of Caddy's config: with the health check's
    # site added on port 80 that must still be the app site's (on 443), or a deploy would move the
    # health check and leave the visitors on the stopped slot.
    config = _adapted_host_config(host_files, origin_cert, tmp_path)
    path = find_reverse_proxy(config, [])
    assert path is not None and path[:4] == ["apps", "http", "servers", "srv0"]
    servers = config["apps"]["http"]["servers"]
    assert servers["srv0"]["listen"] == [":443"]
    health_server = next(s for s in servers.values() if s["listen"] == [":80"])
    assert health_server["routes"][0]["match"] == [{"host": [LB_HEALTH_HOST]}]


_RESERVED: dict[int, socket.socket] = {}


def reserved_port() -> int:
    """A slot's port held bound but not listening (a connection is refused, as with nothing there) until
    a _StandInApp serves on it. A port only probed free could be taken meanwhile as the source port of
    Caddy's own connections to the other slot: a run saw EADDRINUSE."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    _RESERVED[port] = sock
    return port


def release_ports(ports: Iterable[int]) -> None:
    for port in ports:
        held = _RESERVED.pop(port, None)
        if held is not None:
            held.close()


class _StandInApp:
    """An HTTP server on one slot's port answering /ready as told: what the health check sees of
    the app through Caddy (the app itself needs PostgreSQL, Redis and storage; Caddy's routing is
    what is under test here)."""

    def __init__(self, port: int) -> None:

        app = self
        self.status = 200

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                codes = {"/ready": app.status, "/health": 200}
                self.send_response(codes.get(self.path, 404))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.port = port
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler, bind_and_activate=False)
        held = _RESERVED.pop(port, None)
        if held is None:
            self.server.server_bind()
        else:
            self.server.socket.close()
            self.server.socket = held
        self.reserved = held is not None
        self.server.server_activate()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        if self.reserved:  # hold the port again at once, bound and not listening (reserved_port)
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            _RESERVED[self.port] = sock


def _probe(http_port: int, check: dict[str, Any]) -> int:
    """Hetzner's check as the plan sets it: GET `path` with Host `domain`; healthy only on its codes."""

    http = check["http"]
    response = httpx.get(f"http://127.0.0.1:{http_port}{http['path']}", headers={"Host": http["domain"]},
                         timeout=check["timeout"], follow_redirects=False)
    return response.status_code


def _settles(http_port: int, check: dict[str, Any], healthy: bool) -> bool:
    """Whether the check reaches `healthy` within a few of Caddy's 2 s slot checks (bounded)."""

    for _ in range(50):
        if _healthy(_probe(http_port, check), check) == healthy:
            return True
        time.sleep(0.2)
    return False


def _healthy(status: int, check: dict[str, Any]) -> bool:

    # Hetzner's status_codes take `?` as one digit, which is fnmatch's `?` too.
    return any(fnmatch.fnmatch(str(status), code) for code in check["http"]["status_codes"])


@pytest.fixture
def running_host_caddy(host_files: dict[str, str], origin_cert: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Debian's Caddy running the host's Caddyfile and health site, on free ports (the global
    http_port/https_port options through CADDY_EXTRA_GLOBAL_OPTIONS: the file's shape unchanged),
    the slots on reserved ports, the private network standing for loopback."""



    slots = (reserved_port(), reserved_port())
    http_port, https_port, admin = free_port(), free_port(), free_port()
    # The real site, for this machine's addresses: same text but the slots and network.
    real = host_files[CADDY_LB_HEALTH_SNIPPET]
    assert real == lb_health_site("10.20.0.0/16")
    site = lb_health_site("127.0.0.0/8", tuple(f"127.0.0.1:{p}" for p in slots))
    caddyfile, env = _host_caddy_setup(host_files, origin_cert, tmp_path, lb_health=site)
    env = {**env, "CADDY_ADMIN": f"127.0.0.1:{admin}",
           "CADDY_EXTRA_GLOBAL_OPTIONS": f"http_port {http_port}\n\thttps_port {https_port}"}
    proc = run_host_caddy(caddyfile, env, tmp_path, http_port)
    try:
        yield http_port, slots
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        release_ports(slots)


def test_the_health_check_fails_when_the_app_is_down_and_passes_when_it_runs(running_host_caddy) -> None:  # type: ignore[no-untyped-def]
    http_port, (blue, green) = running_host_caddy
    check = lb_health_check()
    # Nothing runs on either slot: Caddy answers 502, the host is out. (The old check, any 3xx on
    # port 80, took Caddy's redirect as healthy right here.)
    assert not _healthy(_probe(http_port, check), check)
    app = _StandInApp(blue)
    try:
        assert _settles(http_port, check, healthy=True)
        app.status = 503  # a dependency down: /ready says so, the host leaves rotation
        assert not _healthy(_probe(http_port, check), check)
        app.status = 200
        assert _healthy(_probe(http_port, check), check)
    finally:
        app.stop()
    assert _settles(http_port, check, healthy=False)  # the app stopped: out again
    # A deploy switched slots (the admin API moves only the app site's handler): still checked.
    switched = _StandInApp(green)
    try:
        assert _settles(http_port, check, healthy=True)
    finally:
        switched.stop()


def test_port_80_still_redirects_the_sites_and_hides_the_health_site_from_the_internet(
        host_files: dict[str, str], origin_cert: Path, tmp_path: Path) -> None:



    http_port, https_port, admin = free_port(), free_port(), free_port()
    # The real site (10.20.0.0/16): a request from loopback stands for Cloudflare's ranges on the
    # public address, the only other way to port 80.
    caddyfile, env = _host_caddy_setup(host_files, origin_cert, tmp_path)
    env = {**env, "CADDY_ADMIN": f"127.0.0.1:{admin}",
           "CADDY_EXTRA_GLOBAL_OPTIONS": f"http_port {http_port}\n\thttps_port {https_port}"}
    full = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), **env}
    proc = subprocess.Popen([str(DEBIAN_CADDY), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                            env=full, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                redirect = httpx.get(f"http://127.0.0.1:{http_port}/x", headers={"Host": "app.example.ie"}, timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "Caddy did not start"
                time.sleep(0.2)
        assert redirect.status_code == 308 and redirect.headers["location"].startswith("https://app.example.ie")
        check = lb_health_check()
        assert _probe(http_port, check) == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
