"""BetterStack Uptime API client: monitors, heartbeats, status pages (JSON:API shapes)."""

from __future__ import annotations

import contextlib
from typing import Any

from clients.errors import NotFound
from clients.http_api import ProviderClient

BASE_URL = "https://uptime.betterstack.com/api/v2"
KINDS = ("monitors", "heartbeats", "status-pages")


class BetterStackClient(ProviderClient):
    provider = "BetterStack API"
    base_url = BASE_URL
    base_url_variable = "OPS_BETTERSTACK_API_URL"
    credential_variable = "BETTERSTACK_API_TOKEN"

    @staticmethod
    def _check(kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown BetterStack resource kind {kind!r}")

    def create(self, kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
        self._check(kind)
        return dict(self._send("POST", f"/{kind}", json=attributes)["data"])

    def get(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        self._check(kind)
        body = self.get_or_none(f"/{kind}/{resource_id}")
        return None if body is None else dict(body["data"])

    def update(self, kind: str, resource_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        self._check(kind)
        return dict(self._send("PATCH", f"/{kind}/{resource_id}", json=attributes)["data"])

    def delete(self, kind: str, resource_id: str) -> None:
        self._check(kind)
        with contextlib.suppress(NotFound):  # already gone is what we wanted
            self._send("DELETE", f"/{kind}/{resource_id}")
