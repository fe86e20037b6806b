"""Stripe's API for webhook endpoints, faked at the HTTP transport with the documented shapes.

Form-encoded requests (`enabled_events[]` repeated), Bearer auth, JSON answers, the signing
secret returned only by the create, errors as `{"error": {"type", "message"}}` with a
`Request-Id` header.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import parse_qs

import httpx

# Stripe's version names: a release date and, since 2024-09-30, the release's name.
API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")


class FakeStripe:
    def __init__(self, api_key: str = "sk_test_fake") -> None:
        self.api_key = api_key
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def add(self, url: str, events: list[str], status: str = "enabled") -> dict[str, Any]:
        endpoint_id = "we_" + secrets.token_hex(12)
        self.endpoints[endpoint_id] = {
            "id": endpoint_id, "object": "webhook_endpoint", "api_version": None, "application": None,
            "created": 1763800000, "description": None, "enabled_events": events, "livemode": False,
            "metadata": {}, "status": status, "url": url,
        }
        return {**self.endpoints[endpoint_id], "secret": "whsec_" + secrets.token_urlsafe(24)}

    def _error(self, status: int, kind: str, message: str) -> httpx.Response:
        return httpx.Response(status, json={"error": {"type": kind, "message": message}},
                              headers={"Request-Id": "req_" + secrets.token_hex(7)})

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "invalid_request_error", "Invalid API Key provided")
        path = request.url.path.removeprefix("/v1/webhook_endpoints").strip("/")
        form = parse_qs(request.content.decode()) if request.content else {}
        version = form.get("api_version", [None])[0]
        if version is not None and not API_VERSION.fullmatch(version):
            return self._error(400, "invalid_request_error", f"Invalid Stripe API version: {version}")
        if request.method == "POST" and not path:
            created = self.add(form["url"][0], form.get("enabled_events[]", []))
            # Without api_version, the endpoint's events follow the account's default version.
            self.endpoints[created["id"]].update(description=form.get("description", [None])[0],
                                                 api_version=version)
            return httpx.Response(200, json={**created, **self.endpoints[created["id"]]})
        if request.method == "GET" and not path:
            return httpx.Response(200, json={"object": "list", "url": "/v1/webhook_endpoints", "has_more": False,
                                             "data": list(self.endpoints.values())})
        if path not in self.endpoints:
            return self._error(404, "invalid_request_error", f"No such webhook endpoint: '{path}'")
        endpoint = self.endpoints[path]
        if request.method == "GET":
            return httpx.Response(200, json=endpoint)
        if request.method == "POST":
            for key in ("url", "description"):
                if key in form:
                    endpoint[key] = form[key][0]
            if "enabled_events[]" in form:
                endpoint["enabled_events"] = form["enabled_events[]"]
            if "api_version" in form:  # not an update parameter: Stripe refuses it
                return self._error(400, "invalid_request_error", "Received unknown parameter: api_version")
            if "disabled" in form:
                endpoint["status"] = "disabled" if form["disabled"][0] == "true" else "enabled"
            return httpx.Response(200, json=endpoint)
        del self.endpoints[path]
        return httpx.Response(200, json={"id": path, "object": "webhook_endpoint", "deleted": True})
