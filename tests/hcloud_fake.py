"""Hetzner Cloud's API (firewalls and their set_rules action; servers by name; load balancers, their
add_target/remove_target actions and each target's health), faked at the HTTP transport as
a loopback server: the official `hcloud` SDK speaks `requests`, so it is pointed here by its
`api_endpoint`. Shapes from docs.hetzner.cloud (`{"firewall": ...}`, `{"actions": [...]}`,
`{"error": {"code", "message"}}`).

`firewall_ruleset` turns a firewall's rules into the nftables table that stands in for it in front of
a lab host (tests/drills/lab.py): a listener (`FakeHetzner.listeners`) applies every set_rules to
the hosts before the action is answered, as Hetzner's action is "success" once the rules are live.

A load balancer's targets carry `health_status` per service (`[{"listen_port", "status"}]`, status
healthy | unhealthy | unknown), as Hetzner reports them; the fake asks `FakeHetzner.health` (a
callable, server id -> status) when it answers, so a test (or a lab probing real hosts) decides
what the health check found. A target just added is "unknown" until then, as on Hetzner."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

NOW = "2026-12-01T00:00:00+00:00"


class FakeHetzner:
    def __init__(self, token: str = "hcloud-test-token") -> None:  # noqa: S107 - a fake's own token
        self.token = token
        self.firewalls: dict[int, dict[str, Any]] = {}
        self.rule_history: list[list[dict[str, Any]]] = []  # every set_rules, in order
        self.ssh_keys: list[dict[str, Any]] = []  # the project's keys ({"id", "name", "fingerprint", ...})
        # Called with (firewall id, its rules) after each set_rules, before the API answers.
        self.listeners: list[Callable[[int, list[dict[str, Any]]], None]] = []
        self.url = ""
        self.servers: dict[int, dict[str, Any]] = {}
        self.load_balancers: dict[int, dict[str, Any]] = {}
        # What the load balancer's health check finds on a server (None: not yet checked, "unknown").
        self.health: Callable[[int], str | None] = lambda _server_id: "healthy"
        self.target_history: list[tuple[str, int]] = []  # ("add_target" | "remove_target", server id), in order
        # Called with (load balancer id, "add_target" | "remove_target", server id) after a target
        # action, before the API answers (a lab's stand-in load balancer follows its targets).
        self.target_listeners: list[Callable[[int, str, int], None]] = []

    def add_firewall(self, firewall_id: int, rules: list[dict[str, Any]]) -> None:
        self.firewalls[firewall_id] = {"id": firewall_id, "name": f"fw-{firewall_id}", "labels": {}, "created": NOW,
                                       "rules": [self.rule(r) for r in rules], "applied_to": []}

    @staticmethod
    def rule(given: dict[str, Any]) -> dict[str, Any]:
        return {"destination_ips": [], "source_ips": [], "port": None, "description": None, **given}

    def set_rules(self, firewall_id: int, rules: list[dict[str, Any]]) -> None:
        """What the API's set_rules does (the lab also calls it to change its standing rules)."""
        firewall = self.firewalls[firewall_id]
        firewall["rules"] = [self.rule(r) for r in rules]
        self.rule_history.append(firewall["rules"])
        for listener in self.listeners:
            listener(firewall_id, firewall["rules"])

    def add_server(self, server_id: int, name: str, labels: dict[str, str] | None = None) -> None:
        self.servers[server_id] = {"id": server_id, "name": name, "status": "running", "created": NOW,
                                   "labels": labels or {}, "public_net": None, "private_net": []}

    def add_load_balancer(self, lb_id: int, name: str, services: list[dict[str, Any]],
                          server_ids: list[int], *, lb_type: str = "lb11", ipv4: str = "203.0.113.10") -> None:
        """A load balancer as `pulumi up` leaves it (stacks/compute.py): TCP services with their health
        checks (Pulumi's health_check args, as the API returns them), one server target per primary."""
        self.load_balancers[lb_id] = {
            "id": lb_id, "name": name, "created": NOW, "labels": {}, "protection": {"delete": False},
            "algorithm": {"type": "round_robin"},
            "load_balancer_type": {"id": 1, "name": lb_type, "description": lb_type.upper()},
            "location": {"id": 1, "name": "fsn1", "network_zone": "eu-central"},
            "public_net": {"enabled": True, "ipv4": {"ip": ipv4, "dns_ptr": None},
                           "ipv6": {"ip": "2001:db8::1", "dns_ptr": None}},
            "private_net": [], "included_traffic": 0, "ingoing_traffic": 0, "outgoing_traffic": 0,
            "services": [{"protocol": sv["protocol"], "listen_port": sv["listen_port"],
                          "destination_port": sv["destination_port"], "proxyprotocol": False,
                          "health_check": {**{k: v for k, v in sv["health_check"].items() if k != "http"},
                                           "http": {"response": None, "tls": False,
                                                    **sv["health_check"].get("http", {})}}}
                         for sv in services],
            "targets": [{"type": "server", "server": {"id": i}, "use_private_ip": True} for i in server_ids],
        }

    def _lb_view(self, lb: dict[str, Any]) -> dict[str, Any]:
        ports = [sv["listen_port"] for sv in lb["services"]]
        return {**lb, "targets": [
            {**t, "health_status": [{"listen_port": port, "status": self.health(t["server"]["id"]) or "unknown"}
                                    for port in ports]} for t in lb["targets"]]}

    def _lb_action(self, lb_id: int, command: str, body: Any) -> tuple[int, Any]:
        lb = self.load_balancers[lb_id]
        if not body or body.get("type") != "server" or "server" not in body:
            return 422, {"error": {"code": "invalid_input", "message": "target: type server with a server id"}}
        server_id = int(body["server"]["id"])
        if server_id not in self.servers:
            return 404, {"error": {"code": "not_found", "message": f"server {server_id} not found"}}
        present = any(t["server"]["id"] == server_id for t in lb["targets"])
        if command == "add_target":
            if present:
                return 409, {"error": {"code": "target_already_defined", "message": "target already defined"}}
            lb["targets"].append({"type": "server", "server": {"id": server_id},
                                  "use_private_ip": bool(body.get("use_private_ip", False))})
        else:
            if not present:
                return 404, {"error": {"code": "load_balancer_target_not_found", "message": "target not found"}}
            lb["targets"] = [t for t in lb["targets"] if t["server"]["id"] != server_id]
        self.target_history.append((command, server_id))
        for listener in self.target_listeners:
            listener(lb_id, command, server_id)
        action = {"id": 1000 + len(self.target_history), "command": command, "status": "success", "progress": 100,
                  "started": NOW, "finished": NOW, "error": None,
                  "resources": [{"id": lb_id, "type": "load_balancer"}, {"id": server_id, "type": "server"}]}
        return 201, {"action": action}

    def _action(self, firewall_id: int) -> dict[str, Any]:
        return {"id": len(self.rule_history), "command": "set_firewall_rules", "status": "success", "progress": 100,
                "started": NOW, "finished": NOW, "error": None,
                "resources": [{"id": firewall_id, "type": "firewall"}]}

    def handle(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        if auth != f"Bearer {self.token}":
            return 401, {"error": {"code": "unauthorized", "message": "unable to authenticate"}}
        path, _, query = path.partition("?")
        parts = path.removeprefix("/v1/").strip("/").split("/")
        if method == "GET" and parts == ["ssh_keys"]:
            wanted = parse_qs(query).get("fingerprint")
            return 200, {"ssh_keys": [k for k in self.ssh_keys if not wanted or k["fingerprint"] in wanted]}
        if method == "GET" and parts == ["servers"]:
            wanted_names = parse_qs(query).get("name")
            found = [v for v in self.servers.values() if not wanted_names or v["name"] in wanted_names]
            return 200, {"servers": found, "meta": {"pagination": {"page": 1, "per_page": 25, "previous_page": None,
                                                                   "next_page": None, "last_page": 1,
                                                                   "total_entries": len(found)}}}
        if method == "GET" and parts[0] == "servers" and len(parts) == 2 and int(parts[1]) in self.servers:
            return 200, {"server": self.servers[int(parts[1])]}
        if parts[0] == "load_balancers" and len(parts) >= 2 and int(parts[1]) in self.load_balancers:
            lb_id = int(parts[1])
            if method == "GET" and len(parts) == 2:
                return 200, {"load_balancer": self._lb_view(self.load_balancers[lb_id])}
            if method == "POST" and parts[2:3] == ["actions"] and parts[3:] in (["add_target"], ["remove_target"]):
                return self._lb_action(lb_id, parts[3], body)
        if parts[0] == "firewalls" and len(parts) >= 2 and int(parts[1]) in self.firewalls:
            firewall = self.firewalls[int(parts[1])]
            if method == "GET" and len(parts) == 2:
                return 200, {"firewall": firewall}
            if method == "POST" and parts[2:] == ["actions", "set_rules"]:
                self.set_rules(firewall["id"], body["rules"])
                return 201, {"actions": [self._action(firewall["id"])]}
        if parts[0] == "actions" and len(parts) == 2:
            return 200, {"action": self._action(0) | {"id": int(parts[1])}}
        return 404, {"error": {"code": "not_found", "message": f"no fake route {method} {path}"}}


def transport(fake: FakeHetzner) -> httpx.MockTransport:
    """The fake at the HTTP transport, for clients built on httpx (the SDK needs `serving`)."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        target = request.url.raw_path.decode()
        status, answer = fake.handle(request.method, target, request.headers.get("authorization"), body)
        return httpx.Response(status, json=answer)

    return httpx.MockTransport(handler)


@contextmanager
def serving(fake: FakeHetzner) -> Iterator[FakeHetzner]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, answer = fake.handle(self.command, self.path, self.headers.get("authorization"), body)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


FIREWALL_TABLE = "hcloud_firewall"


def firewall_ruleset(rules: list[dict[str, Any]], interface: str) -> str:
    """An nftables table that treats what arrives on `interface` (a lab host's public side) as a
    Hetzner firewall with these rules does (docs.hetzner.cloud, Firewalls): stateful; inbound, only
    what a rule admits (protocol, port or "a-b" range, source_ips), the rest dropped; outbound free.

    It hooks prerouting, before anything on the host sees the packet, so it is not part of the
    host's own ruleset (`inet host_firewall`): a packet must pass both, as on a server."""
    lines = [f"table inet {FIREWALL_TABLE}", f"delete table inet {FIREWALL_TABLE}", f"table inet {FIREWALL_TABLE} {{",
             "  chain inbound {",
             "    type filter hook prerouting priority -150; policy accept;",
             f'    iifname != "{interface}" accept',
             "    ct state established,related accept"]
    for rule in rules:
        if rule["direction"] != "in":
            continue
        protocol = rule["protocol"]
        port = rule.get("port")
        dport = f" {protocol} dport {port}" if protocol in ("tcp", "udp") and port not in (None, "any") else ""
        for family, icmp in (("ip", "icmp"), ("ip6", "ipv6-icmp")):
            sources = [c for c in rule["source_ips"] if (":" in c) == (family == "ip6")]
            if not sources:
                continue
            proto = icmp if protocol == "icmp" else protocol
            lines.append(f"    {family} saddr {{ {', '.join(sources)} }} meta l4proto {proto}{dport} accept")
    lines += ["    drop", "  }", "}", ""]
    return "\n".join(lines)
