"""Cloudflare's API v4 (DNS records, zone settings; for `ops doctor` also token verify and details,
R2's bucket list, a Pages project and zone rulesets), faked at the HTTP transport.

Answers use Cloudflare's envelope `{"success", "errors", "messages", "result"}`; a bad
token gets 403 with error code 9109 ("Invalid access token").
"""

from __future__ import annotations

from typing import Any

import httpx


class FakeCloudflare:
    def __init__(self, token: str = "cf-test-token") -> None:  # noqa: S107 - a fake's own token
        self.token = token
        self.records: dict[str, list[dict[str, Any]]] = {}  # zone -> records
        self.settings: dict[str, dict[str, Any]] = {}  # zone -> setting id -> value
        self.edits: list[tuple[str, str]] = []  # (record id, new content), in order
        # Faults: record id -> (status, edits answered that way before it succeeds; None: every one),
        # as Cloudflare answers 429/503 on one record while the others go through.
        self.failing: dict[str, tuple[int, int | None]] = {}
        # ops doctor: the token's permission group names (None: it can't read its own details, 403),
        # whether R2 is activated on the account, the Pages projects, each zone's rulesets.
        self.token_permissions: list[str] | None = None
        self.r2_enabled = True
        self.pages_projects: set[str] = set()
        self.rulesets: dict[str, list[dict[str, Any]]] = {}

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def add_record(self, zone: str, name: str, content: str, proxied: bool = True, type_: str = "A") -> None:
        self.records.setdefault(zone, []).append({
            "id": f"rec{len(self.records.get(zone, []))}", "zone_id": zone, "name": name, "type": type_,
            "content": content, "proxied": proxied, "ttl": 1})

    @staticmethod
    def _ok(result: Any) -> httpx.Response:
        return httpx.Response(200, json={"success": True, "errors": [], "messages": [], "result": result})

    @staticmethod
    def _error(status: int, code: int, message: str) -> httpx.Response:
        return httpx.Response(status, json={"success": False, "errors": [{"code": code, "message": message}],
                                            "messages": [], "result": None})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return httpx.Response(403, json={"success": False, "errors": [{"code": 9109,
                                                                           "message": "Invalid access token"}],
                                             "messages": [], "result": None})
        path = request.url.path.removeprefix("/client/v4")
        if path == "/user/tokens/verify":
            return self._ok({"id": "tok-1", "status": "active"})
        if path == "/user/tokens/tok-1":
            if self.token_permissions is None:
                return self._error(403, 9109, "Unauthorized to access requested resource")
            return self._ok({"id": "tok-1", "status": "active", "policies": [{"effect": "allow", "permission_groups": [
                {"id": f"pg-{i}", "name": name} for i, name in enumerate(self.token_permissions)]}]})
        if path.startswith("/accounts/") and path.endswith("/r2/buckets"):
            if not self.r2_enabled:
                return self._error(403, 10042, "Please enable R2 through the Cloudflare Dashboard.")
            return self._ok({"buckets": []})
        if path.startswith("/accounts/") and "/pages/projects/" in path:
            name = path.rsplit("/", 1)[1]
            if name not in self.pages_projects:
                return self._error(404, 8000007, "Project not found.")
            return self._ok({"name": name, "subdomain": f"{name}.pages.dev"})
        parts = path.removeprefix("/zones/").split("/")
        if parts[1:] == ["rulesets"]:
            return self._ok(self.rulesets.get(parts[0], []))
        zone = parts[0]
        if parts[1:] == ["dns_records"]:
            name, type_ = request.url.params.get("name.exact"), request.url.params.get("type")
            return self._ok([r for r in self.records.get(zone, [])
                             if (name is None or r["name"] == name) and (type_ is None or r["type"] == type_)])
        if len(parts) == 3 and parts[1] == "dns_records":
            record = next((r for r in self.records.get(zone, []) if r["id"] == parts[2]), None)
            if record is None:
                return httpx.Response(404, json={"success": False, "errors": [{"code": 81044,
                                                                               "message": "Record does not exist."}],
                                                 "messages": [], "result": None})
            if request.method == "PATCH" and parts[2] in self.failing:
                status, left = self.failing[parts[2]]
                if left is None or left > 0:
                    if left is not None:
                        self.failing[parts[2]] = (status, left - 1)
                    return httpx.Response(status, headers={"Retry-After": "0"}, json={
                        "success": False, "errors": [{"code": 10000 + status, "message": f"fault injected: {status}"}],
                        "messages": [], "result": None})
            if request.method == "PATCH":  # "Update DNS Record" (partial): the given fields change
                import json

                record.update({k: v for k, v in json.loads(request.content).items()
                               if k in ("content", "proxied", "ttl", "name", "type")})
                self.edits.append((parts[2], record["content"]))
            return self._ok(record)
        if len(parts) == 3 and parts[1] == "settings":
            value = self.settings.get(zone, {}).get(parts[2])
            return self._ok({"id": parts[2], "value": value, "editable": True})
        return httpx.Response(404, json={"success": False, "errors": [{"code": 7003, "message": "No route"}],
                                         "messages": [], "result": None})
