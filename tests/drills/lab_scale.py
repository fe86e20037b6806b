"""The lab with `compute.replicas: 3` (issue 30): the session's lab (tests/drills/lab.py) EXTENDED for
one module, never a second lab. What it adds, and takes away again at the module's end:

- two more lab hosts (primary-2, primary-3), prepared as the lab prepares its primary (the role's files,
  the deploy user's folders, the role's nftables, Debian's Caddy with the origin snippet), behind the
  Hetzner firewall's table like the others (the lab's "this runner" rules get their runner addresses);
- the stack outputs of a replicas-3 production stack: the offline plan's outputs (`run_plan` with
  `phase: scale, compute.replicas: 3`, so the server names and ids and the load balancer's id are the
  program's) on top of the lab's production outputs, with this lab's addresses put in;
- in the Hetzner fake, the servers and the load balancer as `pulumi up` leaves them: the service and its
  health check read from the plan's LoadBalancerService, one target per primary;
- HAProxy from tests/haproxy_lb.py configured from the fake's description (GET /load_balancers/{id}) as
  Hetzner's load balancer, on an address of its own (a loopback address, port 443, as the load balancer's
  public IPv4); the fake's target actions move its servers in and out of maintenance, and the fake
  reports each target's health as HAProxy's check finds it;
- each primary's Caddy with the health check's site (CADDY_LB_HEALTH, `lb_health_site` admitting the
  address the load balancer dials from: this runner's end of that host's link);
- Cloudflare's records at the load balancer's address (the stack's DNS with replicas > 1), and an edge
  (serve_edge) of its own that follows them, so traffic goes edge -> load balancer -> hosts.

Only the session's primary is changed in place (its Caddy gets the health check's site, its app is
deployed with production's env file by the first deploy); its Caddy is put back without the site at
the end, and the next module's `lab` fixture resets the rest (Lab.reset) as after any module.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from stacks.host_role import DEPLOY_USER, lb_health_site
from tests.drills.lab import EDGE_NAME, ZONE, Lab, _prepare_host, origin_client, serve_edge
from tests.drills.loadloop import LoadLoop
from tests.haproxy_lb import Backend, fully_healthy, haproxy_config, running_haproxy, server_states, set_in_rotation
from tests.hcloud_fake import firewall_ruleset
from tests.infra.testhost import SITE_NAME
from tests.lab.host import LabHost, running_lab_host
from tests.lab.tls import Pem

STACK = "production"
SCALE = {"phase": "scale", "compute": {"replicas": 3}}  # what docs/scale.md says to set
HEALTH = {"UP": "healthy", "DOWN": "unhealthy"}  # HAProxy's state -> the target's health_status on Hetzner


@dataclass
class ScaleLab:
    lab: Lab
    hosts: dict[str, LabHost]  # by server name: the three primaries, then the standby
    primaries: list[str]  # the primaries' server names, in the plan's order
    standby: str
    server_ids: dict[str, int]
    env: dict[str, str]  # the lab's, pointed at the replicas-3 outputs and an SSH config naming all four
    outputs_file: Path
    edge_url: str
    lb_address: str
    stats_socket: Path
    health_check: dict[str, Any]  # the service's check as the Hetzner fake describes it

    def ops(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "ops", *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def ops_timed(self, *args: str, timeout: float = 900) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """`ops(*args)`, with each line it writes to stderr (its progress: a step starting, a host
        switched) also returned stamped with the moment it arrived (see `stamp`), so a drill that fails
        a request can say during which step it failed."""
        proc = self.popen(*args)
        arrived: list[tuple[float, str]] = []

        def read_stderr() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                arrived.append((time.monotonic(), line.rstrip()))

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
            reader.join(timeout=10)
        stderr = "\n".join(line for _at, line in arrived)
        return (subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
                [f"{stamp(at)} {line}" for at, line in arrived])

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "ops", *args], env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def lb_states(self) -> dict[str, str]:
        """Each primary's state in the load balancer now (HAProxy's: UP, DOWN, MAINT)."""
        return server_states(self.stats_socket)

    def until(self, condition: Callable[[], bool], what: str, limit: float = 240.0) -> float:
        """Seconds until `condition` holds (the limit only keeps a broken run from hanging)."""
        started = time.monotonic()
        while not condition():
            if time.monotonic() - started > limit:
                raise AssertionError(f"{what}: not after {limit:g}s (load balancer: {self.lb_states()})")
            time.sleep(0.25)
        return time.monotonic() - started

    def wait_all_healthy(self) -> float:
        """Until every target is UP with its check counter at the top (see haproxy_lb.fully_healthy):
        as in steady service, a failing one then takes `retries` checks to leave."""
        return self.until(lambda: fully_healthy(self.stats_socket), "every target fully healthy")

    def version_on(self, name: str) -> str:
        """What /version answers on one host's own Caddy (as the edge dials an origin)."""
        host = self.hosts[name]
        with httpx.Client(verify=origin_client(str(host.ca_file), self.lab.edge_client), timeout=10,
                          headers={"Host": SITE_NAME}) as client:
            response = client.get(f"https://{host.address}/version", extensions={"sni_hostname": SITE_NAME})
        return str(response.json()["version"])

    def versions(self) -> dict[str, str]:
        return {name: self.version_on(name) for name in self.hosts}

    def edge_loop(self, max_seconds: float = 600.0) -> LoadLoop:
        """A bounded request loop through the edge (-> the load balancer -> a host): /health every 50 ms."""
        return LoadLoop(f"{self.edge_url}/health", max_seconds=max_seconds, max_requests=20000, interval=0.05,
                        verify=self.lab.edge_tls())


def stamp(moment: float) -> str:
    """A time.monotonic() moment (the load loop's clock) as itself and as the wall clock's time of day,
    the clock HAProxy's log lines carry."""
    wall = datetime.now() - timedelta(seconds=time.monotonic() - moment)  # local time, as HAProxy logs it
    return f"{moment:.2f} {wall:%H:%M:%S.%f}"[:-3]


def _free_loopback_443() -> str:
    """A loopback address with nothing on port 443, for the load balancer's public address."""
    for third in range(31, 250):
        address = f"127.30.{third}.1"
        with socket.socket() as probe:
            try:
                probe.bind((address, 443))
            except OSError:
                continue
            return address
    raise RuntimeError("no loopback address with port 443 free for the lab's load balancer")


def _service(plan: Any) -> dict[str, Any]:
    """The load balancer's service as the API returns it, from the plan's LoadBalancerService (Pulumi's
    camelCase inputs; numbers come back from the mocks as floats)."""
    props = next(r.props for r in plan.resources if r.type == "hcloud:index/loadBalancerService:LoadBalancerService")
    check = props["healthCheck"]
    http = check.get("http", {})
    return {"protocol": props["protocol"], "listen_port": int(props["listenPort"]),
            "destination_port": int(props["destinationPort"]),
            "health_check": {"protocol": check["protocol"], "port": int(check["port"]),
                             "interval": int(check["interval"]), "timeout": int(check["timeout"]),
                             "retries": int(check["retries"]),
                             **({"http": {"domain": http.get("domain"), "path": http["path"],
                                          "status_codes": list(http.get("statusCodes", ["2??", "3??"])),
                                          "tls": bool(http.get("tls", False))}} if http else {})}}


def _ssh_config(hosts: list[LabHost]) -> str:
    return "".join(f"Host {h.address}\n    User {DEPLOY_USER}\n    IdentityFile {h.folder / 'client_key'}\n"
                   "    IdentitiesOnly yes\n    StrictHostKeyChecking no\n    UserKnownHostsFile /dev/null\n"
                   "    LogLevel ERROR\n" for h in hosts)


@contextlib.contextmanager
def running_scale_lab(lab: Lab, folder: Path) -> Iterator[ScaleLab]:
    """The session's lab with replicas 3 for the block (module docstring); everything it added is gone
    after it, whatever happens."""
    from stacks.config import parse_config
    from stacks.plan import namespaced_config, run_plan

    assert lab.hetzner is not None, "the lab has no Hetzner fake"
    hetzner = lab.hetzner
    plan = run_plan(STACK, SCALE)
    assert plan.passed, f"the replicas-3 plan fails its policies: {plan.policies}"
    planned: dict[str, Any] = json.loads(json.dumps(plan.outputs, default=str))
    tls_dir = lab.folder / "tls"  # the lab's CAs and certificates (running_lab made them there)
    origin_ca, pull_ca = Pem(tls_dir / "origin-ca.pem", tls_dir / "origin-ca.key"), \
        Pem(tls_dir / "origin-pull-ca.pem", tls_dir / "origin-pull-ca.key")
    edge_cert = Pem(tls_dir / "edge-server.pem", tls_dir / "edge-server.key")
    config = parse_config(namespaced_config(STACK, SCALE), STACK)
    with contextlib.ExitStack() as stack:
        added = [stack.enter_context(running_lab_host(lab.registry, login=False)) for _ in range(2)]
        for host in added:
            _prepare_host(host, lab.registry.address_for(host.runner_address), origin_ca, pull_ca,
                          config.compute.admin_cidrs)

        # The Hetzner firewall in front of the new hosts too, and the lab's "this runner" rules (the
        # edge on 80/443, the admin workstation on 22) for their runner addresses as for the others'.
        def apply_firewall(_firewall_id: int, rules: list[dict[str, Any]]) -> None:
            for host in added:
                host.load_ruleset("hcloud-firewall.nft", firewall_ruleset(rules, host.inside_interface))

        hetzner.listeners.append(apply_firewall)
        stack.callback(hetzner.listeners.remove, apply_firewall)
        stack.callback(hetzner.set_rules, lab.firewall_id, list(lab.firewall_rules))
        runners = [f"{h.runner_address}/32" for h in added]
        hetzner.set_rules(lab.firewall_id, [
            {**r, "source_ips": [*r["source_ips"], *runners]} if str(r.get("description") or "").startswith("lab:")
            else r for r in hetzner.firewalls[lab.firewall_id]["rules"]])

        # Servers: the plan's names and ids, this lab's hosts (app-1 the session's primary).
        by_plan = iter([lab.hosts["primary"], *added])
        hosts: dict[str, LabHost] = {}
        servers = []
        for server in planned["servers"]:
            host = lab.hosts["standby"] if server["role"] == "standby" else next(by_plan)
            hosts[server["name"]] = host
            servers.append({**server, "ipv4": host.address, "private_ip": host.address, "location": "lab"})
        primaries = [s["name"] for s in servers if s["role"] == "primary"]
        standby = next(s["name"] for s in servers if s["role"] == "standby")
        assert len(primaries) == 3, servers
        server_ids = {s["name"]: int(s["id"]) for s in servers}
        for name, server_id in server_ids.items():
            hetzner.add_server(server_id, name)
        lb_id = int(planned["load_balancer_id"])
        lb_address = _free_loopback_443()
        hetzner.add_load_balancer(lb_id, f"autoenroll-{STACK}-lb", [_service(plan)],
                                  [server_ids[n] for n in primaries], ipv4=lb_address)

        def forget_hetzner() -> None:
            hetzner.load_balancers.pop(lb_id, None)
            for server_id in server_ids.values():
                hetzner.servers.pop(server_id, None)

        stack.callback(forget_hetzner)

        # Each primary's Caddy with the health check's site, from the address the load balancer dials from.
        def without_health_site(host: LabHost) -> None:
            host.lb_health = None
            host.start_caddy()

        for name in primaries:
            host = hosts[name]
            site = host.folder / "lb-health.caddy"
            site.write_text(lb_health_site(f"{host.runner_address}/32"))
            site.chmod(0o644)
            host.lb_health = site
            if host is lab.hosts["primary"]:
                stack.callback(without_health_site, host)
            host.start_caddy()

        # The load balancer: HAProxy from the fake's description, following its target actions.
        status, answer = hetzner.handle("GET", f"/v1/load_balancers/{lb_id}", f"Bearer {hetzner.token}", None)
        assert status == 200, answer
        description = answer["load_balancer"]
        backends = {server_ids[n]: Backend(n, hosts[n].address, {443: 443, 80: 80}) for n in primaries}
        lb_folder = folder / "lb"
        lb_folder.mkdir()
        sock = stack.enter_context(running_haproxy(
            haproxy_config(description, backends, {443: 443}, lb_folder / "haproxy.sock", bind=lb_address),
            lb_folder))
        name_of = {v: k for k, v in server_ids.items()}

        def follow_targets(load_balancer: int, command: str, server_id: int) -> None:
            if load_balancer == lb_id:
                set_in_rotation(sock, name_of[server_id], command == "add_target")

        previous_health = hetzner.health

        def health(server_id: int) -> str | None:
            if server_id not in name_of:
                return previous_health(server_id)
            return HEALTH.get(server_states(sock).get(name_of[server_id], ""), "unknown")

        hetzner.target_listeners.append(follow_targets)
        stack.callback(hetzner.target_listeners.remove, follow_targets)
        hetzner.health = health

        def restore_health() -> None:
            hetzner.health = previous_health

        stack.callback(restore_health)

        # DNS at the load balancer, as the stack sets it with replicas > 1; an edge that follows it.
        records = lab.cloudflare.records[ZONE]
        before = {r["id"]: r["content"] for r in records}

        def restore_dns() -> None:
            for record in records:
                record["content"] = before[record["id"]]

        stack.callback(restore_dns)
        for record in records:
            record["content"] = lb_address
        origin_cas = {h.address: str(h.ca_file) for h in hosts.values()} | {lb_address: str(origin_ca.cert)}
        edge_url = stack.enter_context(serve_edge(lab.cloudflare, ZONE, origin_cas, lab.edge_client, edge_cert))
        assert EDGE_NAME in edge_url

        base = json.loads(Path(lab.env["OPS_STACK_OUTPUTS_PRODUCTION"]).read_text())
        outputs = {**base, "servers": servers, "load_balancer_id": str(lb_id), "load_balancer_ipv4": lb_address,
                   "public_url": edge_url}
        outputs_file = folder / f"{STACK}-replicas-3.json"
        outputs_file.write_text(json.dumps(outputs))
        ssh_config = folder / "ssh_config"
        ssh_config.write_text(_ssh_config(list(hosts.values())))
        env = {**lab.env, "OPS_STACK_OUTPUTS_PRODUCTION": str(outputs_file), "OPS_SSH_CONFIG": str(ssh_config)}
        yield ScaleLab(lab, hosts, primaries, standby, server_ids, env, outputs_file, edge_url, lb_address, sock,
                       description["services"][0]["health_check"])
