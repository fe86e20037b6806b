"""BetterStack Uptime API client: monitors, heartbeats, status pages (JSON:API shapes)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from ops.adapters.http_api import JsonApiClient
from ops.errors import ConfigError, ProviderAPIError

BASE_URL = "https://uptime.betterstack.com/api/v2"
KINDS = ("monitors", "heartbeats", "status-pages")


class BetterStackClient(JsonApiClient):
    provider = "BetterStack API"

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(BASE_URL, token, transport=transport, sleep=sleep, **kwargs)

    @classmethod
    def from_environ(cls, **kwargs: Any) -> BetterStackClient:
        token = os.environ.get("BETTERSTACK_API_TOKEN", "")
        if not token:
            raise ConfigError("BETTERSTACK_API_TOKEN: required to call the BetterStack API but not set")
        return cls(token, **kwargs)

    @staticmethod
    def _check(kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown BetterStack resource kind {kind!r}")

    def create(self, kind: str, attributes: dict[str, Any]) -> dict[str, Any]:
        self._check(kind)
        return dict(self.request("POST", f"/{kind}", json=attributes)["data"])

    def get(self, kind: str, resource_id: str) -> dict[str, Any] | None:
        self._check(kind)
        body = self.get_or_none(f"/{kind}/{resource_id}")
        return None if body is None else dict(body["data"])

    def update(self, kind: str, resource_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        self._check(kind)
        return dict(self.request("PATCH", f"/{kind}/{resource_id}", json=attributes)["data"])

    def delete(self, kind: str, resource_id: str) -> None:
        self._check(kind)
        try:
            self.request("DELETE", f"/{kind}/{resource_id}")
        except ProviderAPIError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise
