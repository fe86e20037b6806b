"""TrafficSwitch over Cloudflare DNS (the one Cloudflare client, clients/cloudflare_api.py, on the
official SDK): the app and api records move together to the serving host's address, proxied as
the stack made them.

Both records, always: the api name points at the same host as app, and a failover that moved
only app would leave every API client on the dead host.

Behind a load balancer (replicas > 1) the stack points the records at the load balancer, not at a
host: its address is where the primaries serve, so `serving` reads it as "primary" and a failback
moves the records back to it (to one primary's own address would bypass the load balancer and its
health check, and leave the other primaries idle). A record still at a primary's own address (the
stack before it had a load balancer) is read as "primary" too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ops.adapters.cloud.clients import CloudflareClient
from ops.environment import AppHost, DnsRecords
from ops.errors import ConfigError, ExternalError, ProviderAPIError


def client_from_token(token: str, *, base_url: str | None = None,
                      transport: httpx.BaseTransport | None = None) -> CloudflareClient:
    # 5 attempts: the SDK's 4 retries the switch always had (a 429/503 on one record goes through).
    return CloudflareClient(token, base_url=base_url, transport=transport, max_attempts=5)


class CloudflareDnsSwitch:
    def __init__(self, client: CloudflareClient, dns: DnsRecords, hosts: Mapping[str, AppHost], *,
                 load_balancer_ipv4: str | None = None) -> None:
        self._client, self._dns = client, dns
        # Where a role serves (what `move_to` writes), and every address that means a role (what
        # `serving` reads): the load balancer's, when there is one, stands for the primaries.
        self._address_of_role: dict[str, str] = {"primary": load_balancer_ipv4} if load_balancer_ipv4 else {}
        self._role_of_address: dict[str, str] = {load_balancer_ipv4: "primary"} if load_balancer_ipv4 else {}
        for host in hosts.values():
            if host.address:
                self._address_of_role.setdefault(host.role, host.address)
                self._role_of_address.setdefault(host.address, host.role)
        self._records = dns.switched()

    def _record(self, record_id: str) -> tuple[str, str, bool]:
        record = self._client.dns_record(self._dns.zone_id, record_id)
        if record is None:
            raise ExternalError(f"Cloudflare: no DNS record {record_id} in zone {self._dns.zone_id}")
        return str(record["name"]), str(record["content"]), bool(record["proxied"])

    def _role_of(self, content: str) -> str | None:
        return self._role_of_address.get(content)

    def serving(self) -> str:
        _name, content, _proxied = self._record(self._records["app"])
        role = self._role_of(content)
        if role is None:
            raise ExternalError(f"{self._dns.app_record_name} points at {content}, which is none of this stack's hosts")
        return role

    def records(self) -> dict[str, str]:
        """Where every record the switch moves points: key -> role (the address, if none of the stack's hosts)."""
        out = {}
        for key, record_id in self._records.items():
            _name, content, _proxied = self._record(record_id)
            out[key] = self._role_of(content) or content
        return out

    def _edit(self, key: str, record_id: str, name: str, content: str, proxied: bool) -> None:
        self._client.edit_dns_record(self._dns.zone_id, record_id, name=name, content=content, proxied=proxied,
                                     what=key)

    def move_to(self, role: str, on_edit: Callable[[dict[str, Any]], None] = lambda _e: None) -> str:
        """Every record to `role`'s host; `on_edit` hears of each edit before and after it (the
        failover journals them). When one edit fails (after the SDK's retries), the records already
        moved are put back, so the names are never left split silently; if that fails too, the
        error says the records are split and `ops failover status` shows which."""
        address = self._address_of_role.get(role)
        if address is None:
            raise ConfigError(f"no {role} host with an address in the stack outputs")
        changed: list[str] = []
        moved: list[tuple[str, str, str, str, bool]] = []  # (key, record id, name, old content, proxied)
        for key, record_id in self._records.items():
            name, content, proxied = self._record(record_id)
            if content != address:
                on_edit({"record": key, "name": name, "from": content, "to": address, "state": "editing"})
                try:
                    self._edit(key, record_id, name, address, proxied)
                except ProviderAPIError as exc:
                    exc.message = f"{exc.message}; {self._put_back(moved, on_edit)}"
                    raise
                on_edit({"record": key, "name": name, "from": content, "to": address, "state": "edited"})
                moved.append((key, record_id, name, content, proxied))
            changed.append(f"{name} -> {address}")
        return "Cloudflare DNS: " + ", ".join(changed)

    def _put_back(self, moved: list[tuple[str, str, str, str, bool]],
                  on_edit: Callable[[dict[str, Any]], None]) -> str:
        if not moved:
            return "no record was moved"
        back = []
        for key, record_id, name, old, proxied in reversed(moved):
            try:
                self._edit(key, record_id, name, old, proxied)
            except ProviderAPIError as exc:
                return (f"{name} could not be put back to {old} ({exc.message}): the records are SPLIT; "
                        "`ops failover status` shows them and the command that finishes the switch")
            on_edit({"record": key, "name": name, "from": old, "to": old, "state": "put back"})
            back.append(f"{name} put back to {old}")
        return ", ".join(back) + ": nothing moved"

    def close(self) -> None:
        self._client.close()
