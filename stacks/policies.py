"""Infrastructure policies, as plain functions over the planned resources.

The same functions serve three callers: the unit tests (one test per policy, on the
program run under mocks), `ops plan` (which prints their results), and the CrossGuard
policy pack in `stacks/policy_pack/` for `pulumi preview --policy-pack` where the CLI exists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stacks import plans
from stacks.config import EU_NEON_REGIONS, GERMAN_LOCATIONS, StackConfig

HCLOUD_PREFIX = "hcloud:index/"
SERVER = "hcloud:index/server:Server"
LOAD_BALANCER = "hcloud:index/loadBalancer:LoadBalancer"
FIREWALL = "hcloud:index/firewall:Firewall"
R2_BUCKET = "cloudflare:index/r2Bucket:R2Bucket"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
RULESET = "cloudflare:index/ruleset:Ruleset"
PLACEMENT_GROUP = "hcloud:index/placementGroup:PlacementGroup"
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
    """A Neon project, branch, database or read replica (dynamic resources, told apart by their inputs)."""
    keys = set(r.props)
    return r.type == DYNAMIC and bool({"region_id", "min_cu", "database", "endpoint_type"} & keys)


def _is_read_replica(r: ResourceView) -> bool:
    return r.type == DYNAMIC and r.props.get("endpoint_type") == "read_only"


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


FIELD = re.compile(r"\b(?:http|cf|ip|ssl|raw)\.[a-z0-9_.]*[a-z0-9_]")


def _phase(resources: Sequence[ResourceView]) -> str:
    """The stack's phase, from the `phase` label every labelled hcloud resource carries."""
    for r in resources:
        labels = r.props.get("labels") or {}
        if r.type.startswith(HCLOUD_PREFIX) and labels.get("phase"):
            return str(labels["phase"])
    return "pre-revenue"


def _whole(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def fits_the_plan(_env: str, resources: Sequence[ResourceView]) -> list[str]:
    """Every setting that a provider's plan limits, checked against the phase's plan
    (stacks/data/plans.json); each violation names the resource, the setting and the limit."""
    phase = _phase(resources)
    out: list[str] = []

    def over(r: ResourceView, setting: str, value: Any, limit: plans.Limit) -> None:
        out.append(f"{r.name}: {setting} = {_whole(value)!r} is outside the {phase} plan: limit {limit}")

    def rules_of(r: ResourceView) -> list[Mapping[str, Any]]:
        return list(r.props.get("rules") or [])

    rulesets = {str(r.props.get("phase")): r for r in resources if r.type == RULESET}
    if (rl := rulesets.get("http_ratelimit")) is not None:
        count = plans.limit(phase, "cloudflare", "rate_limit_rules")
        if len(rules_of(rl)) > int(count.value):
            over(rl, "number of rate limiting rules", len(rules_of(rl)), count)
        periods = plans.limit(phase, "cloudflare", "rate_limit_periods")
        timeouts = plans.limit(phase, "cloudflare", "rate_limit_mitigation_timeouts")
        fields = plans.limit(phase, "cloudflare", "rate_limit_fields")
        characteristics = plans.limit(phase, "cloudflare", "rate_limit_characteristics")
        for index, rule in enumerate(rules_of(rl)):
            limits = rule.get("ratelimit") or {}
            where = f"rules[{index}]"
            if _whole(limits.get("period")) not in periods.value:
                over(rl, f"{where}.ratelimit.period", limits.get("period"), periods)
            timeout = _get(limits, "mitigation_timeout")
            if _whole(timeout) not in timeouts.value:
                over(rl, f"{where}.ratelimit.mitigation_timeout", timeout, timeouts)
            for name in sorted(set(FIELD.findall(str(rule.get("expression", "")))) - set(fields.value)):
                over(rl, f"{where}.expression field", name, fields)
            for name in sorted(set(limits.get("characteristics") or []) - set(characteristics.value)):
                over(rl, f"{where}.ratelimit.characteristics", name, characteristics)
    for phase_name, key in (("http_request_firewall_custom", "custom_rules"),
                            ("http_request_cache_settings", "cache_rules")):
        if (ruleset := rulesets.get(phase_name)) is not None:
            count = plans.limit(phase, "cloudflare", key)
            if len(rules_of(ruleset)) > int(count.value):
                over(ruleset, f"number of {key.replace('_', ' ')}", len(rules_of(ruleset)), count)

    protected = plans.limit(phase, "neon", "protected_branches")
    never = plans.limit(phase, "neon", "can_disable_suspend")
    history = plans.limit(phase, "neon", "max_history_seconds")
    protected_branches = [r for r in resources
                          if r.type == DYNAMIC and "min_cu" in r.props and r.props.get("protected")]
    for r in protected_branches[int(protected.value):]:
        over(r, "protected", True, protected)
    can_set = plans.limit(phase, "neon", "can_set_suspend_timeout")
    replicas = plans.limit(phase, "neon", "read_replicas")  # per project; null: no limit stated
    made = [r for r in resources if _is_read_replica(r)]
    if replicas.value is not None and len(made) > int(replicas.value):
        over(made[int(replicas.value)], "read replicas in the project", len(made), replicas)
    for r in resources:
        if r.type == DYNAMIC and "min_cu" in r.props and _whole(r.props.get("suspend_timeout_seconds")) == -1 \
                and not never.value:
            over(r, "suspend_timeout_seconds (-1: never suspend)", -1, never)
        if r.type == DYNAMIC and "min_cu" in r.props and r.props.get("suspend_timeout_seconds") is not None \
                and not can_set.value:
            over(r, "suspend_timeout_seconds", r.props.get("suspend_timeout_seconds"), can_set)
        if _is_read_replica(r) and r.props.get("suspend_timeout_seconds") is not None and not can_set.value:
            over(r, "suspend_timeout_seconds", r.props.get("suspend_timeout_seconds"), can_set)
        if _is_neon_project(r) and float(r.props.get("history_retention_seconds") or 0) > float(history.value):
            over(r, "history_retention_seconds", r.props.get("history_retention_seconds"), history)
        if r.type == DYNAMIC and r.props.get("kind") == "monitors":
            frequency = plans.limit(phase, "betterstack", "min_check_frequency_seconds")
            value = (r.props.get("attributes") or {}).get("check_frequency")
            if value is not None and float(value) < float(frequency.value):
                over(r, "attributes.check_frequency", value, frequency)

    spread = plans.limit(phase, "hetzner", "spread_group_servers")
    in_spread = [r for r in resources if r.type == SERVER and _get(r.props, "placement_group_id") is not None]
    if len(in_spread) > int(spread.value):
        group = next((r for r in resources if r.type == PLACEMENT_GROUP), in_spread[0])
        over(group, "servers in the spread placement group", len(in_spread), spread)
    keys: dict[str, str] = {}
    unique = plans.limit(phase, "hetzner", "ssh_key_unique_per_project")
    for r in resources:
        if r.type == "hcloud:index/sshKey:SshKey":
            key = " ".join(str(_get(r.props, "public_key") or "").split()[:2])
            if key in keys and unique.value:
                over(r, "public_key (same key as " + keys[key] + ")", key[:24] + "...", unique)
            keys.setdefault(key, r.name)
    return out


def cache_fits_the_plan(config: StackConfig) -> list[str]:
    """The Redis database's plan against what the stack needs of it: TLS, unless the stack says
    `cache.allow_plaintext` (which production cannot: stacks/config.py). Part of fits-the-plan, from
    the config rather than the resources: Redis Cloud is not a Pulumi resource here (stacks/cache.py),
    so CrossGuard, which sees only resources, cannot run this check; `ops plan` and the tests do."""
    tls = plans.plan_limit("redis_cloud", config.cache.plan, "tls")
    if tls.value or config.cache.allow_plaintext:
        return []
    return [f"cache: plan = {config.cache.plan!r} has no TLS, and {config.environment} requires rediss:// "
            f"(REDIS_URL): limit {tls}" + ("" if config.is_production else "; or set cache.allow_plaintext")]


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
    "fits-the-plan": ("every resource within the limits of its provider's plan in the stack's phase", fits_the_plan),
}


def evaluate(env: str, resources: Sequence[ResourceView]) -> dict[str, list[str]]:
    """Each policy's violations (an empty list means it passed)."""
    return {name: fn(env, resources) for name, (_desc, fn) in POLICIES.items()}
