"""The CrossGuard pack enforces the very functions the tests call."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stacks.plan import Plan
from stacks.policies import POLICIES

pytestmark = pytest.mark.stacks


def test_pack_has_one_mandatory_policy_per_rule() -> None:
    from pulumi_policy import EnforcementLevel

    from stacks.policy_pack.rules import POLICY_LIST

    assert [p.name for p in POLICY_LIST] == list(POLICIES)
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in POLICY_LIST)


def test_pack_reports_the_same_violations(production_plan: Plan) -> None:
    from stacks.policy_pack.rules import POLICY_LIST

    def resource(r: object, **override: object) -> SimpleNamespace:
        props = {**r.props, **override}  # type: ignore[attr-defined]
        return SimpleNamespace(resource_type=r.type, name=r.name, props=props,  # type: ignore[attr-defined]
                               urn=f"urn:pulumi:production::autoenroll::{r.type}::{r.name}",  # type: ignore[attr-defined]
                               opts=SimpleNamespace(protect=r.protect))  # type: ignore[attr-defined]

    buckets = [r for r in production_plan.resources if r.type.endswith("R2Bucket")]
    args = SimpleNamespace(resources=[resource(b, jurisdiction="default") for b in buckets])
    reported: list[str] = []
    policy = next(p for p in POLICY_LIST if p.name == "data-in-eu")
    policy.validate(args, reported.append)
    assert len(reported) == len(buckets) and "jurisdiction is 'default'" in reported[0]
