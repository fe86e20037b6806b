"""Cloudflare API v4 client, read-only: DNS records and zone settings, for `ops checklist`.

Answers come in Cloudflare's envelope `{"success", "errors": [{code, message}], "result"}`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import httpx

from ops.adapters.http_api import JsonApiClient
from ops.errors import ConfigError

BASE_URL = "https://api.cloudflare.com/client/v4"


class CloudflareClient(JsonApiClient):
    provider = "Cloudflare API"

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        super().__init__(BASE_URL, token, transport=transport, sleep=sleep, **kwargs)

    @classmethod
    def from_environ(cls, **kwargs: Any) -> CloudflareClient:
        token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
        if not token:
            raise ConfigError("CLOUDFLARE_API_TOKEN: required to read Cloudflare but not set",
                              hint="a token with Zone:Read and DNS:Read on the zone is enough")
        return cls(token, **kwargs)

    def dns_records(self, zone_id: str, name: str, record_type: str) -> list[dict[str, Any]]:
        body = self.request("GET", f"/zones/{zone_id}/dns_records",
                            params={"name.exact": name, "type": record_type, "per_page": 100})
        return list(body["result"])

    def zone_setting(self, zone_id: str, setting_id: str) -> Any:
        return self.request("GET", f"/zones/{zone_id}/settings/{setting_id}")["result"]["value"]
