"""CrossGuard adapters: each policy in `stacks.policies` as a mandatory stack validation policy."""

from __future__ import annotations

from typing import Any

from pulumi_policy import EnforcementLevel, StackValidationArgs, StackValidationPolicy

from stacks.policies import POLICIES, Policy, ResourceView


def stack_of(urn: str) -> str:
    """`urn:pulumi:<stack>::<project>::<type>::<name>` -> `<stack>`."""
    return urn.split(":", 3)[3].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""


def views(args: StackValidationArgs) -> tuple[str, list[ResourceView]]:
    resources = list(args.resources)
    env = stack_of(resources[0].urn) if resources else ""
    return env, [ResourceView(type=r.resource_type, name=r.name, props=dict(r.props),
                              protect=bool(getattr(r.opts, "protect", False))) for r in resources]


def make_policy(name: str, description: str, check: Policy) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: Any) -> None:
        env, resources = views(args)
        for message in check(env, resources):
            report_violation(message)

    return StackValidationPolicy(name=name, description=description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


POLICY_LIST = [make_policy(name, desc, fn) for name, (desc, fn) in POLICIES.items()]
