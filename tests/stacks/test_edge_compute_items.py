"""The smaller items of a first `pulumi up`: values the providers take as written."""

from __future__ import annotations

import pytest

from stacks.edge import TXT_CHUNK, txt_content
from stacks.plan import Plan, run_plan
from stacks.policies import DNS_RECORD, ZONE_SETTING

pytestmark = pytest.mark.stacks


def _one(plan: Plan, type_: str, name: str) -> dict[str, object]:
    return next(r.props for r in plan.resources if r.type == type_ and r.name == name)


def test_hsts_uses_the_api_schemas_snake_case(production_plan: Plan) -> None:
    value = _one(production_plan, ZONE_SETTING, "edge-security_header")["value"]
    assert isinstance(value, dict)
    hsts = value["strict_transport_security"]
    assert set(hsts) == {"enabled", "max_age", "include_subdomains", "preload", "nosniff"}


def test_long_txt_values_are_sent_as_255_byte_strings(production_plan: Plan) -> None:
    long = "k=rsa; p=" + "A" * 400
    split = txt_content(long)
    parts = split.split('" "')
    assert len(parts) == 2 and all(len(p.strip('"')) <= TXT_CHUNK for p in parts)
    assert "".join(p.strip('"') for p in parts) == long
    dkim = _one(production_plan, DNS_RECORD, "edge-dkim")["content"]
    assert str(dkim).startswith('"k=rsa; p=')


def test_the_pages_apex_domain_has_a_record(production_plan: Plan) -> None:
    record = _one(production_plan, DNS_RECORD, "edge-pages")
    assert record["name"] == "autoenroll.ie" and record["type"] == "CNAME"
    assert record["content"] == "autoenroll-website.pages.dev" and record["proxied"] is True


def test_the_origin_certificate_covers_app_and_api_and_its_key_stays_secret(production_plan: Plan) -> None:
    cert = _one(production_plan, "cloudflare:index/originCaCertificate:OriginCaCertificate", "edge-origin-cert")
    assert cert["hostnames"] == ["app.autoenroll.ie", "api.autoenroll.ie"] and cert["requestType"] == "origin-ecc"
    assert "origin_tls" in production_plan.secret_outputs
    assert production_plan.policies["no-plain-secrets"] == []


def test_load_balancer_target_waits_for_its_network_attachment() -> None:
    plan = run_plan("production", {"compute": {"replicas": 2}})
    target = next(r for r in plan.resources if r.type == "hcloud:index/loadBalancerTarget:LoadBalancerTarget")
    assert "compute-lb-net" in target.depends_on
    assert plan.policies["fits-the-plan"] == [] and plan.passed


def test_only_cloudflare_reaches_the_origin(production_plan: Plan) -> None:
    # Authenticated Origin Pulls: the hosts' Caddy requires Cloudflare's client certificate, so the
    # load balancer's public address (no firewall there) doesn't bypass Cloudflare.
    assert _one(production_plan, ZONE_SETTING, "edge-tls_client_auth")["value"] == "on"
