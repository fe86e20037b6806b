"""One test per policy: both stacks pass it, and a deliberately broken input fails it, named."""

from __future__ import annotations

from typing import Any

import pytest

from stacks import policies as p
from stacks.plan import Plan, _plain_secret_paths, run_plan

pytestmark = pytest.mark.stacks


def view(type_: str, name: str = "thing", protect: bool = False, **props: Any) -> p.ResourceView:
    return p.ResourceView(type_, name, props, protect)


def both(production_plan: Plan, staging_plan: Plan, policy: str) -> None:
    assert production_plan.policies[policy] == []
    assert staging_plan.policies[policy] == []


def test_servers_in_germany(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "servers-in-germany")
    servers = [r for r in production_plan.resources if r.type == p.SERVER]
    assert {r.props["location"] for r in servers} == {"fsn1", "nbg1"}
    bad = p.servers_in_germany("production", [view(p.SERVER, "app-9", location="hel1")])
    assert bad == ["app-9: location 'hel1' is not in Germany (fsn1, nbg1)"]


def test_data_in_eu(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "data-in-eu")
    moved = run_plan("staging", {"storage": {"jurisdiction": "default"}})
    assert moved.policies["data-in-eu"]
    assert all("jurisdiction is 'default'" in v for v in moved.policies["data-in-eu"])
    assert p.data_stores_in_eu("x", [view(p.DYNAMIC, "neon", region_id="aws-us-east-2",
                                          history_retention_seconds=1)])


def test_no_ingress_to_database_ports(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "no-database-ports")
    for port in ("5432", "6000-6500", "any"):
        rule = {"direction": "in", "protocol": "tcp", "port": port, "source_ips": ["10.0.0.0/8"]}
        assert p.no_database_ports_open("x", [view(p.FIREWALL, "fw", rules=[rule])]), port
    outbound = {"direction": "out", "protocol": "tcp", "port": "5432", "destination_ips": ["0.0.0.0/0"]}
    assert p.no_database_ports_open("x", [view(p.FIREWALL, "fw", rules=[outbound])]) == []


def test_ssh_never_open_to_the_world(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "ssh-not-world")
    rule = {"direction": "in", "protocol": "tcp", "port": "22", "sourceIps": ["::/0"]}
    assert p.ssh_not_open_to_world("x", [view(p.FIREWALL, "fw", rules=[rule])]) == ["fw: SSH open to ::/0"]


def test_cloudflare_ssl_strict_and_tls_12(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "cloudflare-tls")
    settings = {r.props["settingId"]: r.props["value"] for r in production_plan.resources if r.type == p.ZONE_SETTING}
    assert settings["ssl"] == "strict" and settings["min_tls_version"] == "1.2"
    weak = [view(p.ZONE_SETTING, "ssl", settingId="ssl", value="full"),
            view(p.ZONE_SETTING, "tls", settingId="min_tls_version", value="1.0")]
    assert len(p.cloudflare_tls_strict("production", weak)) == 2
    assert p.cloudflare_tls_strict("production", []) != []  # production must manage them


def test_production_data_protected(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "production-protected")
    data = [r for r in production_plan.resources if r.type == p.R2_BUCKET or p._is_neon(r.view())]
    assert len(data) >= 6 and all(r.protect for r in data)
    assert not any(r.protect for r in staging_plan.resources)
    assert p.production_data_protected("production", [view(p.R2_BUCKET, "b", protect=False)])


def test_every_resource_labelled(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "labelled")
    unlabelled = view(p.SERVER, "s", labels={"app": "autoenroll"})
    assert p.labelled("production", [unlabelled]) == ["s: labels lack app=autoenroll and environment=production"]


def test_no_secret_in_plain_text(production_plan: Plan, staging_plan: Plan) -> None:
    both(production_plan, staging_plan, "no-plain-secrets")
    assert {"connection_strings", "heartbeat_url"} <= set(production_plan.secret_outputs)
    user_data = [r for r in production_plan.resources if r.type == p.SERVER]
    assert user_data and all(not r.plain_secret_paths for r in user_data)
    wrapped = {"a": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
                     "value": "PLAN-SECRET-x"}}
    assert _plain_secret_paths(wrapped) == []
    assert _plain_secret_paths({"env": ["ok", "postgres://PLAN-SECRET-x"]}) == ["env[1]"]


def test_replicas_add_a_spread_group_and_a_load_balancer_with_a_health_check() -> None:
    plan = run_plan("staging", {"compute": {"replicas": 3}})
    types = [r.type for r in plan.resources]
    assert types.count(p.SERVER) == 3
    assert "hcloud:index/placementGroup:PlacementGroup" in types
    services = [r for r in plan.resources if r.type == "hcloud:index/loadBalancerService:LoadBalancerService"]
    # One service, 443 as TCP: Cloudflare never connects on 80, and a port-80 service would carry
    # only traffic that skipped Cloudflare to the health check's site.
    assert [(s.props["listenPort"], s.props["destinationPort"], s.props["protocol"]) for s in services] == [
        (443, 443, "tcp")]
    check = services[0].props["healthCheck"]
    # The app's /ready through Caddy, only 200 healthy (the old check, /health on port 80 with any
    # 3xx, took Caddy's HTTP->HTTPS redirect as healthy with the app stopped).
    assert (check["protocol"], check["port"]) == ("http", 80)
    assert check["http"]["path"] == "/ready" and check["http"]["statusCodes"] == ["200"]
    assert check["http"]["domain"] == "lb-health.internal"
    # Every primary's Caddy serves that site, from the private network the load balancer is on.
    primaries = [r for r in plan.resources if r.type == p.SERVER and r.props["labels"]["role"] == "primary"]
    assert len(primaries) == 3
    # One server target per primary (a deploy removes and re-adds one at a time; Hetzner does that
    # only for server targets, not for a label selector's servers).
    targets = [r for r in plan.resources if r.type == "hcloud:index/loadBalancerTarget:LoadBalancerTarget"]
    assert sorted(t.name for t in targets) == ["compute-lb-app-1", "compute-lb-app-2", "compute-lb-app-3"]
    assert all(t.props["type"] == "server" and t.props["usePrivateIp"] for t in targets)
    for server in primaries:
        assert "/etc/caddy/lb-health.caddy" in server.props["userData"]
        assert "Environment=CADDY_LB_HEALTH=/etc/caddy/lb-health.caddy" in server.props["userData"]
        assert len(server.props["userData"].encode()) <= 32 * 1024  # Hetzner's user data limit
    assert plan.passed


def test_firewall_admits_web_only_from_cloudflare(production_plan: Plan) -> None:
    from stacks.data import cloudflare_ranges

    firewall = next(r for r in production_plan.resources if r.type == p.FIREWALL)
    for rule in firewall.props["rules"]:
        if rule.get("port") in ("80", "443"):
            assert tuple(rule["sourceIps"]) == cloudflare_ranges()
