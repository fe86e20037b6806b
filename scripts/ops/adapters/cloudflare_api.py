"""Cloudflare API v4 client, read-only: DNS records and zone settings, for `ops checklist`.

Answers come in Cloudflare's envelope `{"success", "errors": [{code, message}], "result"}`.
"""

from __future__ import annotations

from typing import Any

from ops.adapters.http_api import ProviderClient

BASE_URL = "https://api.cloudflare.com/client/v4"


class CloudflareClient(ProviderClient):
    provider = "Cloudflare API"
    base_url = BASE_URL
    base_url_variable = "OPS_CLOUDFLARE_API_URL"
    credential_variable = "CLOUDFLARE_API_TOKEN"
    credential_hint = "a token with Zone:Read and DNS:Read on the zone is enough"

    def dns_records(self, zone_id: str, name: str, record_type: str) -> list[dict[str, Any]]:
        body = self.request("GET", f"/zones/{zone_id}/dns_records",
                            params={"name.exact": name, "type": record_type, "per_page": 100})
        return list(body["result"])

    def zone_setting(self, zone_id: str, setting_id: str) -> Any:
        return self.request("GET", f"/zones/{zone_id}/settings/{setting_id}")["result"]["value"]
