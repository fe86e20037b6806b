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

    def __call__(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.removeprefix("/api/v2/").split("/")
        kind, item_id = parts[0], parts[1] if len(parts) > 1 else None
        body = json.loads(request.content) if request.content else {}
        if request.method == "POST":
            self.next_id += 1
            attrs = dict(body)
            if kind == "heartbeats":
                attrs["url"] = f"https://uptime.betterstack.com/api/v1/heartbeat/tok{self.next_id}"
            if kind == "monitors":
                attrs["status"] = "pending"  # read-only; BetterStack sets it after the first checks
            self.items[str(self.next_id)] = {"id": str(self.next_id), "type": kind[:-1], "attributes": attrs}
            return httpx.Response(201, json={"data": self.items[str(self.next_id)]})
        if item_id not in self.items:
            return httpx.Response(404, json={"errors": "Resource not found"})
        if request.method == "GET":
            return httpx.Response(200, json={"data": self.items[item_id]})
        if request.method == "PATCH":
            self.items[item_id]["attributes"].update(body)
            return httpx.Response(200, json={"data": self.items[item_id]})
        del self.items[item_id]
        return httpx.Response(204)
