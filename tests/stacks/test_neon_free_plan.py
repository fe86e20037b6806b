"""Neon's Free plan refuses an explicit scale-to-zero delay: on the pre-revenue phase the stack sends none."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from stacks.plan import Plan, run_plan
from stacks.providers import neon as neon_provider
from tests.stacks.test_providers import FakeNeon, serve_neon_fake

pytestmark = pytest.mark.stacks


class FreePlanNeon(FakeNeon):
    """Answers as Neon does on Free (neondatabase/neon#4915): any suspend_timeout_seconds is refused."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        endpoints = list(body.get("endpoints") or []) + ([body["endpoint"]] if "endpoint" in body else [])
        if any("suspend_timeout_seconds" in e for e in endpoints):
            self.requests.append((request.method, request.url.path, body))
            return httpx.Response(400, json={"code": "", "message": "suspend interval changing is not allowed for "
                                                                    "your account"})
        return super().__call__(request)


@pytest.fixture()
def free_neon(monkeypatch: pytest.MonkeyPatch) -> FreePlanNeon:
    fake = FreePlanNeon()
    serve_neon_fake(monkeypatch, fake)
    return fake


def _branch_props(plan: Plan, name: str) -> dict[str, Any]:
    resource = next(r for r in plan.resources if r.name == name)
    return {k: v for k, v in resource.props.items() if v is not None}


def test_the_pre_revenue_stacks_ask_for_no_suspend_timeout(staging_plan: Plan, production_plan: Plan) -> None:
    assert staging_plan.config.database.suspend_timeout_seconds is None
    assert production_plan.config.database.suspend_timeout_seconds is None
    for plan in (staging_plan, production_plan):
        for resource in plan.resources:
            if "min_cu" in resource.props:
                assert resource.props.get("suspend_timeout_seconds") is None, resource.name


def test_staging_branches_are_created_on_a_free_account(free_neon: FreePlanNeon, staging_plan: Plan) -> None:
    """The program's own branch inputs, sent by the provider to a Neon that answers as Free does."""
    props = _branch_props(staging_plan, "database-staging") | {"project_id": "p-1", "parent_id": "br-main"}
    result = neon_provider.NeonBranchProvider().create(props)
    assert result.outs["endpoint_id"] == "ep-staging"
    endpoint = next(body for method, path, body in free_neon.requests if method == "POST")["endpoints"][0]
    assert "suspend_timeout_seconds" not in endpoint


def test_production_main_is_adopted_on_a_free_account(free_neon: FreePlanNeon, production_plan: Plan) -> None:
    props = _branch_props(production_plan, "database-main") | {"project_id": "p-1", "adopt_id": "br-main"}
    result = neon_provider.NeonBranchProvider().create(props)
    assert result.id == "br-main"
    patch = next(body for method, path, body in free_neon.requests if method == "PATCH" and "/endpoints/" in path)
    assert "suspend_timeout_seconds" not in patch["endpoint"]


def test_an_explicit_value_on_free_fails_the_plan_policy_and_fits_on_launch() -> None:
    plan = run_plan("staging", {"database": {"suspend_timeout_seconds": 300}})
    assert any(v.startswith("database-staging: suspend_timeout_seconds = 300") and "can_set_suspend_timeout" in v
               for v in plan.policies["fits-the-plan"]), plan.policies["fits-the-plan"]
    growth = run_plan("staging", {"phase": "growth"})
    assert growth.config.database.suspend_timeout_seconds == 300 and growth.policies["fits-the-plan"] == []
