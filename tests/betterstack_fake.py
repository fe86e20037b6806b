"""BetterStack Uptime's API, faked at the HTTP transport with its JSON:API shapes."""

from __future__ import annotations

import json
from typing import Any

import httpx


class FakeBetterStack:
    """BetterStack Uptime API: JSON:API `{"data": {"id", "type", "attributes"}}`."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.next_id = 100

    def add(self, kind: str, attributes: dict[str, Any], *, status: str = "pending") -> dict[str, Any]:
        """A new item of `kind` ("monitors", "heartbeats", ...), as a POST makes it; a monitor's
        read-only status is `status` ("pending" until BetterStack's first checks; "up" seeds one)."""
        self.next_id += 1
        attrs = dict(attributes)
        if kind == "heartbeats":
            attrs["url"] = f"https://uptime.betterstack.com/api/v1/heartbeat/tok{self.next_id}"
        if kind == "monitors":
            attrs["status"] = "paused" if attrs.get("paused") else status
        item = {"id": str(self.next_id), "type": kind[:-1], "attributes": attrs}
        self.items[item["id"]] = item
        return item

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/api/v2/").split("/")
        kind, item_id = parts[0], parts[1] if len(parts) > 1 else None
        body = json.loads(request.content) if request.content else {}
        if request.method == "POST":
            return httpx.Response(201, json={"data": self.add(kind, body)})
        if item_id not in self.items:
            return httpx.Response(404, json={"errors": "Resource not found"})
        if request.method == "GET":
            return httpx.Response(200, json={"data": self.items[item_id]})
        if request.method == "PATCH":
            attrs = self.items[item_id]["attributes"]
            if body.get("paused") is False and attrs.get("status") == "paused":
                attrs["status"] = "pending"  # until its first check, as BetterStack reports a resumed monitor
            attrs.update(body)
            return httpx.Response(200, json={"data": self.items[item_id]})
        del self.items[item_id]
        return httpx.Response(204)
