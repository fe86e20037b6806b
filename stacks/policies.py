"""Infrastructure policies, as plain functions over the planned resources.

The same functions serve three callers: the unit tests (one test per policy, on the
program run under mocks), `ops plan` (which prints their results), and the CrossGuard
policy pack in `stacks/policy_pack/` for `pulumi preview --policy-pack` where the CLI exists.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks.config import EU_NEON_REGIONS, GERMAN_LOCATIONS

HCLOUD_PREFIX = "hcloud:index/"
SERVER = "hcloud:index/server:Server"
LOAD_BALANCER = "hcloud:index/loadBalancer:LoadBalancer"
FIREWALL = "hcloud:index/firewall:Firewall"
R2_BUCKET = "cloudflare:index/r2Bucket:R2Bucket"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
DYNAMIC = "pulumi-python:dynamic:Resource"
FORBIDDEN_PORTS = (5432, 6379)
WORLD = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class ResourceView:
    type: str
    name: str
    props: Mapping[str, Any]
    protect: bool = False
    plain_secret_paths: tuple[str, ...] = field(default=())  # inputs holding a secret in clear text


def _get(props: Mapping[str, Any], key: str) -> Any:
    """A property by its snake_case name, whichever casing the caller's wire format used."""
    if key in props:
        return props[key]
    head, *rest = key.split("_")
    return props.get(head + "".join(part.title() for part in rest))


def _is_neon(r: ResourceView) -> bool:
    """A Neon project, branch or database (dynamic resources, told apart by their inputs)."""
    keys = set(r.props)
    return r.type == DYNAMIC and bool({"region_id", "min_cu", "database"} & keys)


def _is_neon_project(r: ResourceView) -> bool:
    return r.type == DYNAMIC and "region_id" in r.props and "history_retention_seconds" in r.props


def servers_in_germany(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    return [f"{r.name}: location {r.props.get('location')!r} is not in Germany ({', '.join(GERMAN_LOCATIONS)})"
            for r in resources if r.type in (SERVER, LOAD_BALANCER) and r.props.get("location") not in GERMAN_LOCATIONS]


def data_stores_in_eu(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    out = []
    for r in resources:
        if r.type == R2_BUCKET and r.props.get("jurisdiction") != "eu":
            out.append(f"{r.name}: R2 bucket jurisdiction is {r.props.get('jurisdiction')!r}, not 'eu'")
        if _is_neon_project(r) and r.props.get("region_id") not in EU_NEON_REGIONS:
            out.append(f"{r.name}: Neon region {r.props.get('region_id')!r} is outside the EU")
    return out


def _port_range(port: Any) -> tuple[int, int] | None:
    text = str(port or "any")
    if text == "any":
        return (0, 65535)
    low, _, high = text.partition("-")
    return (int(low), int(high or low))


def _ingress_rules(resources: Sequence[ResourceView]) -> Iterable[tuple[ResourceView, Mapping[str, Any]]]:
    for r in resources:
        if r.type == FIREWALL:
            for rule in r.props.get("rules") or []:
                if rule.get("direction") == "in" and rule.get("protocol") in ("tcp", "udp"):
                    yield r, rule


def no_database_ports_open(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    out = []
    for r, rule in _ingress_rules(resources):
        span = _port_range(rule.get("port"))
        for port in FORBIDDEN_PORTS:
            if span and span[0] <= port <= span[1]:
                out.append(f"{r.name}: ingress rule {rule.get('port')} admits port {port}")
    return out


def ssh_not_open_to_world(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    out = []
    for r, rule in _ingress_rules(resources):
        span = _port_range(rule.get("port"))
        if span and span[0] <= 22 <= span[1]:
            for source in _get(rule, "source_ips") or []:
                if ipaddress.ip_network(source, strict=False).prefixlen == 0:
                    out.append(f"{r.name}: SSH open to {source}")
    return out


def cloudflare_tls_strict(env: str, resources: Sequence[ResourceView]) -> list[str]:
    settings = {_get(r.props, "setting_id"): r.props.get("value")
                for r in resources if r.type == ZONE_SETTING}
    out = []
    if env == "production" and "ssl" not in settings:
        out.append("zone: no `ssl` setting managed (production owns the zone)")
    if "ssl" in settings and settings["ssl"] != "strict":
        out.append(f"zone: ssl is {settings['ssl']!r}, not 'strict'")
    if env == "production" and "min_tls_version" not in settings:
        out.append("zone: no `min_tls_version` setting managed")
    if "min_tls_version" in settings and float(str(settings["min_tls_version"])) < 1.2:
        out.append(f"zone: min_tls_version is {settings['min_tls_version']}, below 1.2")
    return out


def production_data_protected(env: str, resources: Sequence[ResourceView]) -> list[str]:
    if env != "production":
        return []
    out = []
    for r in resources:
        if (r.type == R2_BUCKET or _is_neon(r)) and not r.protect:
            out.append(f"{r.name}: production data resource without protect=True")
        if r.type == SERVER and not (_get(r.props, "delete_protection") and _get(r.props, "rebuild_protection")):
            out.append(f"{r.name}: production server without delete and rebuild protection")
    return out


def labelled(env: str, resources: Sequence[ResourceView]) -> list[str]:
    out = []
    for r in resources:
        if r.type.startswith(HCLOUD_PREFIX) and "labels" in _labellable(r.type):
            labels = r.props.get("labels") or {}
            if labels.get("app") != "autoenroll" or labels.get("environment") != env:
                out.append(f"{r.name}: labels lack app=autoenroll and environment={env}")
        if r.type == DNS_RECORD and f"environment={env}" not in str(r.props.get("comment", "")):
            out.append(f"{r.name}: DNS record comment lacks environment={env}")
        if r.type == R2_BUCKET and f"-{env}-" not in str(r.props.get("name", "")):
            out.append(f"{r.name}: bucket name {r.props.get('name')!r} does not carry the environment")
    return out


def _labellable(type_: str) -> set[str]:
    # hcloud resources that accept labels (subnets, targets and services don't).
    names = ("server:Server", "firewall:Firewall", "network:Network", "sshKey:SshKey",
             "placementGroup:PlacementGroup", "loadBalancer:LoadBalancer")
    return {"labels"} if any(type_.endswith(n) for n in names) else set()


def no_plain_secrets(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    return [f"{r.name}: secret in clear text at {path}" for r in resources for path in r.plain_secret_paths]


Policy = Callable[[str, Sequence[ResourceView]], list[str]]
POLICIES: dict[str, tuple[str, Policy]] = {
    "servers-in-germany": ("every server and load balancer in fsn1 or nbg1", servers_in_germany),
    "data-in-eu": ("every data store (R2, Neon) in the EU", data_stores_in_eu),
    "no-database-ports": ("no ingress to 5432 or 6379", no_database_ports_open),
    "ssh-not-world": ("SSH never open to the world", ssh_not_open_to_world),
    "cloudflare-tls": ("Cloudflare SSL strict and minimum TLS >= 1.2", cloudflare_tls_strict),
    "production-protected": ("every production data resource protected", production_data_protected),
    "labelled": ("every resource labelled with environment and app", labelled),
    "no-plain-secrets": ("no secret in plain text", no_plain_secrets),
}


def evaluate(env: str, resources: Sequence[ResourceView]) -> dict[str, list[str]]:
    """Each policy's violations (an empty list means it passed)."""
    return {name: fn(env, resources) for name, (_desc, fn) in POLICIES.items()}
