"""Hetzner Cloud's API (firewalls and their set_rules action), faked at the HTTP transport as
a loopback server: the official `hcloud` SDK speaks `requests`, so it is pointed here by its
`api_endpoint`. Shapes from docs.hetzner.cloud (`{"firewall": ...}`, `{"actions": [...]}`,
`{"error": {"code", "message"}}`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
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
        self.url = ""

    def add_firewall(self, firewall_id: int, rules: list[dict[str, Any]]) -> None:
        self.firewalls[firewall_id] = {"id": firewall_id, "name": f"fw-{firewall_id}", "labels": {}, "created": NOW,
                                       "rules": [self.rule(r) for r in rules], "applied_to": []}

    @staticmethod
    def rule(given: dict[str, Any]) -> dict[str, Any]:
        return {"destination_ips": [], "source_ips": [], "port": None, "description": None, **given}

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
        if parts[0] == "firewalls" and len(parts) >= 2 and int(parts[1]) in self.firewalls:
            firewall = self.firewalls[int(parts[1])]
            if method == "GET" and len(parts) == 2:
                return 200, {"firewall": firewall}
            if method == "POST" and parts[2:] == ["actions", "set_rules"]:
                firewall["rules"] = [self.rule(r) for r in body["rules"]]
                self.rule_history.append(firewall["rules"])
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
