"""The lab: the production-shaped environment the cloud drills run on (DESIGN.md, "Environments").

Two lab hosts (tests/lab: network namespaces with sshd under the role's hardening, their own
Docker engine, Debian's Caddy), each given the host role's deploy script and /etc/autoenroll,
reached by `ops` over SSH exactly as a Hetzner server; the app image pulled from the local
registry; Cloudflare's API faked on loopback; the database a TLS-only PostgreSQL 17 of the lab's
own with Neon's roles, empty at bring-up (tests/drills/lab_database.py); Redis and SeaweedFS from
the drill sandbox, reached from the hosts' containers through the hosts' gateways. `ops` gets a stack
outputs file shaped like `pulumi stack output --json` (the offline plan's own outputs with
the addresses of this machine put in), so it takes the staging/production code path.

Only these lines differ from a real environment: the deploy script's folders (sshd's SetEnv,
as the lab host already does for DOCKER_HOST), its root verbs run without sudo (the lab's deploy
user has none, and the origin and Vector folders are its own) and their systemctl a recorder (the
lab has no systemd of its own), the API base URLs of the fakes (Cloudflare,
Neon, BetterStack with the stack's two monitors up, Stripe with its webhook endpoint), the hosts'
firewall admitting this runner on 80/443 as if it were Cloudflare's edge (the hosts' own nftables is
the role's, with the stack's admin_cidrs, which this runner is outside of), the Hetzner firewall (a
table of its own in each host, `tests.hcloud_fake.firewall_ruleset`, applied from the Hetzner fake's
firewall: the stack's rules, plus this runner on 80/443 as the edge and, as an admin workstation's
standing rule would, on 22: `LAB_SSH_RULE`, which tests/drills/test_lab_hostnet.py takes out to
show a CI path through `--open-ssh-from`), test CAs in place
of Cloudflare's Origin CA and origin-pull CA (the edge and the tests show the client certificate
the role's `client_auth` requires, as Cloudflare does) and of the public edge certificate's CA
(SSL_CERT_FILE), and the stack config file with its secrets set (OPS_STACK_CONFIG_DIR).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import select
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from autoenroll.contract import APP_DATABASE_ROLE, OWNER_DATABASE_ROLE, REPLICA_ENV_VAR
from ops.adapters.local.branch_store import LocalBranchStore
from ops.sandbox.state import SandboxState, load_state
from stacks.data import cloudflare_ranges
from stacks.host_role import DEPLOY_USER, nftables_conf, origin_tls_snippet
from tests.betterstack_fake import FakeBetterStack
from tests.cloudflare_fake import FakeCloudflare
from tests.drills.lab_database import LabDatabase, running_lab_database
from tests.hcloud_fake import FakeHetzner, firewall_ruleset
from tests.hcloud_fake import serving as serve_hetzner
from tests.infra.role_files import install_role_files
from tests.infra.testhost import SITE_NAME, LocalTestHost
from tests.lab.host import DOCKER_API_VERSION, LabHost, running_lab_host
from tests.lab.images import APP_REPOSITORY
from tests.lab.registry import READER, LocalRegistry
from tests.lab.tls import Pem, issue, make_ca
from tests.neon_pitr_fake import FakeNeonPitr
from tests.stripe_fake import FakeStripe

ROLES = ("primary", "standby")
# The app role's password, as the stack generates it (stacks/providers/neon.py); `ops db migrate` sets it
# when it makes the role. On Neon each branch has its own copy of the roles, so each stack's differs; in
# the lab the branches are databases of one server, whose roles they share, so both stacks carry one.
APP_PASSWORDS = dict.fromkeys(("main", "staging"), "lab-app-password")
NEON_PROJECT = "proj-lab"
ZONE = "zone-lab"
APP_RECORD, API_RECORD = "app.autoenroll.ie", "api.autoenroll.ie"
STRIPE_WEBHOOK_SECRET = "whsec_lab"  # the app's STRIPE_WEBHOOK_SECRET and the stack output's secret
BRANCH_OF_STACK = {"staging": "staging", "production": "main"}
LOGS_TOKEN = "betterstack-logs-lab-token"  # the stack output betterstack_logs_token (Vector's env file)
LAB_SSH_RULE = "lab: this runner's SSH (an admin workstation's standing rule)"


class Forwarder:
    """TCP from `listen` to `target`, both on this machine: how a lab host's containers reach the
    sandbox's loopback-only Redis and S3 (a Hetzner host reaches Redis and R2). The database needs
    none: the lab's own server speaks TLS itself on the gateway (lab_database.py).

    With `tls`, every connection is TLS from its first byte (Redis's rediss://, as a Redis Cloud
    database with TLS on answers nothing else); the sandbox's Redis stays plain."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], tls: ssl.SSLContext | None = None) -> None:
        self.target, self.tls = target, tls
        self.server = socket.create_server(listen)
        self.server.settimeout(0.5)
        self.port = int(self.server.getsockname()[1])
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            if self.tls is not None:  # a client that does not speak TLS fails the handshake here
                client.settimeout(10)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
            self._pipe(client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        # One thread per connection: an SSL socket must not be read and written from two threads.
        other = {client: upstream, upstream: client}
        with contextlib.suppress(OSError), client, upstream:
            while not self._stop.is_set():
                pending = isinstance(client, ssl.SSLSocket) and client.pending() > 0
                ready = [client] if pending else select.select(list(other), [], [], 0.5)[0]
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    other[sock].sendall(data)

    def close(self) -> None:
        self._stop.set()
        self.server.close()


HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"})


@contextlib.contextmanager
def serve_httpx_handler(handler: Any, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> Iterator[str]:
    """An httpx-style fake (request -> response) served on loopback, for `ops` run as a subprocess
    (over TLS with `tls`, then named by `host`, which the certificate must name)."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            # The caller's socket address rides in the request's extensions (an edge stamps it on).
            request = httpx.Request(self.command, f"http://fake{self.path}", headers=dict(self.headers),
                                    content=self.rfile.read(length) if length else b"",
                                    extensions={"client": self.client_address})
            response = handler(request)
            body = response.read()
            self.send_response(response.status_code)
            headers = {k.lower(): v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS}
            headers.setdefault("content-type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _reply

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def origin_client(ca_file: str, client: Pem) -> ssl.SSLContext:
    """TLS to a lab host's Caddy as Cloudflare's edge makes it: the origin CA trusted, the pull certificate shown."""
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(str(client.cert), str(client.key))
    return context


EDGE_NAME = "localhost"  # the public name the lab's edge answers under (its certificate names it)


@contextlib.contextmanager
def serve_edge(cloudflare: FakeCloudflare, zone: str, ca_files: dict[str, str], client: Pem,
               certificate: Pem) -> Iterator[str]:
    """Cloudflare's proxied edge, over HTTPS with `certificate` (Cloudflare's edge certificate; here a
    test CA's, trusted by `ops` through SSL_CERT_FILE): each request goes to the origin the app record
    names now (so a DNS switch moves traffic), over TLS to that host's Caddy under the site's name,
    and its answer comes back with the origin's headers (HSTS among them). As Cloudflare does, it sets
    CF-Connecting-IP to the visitor's address (its socket's: a test gives visitors their own loopback
    addresses), overwriting any the visitor sent."""

    def forward(request: httpx.Request) -> httpx.Response:
        record = next(r for r in cloudflare.records[zone] if r["name"].startswith("app."))
        origin = record["content"]
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("host", "content-length", "cf-connecting-ip")}
        headers["CF-Connecting-IP"] = str(request.extensions["client"][0])
        try:
            # 100 s: Cloudflare's proxy read timeout (a 10,000-row upload is validated before it answers).
            with httpx.Client(verify=origin_client(ca_files[origin], client), timeout=100) as session:
                answer = session.request(request.method, f"https://{origin}{request.url.raw_path.decode()}",
                                        headers={**headers, "Host": SITE_NAME}, content=request.content,
                                        extensions={"sni_hostname": SITE_NAME})
        except httpx.HTTPError as exc:
            # Cloudflare's "connection timed out"; the origin and the error's class are the fake's own
            # additions, so a drill that fails a request says which origin and how.
            return httpx.Response(522, json={"error": "origin unreachable", "origin": origin,
                                             "detail": exc.__class__.__name__})
        return httpx.Response(answer.status_code, content=answer.content,
                              headers={k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS})

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(certificate.cert, certificate.key)
    with serve_httpx_handler(forward, tls, EDGE_NAME) as url:
        yield url


def _forget_recorded_state(state: SandboxState) -> None:
    """A lab starts as a fresh environment: no deploy history, nothing failed over, no journal."""
    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.sandbox.state import environment as sandbox_environment
    from ops.store_keys import backup_prefix, ops_prefix

    store = S3ObjectStore(sandbox_environment(Path(state.root)).storage, "backups")
    for name in ("staging", "production"):
        for key in store.list_keys(ops_prefix(name)):
            store.delete(key)
        for key in store.list_keys(backup_prefix(name)):
            store.delete(key)


@dataclass
class Lab:
    root: Path  # the drill sandbox
    folder: Path
    hosts: dict[str, LabHost]
    registry: LocalRegistry
    cloudflare: FakeCloudflare
    cloudflare_url: str
    outputs_file: Path
    ssh_config: Path
    edge_url: str
    neon: FakeNeonPitr
    edge_client: Pem  # the origin-pull client certificate (Cloudflare's, here a test CA's)
    edge_ca: Path  # what verifies the edge's certificate (ops gets it as SSL_CERT_FILE)
    origin_cert: Pem  # what the stack output origin_tls carries
    betterstack: FakeBetterStack
    stripe: FakeStripe
    database: LabDatabase  # Neon's stand-in: TLS only, Neon's roles, empty until `ops db migrate`
    env: dict[str, str] = field(default_factory=dict)
    hetzner: FakeHetzner | None = None
    firewall_id: int = 0
    firewall_rules: list[dict[str, Any]] = field(default_factory=list)  # as bring-up set them (LAB_SSH_RULE too)

    def owner_url(self, branch: str) -> str:
        """The owner's URL of a branch's database (the stack output connection_strings.<branch>.direct)."""
        return self.database.url(branch, OWNER_DATABASE_ROLE)

    def app_url(self, branch: str) -> str:
        """The app's URL (connection_strings.<branch>.pooled): the role `ops db migrate` makes in SQL."""
        return self.database.url(branch, APP_DATABASE_ROLE, APP_PASSWORDS[branch])

    def edge_get(self, path: str) -> httpx.Response:
        """GET the public URL, as a browser does (the edge's certificate verified)."""
        return httpx.get(f"{self.edge_url}{path}", verify=self.edge_tls(), timeout=10)

    def edge_tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.edge_ca))

    def tls(self, role: str) -> ssl.SSLContext:
        """How a request to a host's Caddy verifies it and is admitted (see `origin_client`)."""
        return origin_client(str(self.hosts[role].ca_file), self.edge_client)

    def site(self, role: str) -> str:
        """Where a request to the host's Caddy goes from here (as Cloudflare's edge dials the origin)."""
        return f"https://{self.hosts[role].address}"

    def record_contents(self) -> dict[str, str]:
        return {r["name"].split(".")[0]: r["content"] for r in self.cloudflare.records[ZONE]}

    def reset(self) -> None:
        """Back to how `running_lab` left it, for the next module on the same lab: both hosts' Caddy
        and app containers running, DNS at the primary, no recorded deploys, failovers or backups."""
        for host in self.hosts.values():
            names = host.docker("ps", "-a", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}")
            for name in names.stdout.split():
                host.docker("start", name)
            host.start_caddy()
        for record in self.cloudflare.records[ZONE]:
            record["content"] = self.hosts["primary"].address
        if self.hetzner is not None and self.hetzner.firewalls[self.firewall_id]["rules"] != self.firewall_rules:
            self.hetzner.set_rules(self.firewall_id, self.firewall_rules)
        for host in self.hosts.values():
            host.set_cloud_init("done")
        _forget_recorded_state(load_state(self.root))
        for stack in BRANCH_OF_STACK:  # as the release job does before every deploy
            self.migrate(stack)

    def ops(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        import sys

        return subprocess.run([sys.executable, "-m", "ops", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def migrate(self, stack: str) -> None:
        done = self.ops("db", "migrate", "--env", stack, "--yes", "--json")
        if done.returncode != 0:
            raise RuntimeError(f"ops db migrate --env {stack}: exit {done.returncode}: {done.stderr[-2000:]}")

    def empty_database(self) -> None:
        """Every branch's database back to how `pulumi up` leaves it: empty, owned by the owner, and no app role."""
        for branch in BRANCH_OF_STACK.values():
            self.database.empty_database(branch, OWNER_DATABASE_ROLE)
        self.database.drop_role(APP_DATABASE_ROLE)

    def containers(self, role: str) -> list[str]:
        out = self.hosts[role].docker("ps", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}")
        return sorted(out.stdout.split())


def _prepare_host(host: LabHost, registry_address: str, origin_ca: Pem, pull_ca: Pem,
                  admin_cidrs: tuple[str, ...]) -> Path:
    """What cloud-init leaves on a server: /etc/autoenroll (the deploy user's), the deploy script, and
    Caddy with the role's origin snippet but no certificate yet (the first deploy writes it)."""
    root, _script = install_role_files(host.folder, f"{registry_address}/{APP_REPOSITORY}")
    assert host.engine is not None
    user = pwd.getpwnam(DEPLOY_USER)
    host.origin_dir.mkdir(exist_ok=True)
    os.chown(host.origin_dir, user.pw_uid, user.pw_gid)
    host.docker_config.mkdir(exist_ok=True)  # empty: no registry login until a deploy does it
    shutil.chown(host.docker_config, DEPLOY_USER, DEPLOY_USER)
    systemctl = host.install_systemctl()  # records the root verbs' calls: the lab has no systemd of its own
    logger, journalctl = host.install_journal()  # nor a journald: `ops logs` reads files through these
    # The lab host's own session variables (its engine, its docker login), plus the role folders.
    LocalTestHost.start_sshd(host, f"SetEnv DOCKER_HOST={host.engine.host} DOCKER_API_VERSION={DOCKER_API_VERSION} "
                                   f"DOCKER_CONFIG={host.docker_config} AUTOENROLL_ROOT={root} "
                                   f"ORIGIN_TLS_DIR={host.origin_dir} CADDY_GROUP={DEPLOY_USER} "
                                   f"VECTOR_ENV_FILE={host.vector_env_file} SYSTEMCTL={systemctl} "
                                   f"LOGGER={logger} JOURNALCTL={journalctl} "
                                   f"REBOOT_REQUIRED_FILE={host.folder / 'reboot-required'} "
                                   "APP_LOG_DRIVER=json-file\n")
    snippet = host.folder / "origin-tls.caddy"
    snippet.write_text(origin_tls_snippet(str(host.origin_dir), str(pull_ca.cert)))
    shutil.copyfile(origin_ca.cert, host.ca_file)  # what verifies this host's certificate from here on
    host.origin_snippet = snippet
    # The role's ruleset with the stack's admin CIDRs (this runner is not in them: it reaches SSH as
    # any source the Hetzner firewall admits does); this runner stands in for Cloudflare's edge on 80/443.
    runner = f"{host.runner_address}/32"
    host.load_firewall(nftables_conf(admin_cidrs, (*cloudflare_ranges(), runner)))
    # The hosts' containers reach this machine's services through any of its addresses.
    host.run_as_root(["ip", "route", "replace", "default", "via", host.runner_address])
    host.start_caddy()
    return root


def _redis_tls(tls_dir: Path, gateway: str) -> tuple[ssl.SSLContext, Pem]:
    """TLS for the lab's Redis, as a Redis Cloud database with TLS on: a certificate for the address
    the app dials, from a CA of its own (Redis Cloud's is its own too), which the app gets as REDIS_CA_CERT."""
    ca = make_ca(tls_dir, "redis")
    leaf = issue(ca, tls_dir, "redis-server", (gateway,))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(leaf.cert, leaf.key)
    return context, ca


def _outputs(state: SandboxState, hosts: dict[str, LabHost], gateway: str, forwarded: dict[str, int],
             stack: str, edge_url: str, origin: Pem, registry: LocalRegistry,
             monitor_ids: dict[str, str], stripe_endpoint: str, database: LabDatabase,
             redis_ca: Pem) -> dict[str, Any]:
    from autoenroll.stripe_webhook import WEBHOOK_PATH
    from stacks.plan import run_plan

    outputs: dict[str, Any] = json.loads(json.dumps(run_plan(stack).outputs, default=str))
    servers = [{"id": index + 1, "name": f"{role}-host", "role": role, "ipv4": host.address,
                "private_ip": host.address, "location": "lab"} for index, (role, host) in enumerate(hosts.items())]
    owner, branch = OWNER_DATABASE_ROLE, BRANCH_OF_STACK[stack]
    pooled = {b: database.url(b, APP_DATABASE_ROLE, APP_PASSWORDS[b]) for b in APP_PASSWORDS}
    outputs.update({
        "servers": servers, "load_balancer_ipv4": None, "public_url": edge_url,
        "heartbeat_url": state.heartbeat_url(), "neon_project_id": NEON_PROJECT,
        "neon_branches": {"main": {"id": "br-main", "endpoint_id": "ep-main", "host": "lab"}},
        "r2_endpoint": state.s3.endpoint_url, "buckets": dict(state.s3.buckets),
        "dns": {**outputs["dns"], "zone_id": ZONE, "app_record_name": APP_RECORD,
                "records": {"app": "rec0", "api": "rec1"}},
        "monitor_ids": monitor_ids,
        "stripe_webhook": {"endpoint_id": stripe_endpoint, "url": edge_url + WEBHOOK_PATH,
                           "secret": STRIPE_WEBHOOK_SECRET},
        "origin_tls": {"certificate": origin.cert.read_text(), "private_key": origin.key.read_text()},
        "registry_login": {"username": READER, "token": registry.reader_token},
        "betterstack_logs_token": LOGS_TOKEN,
        "connection_strings": {b: {"direct": database.url(b, owner), "pooled": pooled[b]}
                               for b in BRANCH_OF_STACK.values()},
        # The production plan's read-only Neon endpoint on main (issue 28) has no lab counterpart: its URL
        # from the offline plan names a neon.tech host, which the hosts' containers cannot resolve. The lab's
        # PostgreSQL stands in for it as a replica that is never behind, so the app's replica reads run
        # (read-only transactions, the app's role, TLS) against a real server; a stack without one keeps none.
        **({"read_replica_url": pooled[branch]} if outputs.get("read_replica_url") else {}),
        "app_env": {
            **outputs["app_env"], "DATABASE_URL": pooled[branch],
            **({REPLICA_ENV_VAR: pooled[branch]} if REPLICA_ENV_VAR in outputs["app_env"] else {}),
            # TLS only, as production requires (app/autoenroll/config.py), verified against the lab's CA.
            "REDIS_URL": f"rediss://:{state.redis.password}@{gateway}:{forwarded['redis']}/0",
            "REDIS_CA_CERT": base64.b64encode(redis_ca.cert.read_bytes()).decode(),
            "S3_ENDPOINT_URL": f"http://{gateway}:{forwarded['s3']}", "S3_REGION": "us-east-1",
            "S3_ACCESS_KEY_ID": state.s3.access_key, "S3_SECRET_ACCESS_KEY": state.s3.secret_key,
            "S3_BUCKET_UPLOADS": state.s3.buckets["uploads"], "SENTRY_DSN": "",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET, "AUTH_SECRET": "lab-" + "s" * 40,
        },
    })
    return outputs


def _stack_config_with_secrets(stack: str, folder: Path) -> Path:
    """The committed Pulumi.<stack>.yaml as `pulumi config set --secret` leaves it on a real stack:
    every secret the stack needs present as an encrypted `secure:` value (ciphertext, not a secret)."""
    import yaml

    from ops.paths import REPO_ROOT
    from stacks.config import APP, SECRET_KEYS

    document = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())
    for key in [f"{APP}:{k}" for k in SECRET_KEYS] + ["hcloud:token", "cloudflare:apiToken"]:
        document["config"][key] = {"secure": "v1:bGFiLWNpcGhlcnRleHQ="}
    path = folder / f"Pulumi.{stack}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@contextlib.contextmanager
def running_lab(root: Path, registry: LocalRegistry, folder: Path, stack: str) -> Iterator[Lab]:
    state = load_state(root)
    with contextlib.ExitStack() as stack_:
        hosts = {role: stack_.enter_context(running_lab_host(registry, login=False)) for role in ROLES}
        gateway = hosts["primary"].runner_address
        # Neon: a TLS-only server on the gateway (the hosts' containers and ops reach it alike), the owner
        # made as the stack makes it (through "the API"), each branch an empty database.
        database = stack_.enter_context(running_lab_database(gateway))
        database.api_role(OWNER_DATABASE_ROLE)
        for branch in BRANCH_OF_STACK.values():
            database.empty_database(branch, OWNER_DATABASE_ROLE)
        targets = {"redis": state.redis.port, "s3": state.s3.ports["s3"]}
        redis_tls, redis_ca = _redis_tls(folder / "redis-tls", gateway)
        forwarders = {name: Forwarder((gateway, 0), ("127.0.0.1", port),
                                      redis_tls if name == "redis" else None)
                      for name, port in targets.items()}
        for forwarder in forwarders.values():
            stack_.callback(forwarder.close)
        tls_dir = folder / "tls"
        origin_ca, pull_ca = make_ca(tls_dir, "origin"), make_ca(tls_dir, "origin-pull")
        origin_cert = issue(origin_ca, tls_dir, "origin", (SITE_NAME,))
        edge_client = issue(pull_ca, tls_dir, "edge", client=True)
        edge_ca = make_ca(tls_dir, "edge")
        edge_cert = issue(edge_ca, tls_dir, "edge-server", (EDGE_NAME,))
        tls_dir.chmod(0o755)  # Caddy reads the pull CA from here
        from stacks.compute import firewall_rules
        from stacks.config import parse_config
        from stacks.plan import namespaced_config

        config = parse_config(namespaced_config(stack), stack)
        for host in hosts.values():
            _prepare_host(host, registry.address_for(host.runner_address), origin_ca, pull_ca,
                          config.compute.admin_cidrs)
        # The Hetzner firewall in front of every host, as its fake's rules say from now on.
        hetzner = stack_.enter_context(serve_hetzner(FakeHetzner()))

        def apply_firewall(_firewall_id: int, rules: list[dict[str, Any]]) -> None:
            for host in hosts.values():
                host.load_ruleset("hcloud-firewall.nft", firewall_ruleset(rules, host.inside_interface))

        hetzner.listeners.append(apply_firewall)
        runners = [f"{h.runner_address}/32" for h in hosts.values()]
        lab_rules = [*firewall_rules(config),
                     *({"direction": "in", "protocol": "tcp", "port": port, "source_ips": runners,
                        "description": "lab: this runner as Cloudflare's edge"} for port in ("80", "443")),
                     {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": runners,
                      "description": LAB_SSH_RULE}]
        ssh_config = folder / "ssh_config"
        ssh_config.write_text("".join(
            f"Host {h.address}\n    User {DEPLOY_USER}\n    IdentityFile {h.folder / 'client_key'}\n"
            "    IdentitiesOnly yes\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
            "    LogLevel ERROR\n" for h in hosts.values()))
        cloudflare = FakeCloudflare()
        cloudflare.add_record(ZONE, APP_RECORD, hosts["primary"].address)
        cloudflare.add_record(ZONE, API_RECORD, hosts["primary"].address)
        cloudflare.settings[ZONE] = {"ssl": "strict", "min_tls_version": "1.2"}  # the stack's edge settings
        cloudflare_url = stack_.enter_context(serve_httpx_handler(cloudflare))
        edge_url = stack_.enter_context(serve_edge(cloudflare, ZONE,
                                                   {h.address: str(h.ca_file) for h in hosts.values()}, edge_client,
                                                   edge_cert))
        # BetterStack: the stack's two monitors (app and api), up; Stripe: the stack's webhook endpoint.
        from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH

        betterstack = FakeBetterStack()
        betterstack_url = stack_.enter_context(serve_httpx_handler(betterstack))
        monitor_ids = {name: str(betterstack.add("monitors", {"url": f"{edge_url}/health", "monitor_type": "status"},
                                                 status="up")["id"]) for name in ("app", "api")}
        stripe = FakeStripe("sk_test_lab")
        stripe_endpoint = str(stripe.add(edge_url + WEBHOOK_PATH, list(HANDLED_EVENTS))["id"])
        stripe_url = stack_.enter_context(serve_httpx_handler(stripe))
        neon = FakeNeonPitr(LocalBranchStore(database.url("postgres")), NEON_PROJECT)
        neon.add("main")
        neon.add("staging")  # the staging stack's branch, which `ops db refresh staging` restores in place
        stack_.callback(neon.cleanup)
        neon_url = stack_.enter_context(serve_httpx_handler(neon))
        files = {}
        for name in ("staging", "production"):
            files[name] = folder / f"{name}.json"
            ports = {k: f.port for k, f in forwarders.items()}
            files[name].write_text(json.dumps(_outputs(state, hosts, gateway, ports, name, edge_url, origin_cert,
                                                       registry, monitor_ids, stripe_endpoint, database,
                                                       redis_ca)))
        outputs_file = files[stack]
        firewall_id = int(json.loads(outputs_file.read_text())["firewall_id"])
        hetzner.add_firewall(firewall_id, [])
        hetzner.set_rules(firewall_id, lab_rules)
        config_dir = folder / "stack-config"
        config_dir.mkdir()
        for name in ("staging", "production"):
            _stack_config_with_secrets(name, config_dir)
        # The standby host's own PostgreSQL (failover --db standby) and verify's scratch server: the same
        # TLS-only server here, its superuser for the one (self-hosted), the owner for the other (a Neon branch).
        standby_pg = database.url("postgres")
        env = {
            **os.environ, "OPS_SANDBOX_DIR": str(root),
            "OPS_STACK_OUTPUTS_STAGING": str(files["staging"]),
            "OPS_STACK_OUTPUTS_PRODUCTION": str(files["production"]),
            "NEON_API_KEY": "neon-lab-key", "OPS_NEON_API_URL": neon_url + "/api/v2",
            "OPS_STANDBY_DATABASE_URL": standby_pg,
            "BACKUP_AGE_RECIPIENT": state.backup_recipient, "BACKUP_AGE_IDENTITY_FILE": state.backup_identity_file(),
            "OPS_SCRATCH_DATABASE_URL": database.url("postgres", OWNER_DATABASE_ROLE),
            "R2_ACCESS_KEY_ID": state.s3.access_key, "R2_SECRET_ACCESS_KEY": state.s3.secret_key,
            "OPS_SSH_CONFIG": str(ssh_config), "OPS_HOST_COMMAND": str(hosts["primary"].folder / "autoenroll-deploy"),
            "OPS_HOST_ROOT_COMMAND": str(hosts["primary"].folder / "autoenroll-deploy"),
            "CLOUDFLARE_API_TOKEN": cloudflare.token, "OPS_CLOUDFLARE_API_URL": cloudflare_url + "/client/v4",
            "BETTERSTACK_API_TOKEN": "betterstack-lab-token", "OPS_BETTERSTACK_API_URL": betterstack_url + "/api/v2",
            "STRIPE_API_KEY": stripe.api_key, "OPS_STRIPE_API_URL": stripe_url + "/v1",
            "SSL_CERT_FILE": str(edge_ca.cert),  # the public URL's certificate, as a public CA's would be trusted
            "OPS_STACK_CONFIG_DIR": str(config_dir),
            "HCLOUD_TOKEN": hetzner.token, "OPS_HCLOUD_API_URL": hetzner.url,
        }
        _forget_recorded_state(state)
        yield Lab(root, folder, hosts, registry, cloudflare, cloudflare_url, outputs_file, ssh_config, edge_url, neon,
                  edge_client, edge_ca.cert, origin_cert, betterstack, stripe, database, env, hetzner, firewall_id,
                  list(hetzner.firewalls[firewall_id]["rules"]))
