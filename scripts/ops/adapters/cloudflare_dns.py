"""TrafficSwitch over Cloudflare DNS (the official `cloudflare` SDK): the app and api records
move together to the serving host's address, proxied as the stack made them.

Both records, always: the api name points at the same host as app, and a failover that moved
only app would leave every API client on the dead host.
"""

from __future__ import annotations

from collections.abc import Mapping

import cloudflare
import httpx

from ops.environment import AppHost, DnsRecords
from ops.errors import ConfigError, ExternalError, ProviderAPIError

BASE_URL = "https://api.cloudflare.com/client/v4"


def client_from_token(token: str, *, base_url: str | None = None,
                      transport: httpx.BaseTransport | None = None) -> cloudflare.Cloudflare:
    http = httpx.Client(transport=transport, timeout=15) if transport is not None else None
    return cloudflare.Cloudflare(api_token=token, base_url=base_url or BASE_URL, http_client=http, max_retries=4)


class CloudflareDnsSwitch:
    def __init__(self, client: cloudflare.Cloudflare, dns: DnsRecords, hosts: Mapping[str, AppHost]) -> None:
        self._client, self._dns = client, dns
        self._address_of_role: dict[str, str] = {}
        for host in hosts.values():
            if host.address:
                self._address_of_role.setdefault(host.role, host.address)
        self._records = dns.switched()

    def _record(self, record_id: str) -> tuple[str, str, bool]:
        try:
            record = self._client.dns.records.get(record_id, zone_id=self._dns.zone_id)
        except cloudflare.APIError as exc:
            raise ProviderAPIError(f"Cloudflare API GET dns record {record_id}: {exc.message[:200]}",
                                   status=getattr(exc, "status_code", None)) from None
        if record is None:
            raise ExternalError(f"Cloudflare: no DNS record {record_id} in zone {self._dns.zone_id}")
        return str(record.name), str(record.content), bool(record.proxied)

    def serving(self) -> str:
        _name, content, _proxied = self._record(self._records["app"])
        for role, address in self._address_of_role.items():
            if address == content:
                return str(role)
        raise ExternalError(f"{self._dns.app_record_name} points at {content}, which is none of this stack's hosts")

    def move_to(self, role: str) -> str:
        address = self._address_of_role.get(role)
        if address is None:
            raise ConfigError(f"no {role} host with an address in the stack outputs")
        changed = []
        for key, record_id in self._records.items():
            name, content, proxied = self._record(record_id)
            if content != address:
                try:
                    # ttl 1 = automatic, which a proxied record requires.
                    self._client.dns.records.edit(record_id, zone_id=self._dns.zone_id, name=name, type="A",
                                                  content=address, proxied=proxied, ttl=1)
                except cloudflare.APIError as exc:
                    raise ProviderAPIError(f"Cloudflare API PATCH dns record {record_id} ({key}): "
                                           f"{exc.message[:200]}", status=getattr(exc, "status_code", None)) from None
            changed.append(f"{name} -> {address}")
        return "Cloudflare DNS: " + ", ".join(changed)

    def close(self) -> None:
        self._client.close()
