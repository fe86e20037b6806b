"""The zone-wide rules are the app's: they must not reach the marketing site (Cloudflare Pages at the apex)."""

from __future__ import annotations

import pytest

from stacks.plan import Plan

pytestmark = pytest.mark.stacks
RULESET = "cloudflare:index/ruleset:Ruleset"


def _rules(plan: Plan, phase: str) -> list[dict[str, object]]:
    ruleset = next(r for r in plan.resources if r.type == RULESET and r.props.get("phase") == phase)
    return list(ruleset.props["rules"])


def test_cache_and_method_rules_leave_the_pages_site_alone(production_plan: Plan) -> None:
    site = production_plan.config.edge.pages
    assert site is not None and site.domain == production_plan.config.domain  # the site is at the apex
    scoped = f'(http.host ne "{site.domain}") and ('
    for rule in _rules(production_plan, "http_request_cache_settings"):
        assert str(rule["expression"]).startswith(scoped), rule  # "never cache" would disable the site's CDN
    # The rate limit may name only the path on Free, and the site has no /api/uploads.
    assert _rules(production_plan, "http_ratelimit")[0]["expression"] == '(http.request.uri.path eq "/api/uploads")'
    custom = _rules(production_plan, "http_request_firewall_custom")
    methods = next(r for r in custom if "method" in str(r["expression"]))
    assert str(methods["expression"]).startswith(scoped)
    assert production_plan.policies["fits-the-plan"] == []
