"""Edge: Cloudflare zone security settings, proxied DNS, Mailjet mail records, WAF, rate and cache
rules, the Origin CA certificate the hosts serve, and the Cloudflare Pages project for the marketing site.

Zone-wide settings and rulesets belong to one stack only (`edge.manage_zone`, production by
default): staging shares the zone and manages just its own records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_cloudflare as cloudflare
import pulumi_tls as tls

from stacks import plans
from stacks.config import EdgeConfig, StackNames
from stacks.labels import comment

FREE_MANAGED_RULESET = "77454fe2d30c4220b5701f6fdfb893ba"  # Cloudflare Free Managed Ruleset (all plans)
STATUS_PAGE_TARGET = "statuspage.betteruptime.com"
UPLOAD_PATH = "/api/uploads"
TXT_CHUNK = 255  # a DNS TXT character-string holds at most 255 bytes (RFC 1035 3.3)
ORIGIN_CA_VALIDITY_DAYS = 5475  # 15 years, the longest Cloudflare issues: nothing to renew on the hosts


@dataclass(frozen=True)
class EdgeArgs:
    edge: EdgeConfig
    names: StackNames
    origin_ipv4: pulumi.Input[str]


def zone_settings(edge: EdgeConfig) -> dict[str, object]:
    """The seed's security configuration: SSL Full (strict), TLS >= 1.2, TLS 1.3, HTTPS only, HSTS."""
    return {
        "ssl": "strict",
        "min_tls_version": edge.min_tls_version,
        "tls_1_3": "on",
        "always_use_https": "on",
        "automatic_https_rewrites": "on",
        # Authenticated Origin Pulls: Cloudflare shows its client certificate to the origin, whose
        # Caddy requires it (stacks/host_role.py), so nothing reaches the app around Cloudflare.
        "tls_client_auth": "on",
        # `value` is free-form JSON, passed to the API as written: the API schema's snake_case keys
        # (camelCase is stored as given and never converges: pulumi/pulumi-cloudflare#1579).
        "security_header": {"strict_transport_security": {
            "enabled": True, "max_age": edge.hsts_max_age, "include_subdomains": True,
            "preload": False, "nosniff": True}},
    }


def not_the_site(edge: EdgeConfig, expression: str) -> str:
    """`expression`, limited to the app's hosts: zone rules apply to every hostname of the zone, and the
    marketing site (Cloudflare Pages, at the apex) is not the app. Without a Pages site, unchanged."""
    pages = edge.pages
    if pages is None:
        return expression
    return f'(http.host ne "{pages.domain}") and ({expression})'


def waf_custom_rules(edge: EdgeConfig) -> list[Any]:
    return [
        # Whole zone on purpose: no host of ours, the site included, serves these paths.
        {"description": "Block probes for secrets and foreign CMS paths", "action": "block", "enabled": True,
         "expression": '(http.request.uri.path contains "/.env") or (http.request.uri.path contains "/.git") '
                       'or starts_with(http.request.uri.path, "/wp-")'},
        {"description": "Only the methods the API serves", "action": "block", "enabled": True,
         "expression": not_the_site(edge, 'not http.request.method in {"GET" "HEAD" "POST" "PUT" "PATCH" '
                                            '"DELETE" "OPTIONS"}')},
    ]


def rate_limit_rule(edge: EdgeConfig, phase: str) -> Any:
    """The upload limit, shaped to the phase's Cloudflare plan: the longest period and timeout up
    to a minute that the plan offers (Free: 10 s), the per-minute rate scaled to that period, and
    only the path in the expression (no plan below Enterprise may match on the method; the route
    takes only POSTs anyway)."""
    period = plans.largest_at_most(phase, "cloudflare", "rate_limit_periods", 60)
    timeout = plans.largest_at_most(phase, "cloudflare", "rate_limit_mitigation_timeouts", 60)
    per_minute = edge.upload_rate_limit_per_minute
    return {
        "description": f"Uploads: at most {per_minute} per minute per IP",
        "action": "block", "enabled": True,
        # Not limited to the app's hosts (not_the_site): Free allows only the path here, and the site
        # on Pages has no such path.
        "expression": f'(http.request.uri.path eq "{UPLOAD_PATH}")',
        "ratelimit": {"characteristics": ["ip.src", "cf.colo.id"], "period": period,
                      "requests_per_period": max(1, math.ceil(per_minute * period / 60)),
                      "mitigation_timeout": timeout},
    }


def txt_content(text: str) -> str:
    """A TXT value as quoted character-strings of at most 255 bytes each.

    Cloudflare stores a longer value split anyway, so an unsplit one reads back different and
    diffs for ever (terraform-provider-cloudflare#6238)."""
    return " ".join(f'"{text[i:i + TXT_CHUNK]}"' for i in range(0, len(text), TXT_CHUNK))


def cache_rules(edge: EdgeConfig) -> list[Any]:
    """Match the app's headers: /static/* cached (origin says immutable), everything else bypassed.
    Only on the app's hosts: the marketing site on Pages keeps Cloudflare's caching."""
    return [
        {"description": "Static assets: cache, respect origin TTL", "action": "set_cache_settings",
         "enabled": True, "expression": not_the_site(edge, 'starts_with(http.request.uri.path, "/static/")'),
         "action_parameters": {"cache": True, "edge_ttl": {"mode": "respect_origin"}}},
        {"description": "Everything else may hold tenant data: never cache", "action": "set_cache_settings",
         "enabled": True, "expression": not_the_site(edge, 'not starts_with(http.request.uri.path, "/static/")'),
         "action_parameters": {"cache": False}},
    ]


class Edge(pulumi.ComponentResource):
    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:edge:Edge", name, None, opts)
        names = args.names
        e = args.edge
        child = pulumi.ResourceOptions(parent=self)
        note = comment(names)

        def record(key: str, record_name: str, type_: str, content: pulumi.Input[str],
                   proxied: bool) -> cloudflare.DnsRecord:
            return cloudflare.DnsRecord(f"{name}-{key}", zone_id=e.zone_id, name=record_name, type=type_,
                                        content=content, ttl=1, proxied=proxied, comment=note, opts=child)

        self.records = {
            "app": record("app", names.fqdn(e.app_host), "A", args.origin_ipv4, True),
            "api": record("api", names.fqdn(e.api_host), "A", args.origin_ipv4, True),
        }
        if e.manage_zone:
            self.records["status"] = record("status", names.fqdn(e.status_host), "CNAME", STATUS_PAGE_TARGET, False)
            spf = txt_content("v=spf1 include:spf.mailjet.com ~all")
            self.records["spf"] = record("spf", names.domain, "TXT", spf, False)
            self.records["dkim"] = record("dkim", f"{e.mailjet_dkim_selector}._domainkey.{names.domain}", "TXT",
                                          txt_content(e.mailjet_dkim_value), False)
            dmarc = txt_content(f"v=DMARC1; p={e.dmarc_policy}; rua=mailto:dmarc@{names.domain}")
            self.records["dmarc"] = record("dmarc", f"_dmarc.{names.domain}", "TXT", dmarc, False)
            for setting_id, value in zone_settings(e).items():
                cloudflare.ZoneSetting(f"{name}-{setting_id}", zone_id=e.zone_id, setting_id=setting_id, value=value,
                                       opts=child)
            cloudflare.Ruleset(f"{name}-waf-managed", zone_id=e.zone_id, kind="zone", name="managed WAF",
                               phase="http_request_firewall_managed",
                               rules=[cast(Any, {"description": "Cloudflare Free Managed Ruleset", "action": "execute",
                                       "expression": "true", "enabled": True,
                                       "action_parameters": {"id": FREE_MANAGED_RULESET}})], opts=child)
            cloudflare.Ruleset(f"{name}-waf-custom", zone_id=e.zone_id, kind="zone", name="custom WAF",
                               phase="http_request_firewall_custom", rules=waf_custom_rules(e), opts=child)
            cloudflare.Ruleset(f"{name}-ratelimit", zone_id=e.zone_id, kind="zone", name="rate limits",
                               phase="http_ratelimit", rules=[rate_limit_rule(e, names.phase)], opts=child)
            cloudflare.Ruleset(f"{name}-cache", zone_id=e.zone_id, kind="zone", name="cache rules",
                               phase="http_request_cache_settings", rules=cache_rules(e), opts=child)
        # The hosts' certificate: Cloudflare Origin CA, trusted by Cloudflare for SSL "Full (strict)"
        # (stacks/host_role.py `origin_tls_snippet` says why not ACME). The key is made here and kept
        # as a secret in state; `ops deploy` writes both to the hosts over SSH, like the app's env file.
        key = tls.PrivateKey(f"{name}-origin-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        origin_hosts = [names.fqdn(e.app_host), names.fqdn(e.api_host)]
        csr = tls.CertRequest(f"{name}-origin-csr", private_key_pem=key.private_key_pem, dns_names=origin_hosts,
                              subject={"common_name": origin_hosts[0], "organization": "AutoEnroll"}, opts=child)
        certificate = cloudflare.OriginCaCertificate(
            f"{name}-origin-cert", csr=csr.cert_request_pem, hostnames=origin_hosts, request_type="origin-ecc",
            requested_validity=ORIGIN_CA_VALIDITY_DAYS, opts=child)
        self.origin_tls: pulumi.Output[dict[str, Any]] = pulumi.Output.secret(pulumi.Output.all(
            certificate.certificate, key.private_key_pem).apply(lambda v: {"certificate": v[0], "private_key": v[1]}))
        if e.pages is not None:
            p = e.pages
            cors: Any = {"CORS_ORIGIN": {"type": "plain_text", "value": f"https://{p.domain}"}}
            project = cloudflare.PagesProject(
                f"{name}-pages", account_id=e.account_id, name=p.project_name, production_branch=p.production_branch,
                build_config=cast(Any, {"build_command": "npm run build", "destination_dir": "dist", "root_dir": ""}),
                deployment_configs=cast(Any, {
                    "production": {"compatibility_date": "2024-01-01", "env_vars": cors},
                    "preview": {"compatibility_date": "2024-01-01",
                                "env_vars": {"CORS_ORIGIN": {"type": "plain_text", "value": "http://localhost:4321"}}},
                }),
                source=cast(Any, {"type": "github", "config": {"owner": p.github_owner, "repo_name": p.github_repo,
                                                     "production_branch": p.production_branch,
                                                     "pr_comments_enabled": True}}),
                opts=child)
            cloudflare.PagesDomain(f"{name}-pages-domain", account_id=e.account_id, project_name=project.name,
                                   name=p.domain, opts=child)
            # A custom domain on Pages serves only once its name points at the project; at the apex
            # that is a CNAME, flattened by Cloudflare (so it coexists with the mail TXT records).
            self.records["pages"] = record("pages", p.domain, "CNAME", project.subdomain, True)
        self.register_outputs({"zone_id": e.zone_id,
                               "records": {k: r.id for k, r in self.records.items()}})
