"""`ops plan --stack S`: the Pulumi program run offline under mocks, with its policy results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ops.cli.base import JSON_OPTION
from ops.errors import ConfigError, VerificationError
from ops.output import print_json, progress, table

STACK_OPTION = typer.Option(..., "--stack", "-s", help="staging or production")
OUT_OPTION = typer.Option(None, "--out", help="Also write the JSON plan to this file.")
DIAGRAM_OPTION = typer.Option(None, "--diagram", help="Also draw the stack as SVG into this file.")
PHASE_OPTION = typer.Option(None, "--phase",
                            help="Plan as if autoenroll:phase were this (pre-revenue, growth, scale): what the "
                                 "next phase's plans allow, before changing the stack file.")


def run_plan_or_config_error(stack: str, phase: str | None = None) -> Any:
    from stacks.config import StackConfigError
    from stacks.plan import run_plan

    try:
        return run_plan(stack) if phase is None else run_plan(stack, {"phase": phase})
    except StackConfigError as exc:
        raise ConfigError(f"Pulumi.{stack}.yaml: {exc}") from None


def plan(
    stack: str = STACK_OPTION,
    as_json: bool = JSON_OPTION,
    out: Path | None = OUT_OPTION,
    diagram: Path | None = DIAGRAM_OPTION,
    phase: str | None = PHASE_OPTION,
) -> None:
    """Preview a stack offline (no credentials, no Pulumi CLI): resources, outputs, policy results.

    Exit 8 when a policy fails (fits-the-plan names the resource, setting and plan limit)."""
    planned = run_plan_or_config_error(stack, phase)
    _warn_placeholders(stack)
    data = planned.to_json()
    if diagram is not None:
        from stacks.diagram import render_svg

        diagram.write_text(render_svg(planned))
        progress(f"diagram written to {diagram}")
    if out is not None:
        out.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    if as_json:
        print_json(data)
    else:
        resources = data["resources"]
        assert isinstance(resources, list)
        table(f"stack {stack}: {len(resources)} resources", ["type", "name", "protect", "key properties"],
              [[r["type"].split(":")[-1], r["name"], "yes" if r["protect"] else "",
                _key_props(r["properties"])] for r in resources])
        policies = data["policies"]
        assert isinstance(policies, dict)
        table("policies", ["policy", "result", "violations"],
              [[name, "pass" if p["passed"] else "fail", "; ".join(p["violations"])] for name, p in policies.items()])
    policy_results: dict[str, dict[str, object]] = data["policies"]
    failed = [name for name, p in policy_results.items() if not p["passed"]]
    if failed:
        raise VerificationError(f"policies failed: {', '.join(failed)}")
    progress(f"{stack}: all policies pass")


def _warn_placeholders(stack: str) -> None:
    """The offline plan reads the committed stack file, placeholders and all (a real `pulumi preview` refuses
    them): say which, so a preview on a pull request shows what is still to replace."""
    from stacks.plan import namespaced_config
    from stacks.prerequisites import placeholders

    found = placeholders(namespaced_config(stack), stack)
    if found:
        progress(f"warning: Pulumi.{stack}.yaml holds {len(found)} placeholder value(s) that `pulumi preview`/`up` "
                 f"refuse: {', '.join(p.key for p in found)} (ops doctor --stack {stack} says where to get each)")


KEY_PROPS = ("location", "serverType", "jurisdiction", "region_id", "name", "type", "content", "proxied",
             "settingId", "value", "phase", "kind")


def _key_props(props: dict[str, object]) -> str:
    return ", ".join(f"{k}={props[k]}" for k in KEY_PROPS if k in props and not isinstance(props[k], (dict, list)))
