"""The deploy script's `tls` verb against Debian's Caddy 2.6.2 (what the hosts run) with the role's
Caddyfile and origin snippet: a fresh host's Caddy, which could not start without its certificate,
serves it once the verb has written it; a new certificate is served after a forced reload that keeps
the upstreams ops set; an unchanged one reloads nothing; bad input changes nothing."""

from __future__ import annotations

import grp
import os
import socket
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.tcp_ports import free_port
from stacks.host_role import DEPLOY_SCRIPT, origin_tls_snippet
from tests.infra.testhost import CADDYFILE, terminate
from tests.lab.tls import Pem, fingerprint, issue, make_ca

pytestmark = pytest.mark.stacks

DEBIAN_CADDY = Path("/usr/bin/caddy")
SITE = "app.autoenroll.test"


class Host:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.origin = folder / "origin"
        self.script = folder / "autoenroll-deploy"
        self.script.write_text(DEPLOY_SCRIPT)
        self.script.chmod(0o755)
        self.port, self.admin = free_port(), f"localhost:{free_port()}"
        self.group = grp.getgrgid(os.getgid()).gr_name
        origin_ca, pull_ca = make_ca(folder / "ca", "origin"), make_ca(folder / "ca", "pull")
        self.origin_ca = origin_ca
        self.certs = [issue(origin_ca, folder / "ca", f"site-{n}", (SITE,)) for n in ("a", "b")]
        self.client = issue(pull_ca, folder / "ca", "edge", client=True)
        (folder / "origin-tls.caddy").write_text(origin_tls_snippet(str(self.origin), str(pull_ca.cert)))
        self.caddy: subprocess.Popen[bytes] | None = None

    def tls(self, stdin: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.script), "tls"], input=stdin, capture_output=True, text=True, timeout=60,
                              env={"PATH": os.environ["PATH"], "ORIGIN_TLS_DIR": str(self.origin),
                                   "CADDY_GROUP": self.group, "CADDY_ADMIN": self.admin}, check=False)

    def start_caddy(self) -> subprocess.Popen[bytes]:
        home = str(self.folder / "home")
        env = {"PATH": os.environ["PATH"], "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home,
               "SITE_ADDRESS": f"https://{SITE}:{self.port}", "APP_UPSTREAMS": "127.0.0.1:9",
               "CADDY_ADMIN": self.admin, "CADDY_TLS": str(self.folder / "origin-tls.caddy")}
        log = open(self.folder / "caddy.log", "ab")  # noqa: SIM115 - the child keeps it
        self.caddy = subprocess.Popen([str(DEBIAN_CADDY), "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                                      stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.close()
        return self.caddy

    def served_fingerprint(self) -> str:
        context = ssl.create_default_context(cafile=str(self.origin_ca.cert))
        context.load_cert_chain(str(self.client.cert), str(self.client.key))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname=SITE) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return fingerprint(ssl.DER_cert_to_PEM_cert(der))

    def upstreams(self) -> list[str]:
        from ops.sandbox.traffic_caddy import CaddyUpstreams

        with CaddyUpstreams(f"http://{self.admin}") as caddy:
            return caddy.current_upstreams()


@pytest.fixture()
def host(tmp_path: Path) -> Iterator[Host]:
    if not DEBIAN_CADDY.exists():
        pytest.fail("Debian's caddy (2.6.2) is missing: run bin/setup")
    made = Host(tmp_path)
    yield made
    if made.caddy is not None:
        terminate(made.caddy)


def _served(pem: Pem) -> str:
    return fingerprint(pem.cert.read_text())


def test_a_fresh_hosts_caddy_serves_the_origin_certificate_once_tls_writes_it(host: Host) -> None:
    cert_a, cert_b = host.certs
    # Before the first deploy: Caddy cannot load its certificate and exits (its unit retries).
    assert host.start_caddy().wait(timeout=30) != 0
    assert "cert.pem" in (host.folder / "caddy.log").read_text()

    writing = subprocess.Popen([str(host.script), "tls"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={"PATH": os.environ["PATH"], "ORIGIN_TLS_DIR": str(host.origin),
                                    "CADDY_GROUP": host.group, "CADDY_ADMIN": host.admin})
    assert writing.stdin is not None
    writing.stdin.write(cert_a.bundle())
    writing.stdin.close()
    deadline = time.monotonic() + 20
    while not (host.origin / "key.pem").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    host.start_caddy()  # what systemd's Restart=always does a few seconds later
    writing.wait(timeout=60)
    assert writing.stdout is not None and writing.stderr is not None
    out, err = writing.stdout.read(), writing.stderr.read()
    assert writing.returncode == 0, err
    assert out.strip() == "written"
    assert host.served_fingerprint() == _served(cert_a)

    key, cert, folder = (host.origin / "key.pem").stat(), (host.origin / "cert.pem").stat(), host.origin.stat()
    gid = grp.getgrnam(host.group).gr_gid
    assert (stat.S_IMODE(key.st_mode), key.st_gid) == (0o640, gid)
    assert stat.S_IMODE(cert.st_mode) == 0o644
    assert (stat.S_IMODE(folder.st_mode), folder.st_gid) == (0o750, gid)
    assert sorted(p.name for p in host.origin.iterdir()) == ["cert.pem", "key.pem"]  # no temporary left

    # Every deploy sends it again: unchanged, nothing reloaded.
    again = host.tls(cert_a.bundle())
    assert again.returncode == 0 and again.stdout.strip() == "unchanged", again.stderr

    # A new certificate is served after the reload, and the upstreams ops set survive it (a reload
    # from the Caddyfile would have put back APP_UPSTREAMS and sent traffic to the wrong slot).
    from ops.sandbox.traffic_caddy import CaddyUpstreams

    with CaddyUpstreams(f"http://{host.admin}") as caddy:
        caddy.set_upstreams(["127.0.0.1:8001"])
    rotated = host.tls(cert_b.bundle())
    assert rotated.returncode == 0 and rotated.stdout.strip() == "written", rotated.stderr
    assert host.served_fingerprint() == _served(cert_b)
    assert host.upstreams() == ["127.0.0.1:8001"]


def test_tls_refuses_input_without_a_key_and_leaves_the_files(host: Host) -> None:
    cert_a, cert_b = host.certs
    host.origin.mkdir()
    (host.origin / "cert.pem").write_text(cert_a.cert.read_text())
    (host.origin / "key.pem").write_text(cert_a.key.read_text())
    for stdin, problem in ((cert_b.cert.read_text(), "no private key"), (cert_b.key.read_text(), "no certificate")):
        bad = host.tls(stdin)
        assert bad.returncode == 2 and problem in bad.stderr, bad.stderr
        assert "BEGIN" not in bad.stderr + bad.stdout  # the input is never echoed
    assert (host.origin / "cert.pem").read_text() == cert_a.cert.read_text()
    assert (host.origin / "key.pem").read_text() == cert_a.key.read_text()


def test_caddy_started_as_debians_unit_dials_the_slot_promote_recorded(host: Host) -> None:
    """Debian's unit (`caddy run --environ --config Caddyfile`, no --resume) with the role's drop-in:
    a restart forgets the upstream ops set through the admin API and takes APP_UPSTREAMS from the
    drop-in, where the file `promote` writes (EnvironmentFile=) overrides the default slot."""
    import sys

    import httpx

    from ops.errors import ExternalError
    from stacks.host_role import caddy_drop_in

    cert_a, _ = host.certs
    host.origin.mkdir()  # as `tls` leaves it: Caddy needs its certificate to start
    (host.origin / "cert.pem").write_text(cert_a.cert.read_text())
    (host.origin / "key.pem").write_text(cert_a.key.read_text())
    upstream = host.folder / "caddy-upstream.env"
    drop_in = host.folder / "autoenroll.conf"
    rendered = caddy_drop_in(f"https://{SITE}:{host.port}", tls_snippet=str(host.folder / "origin-tls.caddy"),
                             upstream_file=str(upstream))
    # This machine's other Caddys may hold the role's admin port: the same drop-in on a free one.
    drop_in.write_text(rendered.replace("CADDY_ADMIN=localhost:2019", f"CADDY_ADMIN={host.admin}"))
    home = str(host.folder / "home")

    def start_as_systemd_would() -> None:
        if host.caddy is not None:
            terminate(host.caddy)
        log = open(host.folder / "caddy.log", "ab")  # noqa: SIM115 - the child keeps it
        host.caddy = subprocess.Popen([sys.executable, "-m", "tests.lab.caddy_unit", str(drop_in), str(CADDYFILE)],
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                      env={"PATH": os.environ["PATH"], "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
                                           "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home})
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                host.upstreams()
                return
            except (httpx.HTTPError, ExternalError):  # not listening yet
                assert host.caddy.poll() is None, (host.folder / "caddy.log").read_text()[-800:]
                time.sleep(0.1)
        raise AssertionError("Caddy's admin API did not answer within 20 s")

    start_as_systemd_would()
    assert host.upstreams() == ["127.0.0.1:8000"]  # a fresh host: no slot recorded yet, the default
    upstream.write_text("APP_UPSTREAMS=127.0.0.1:8001\n")  # what promote writes for the second slot
    start_as_systemd_would()
    assert host.upstreams() == ["127.0.0.1:8001"]
    # The unit's `--environ` prints the environment Caddy got: the recorded slot, from the file.
    assert "APP_UPSTREAMS=127.0.0.1:8001" in (host.folder / "caddy.log").read_text()
