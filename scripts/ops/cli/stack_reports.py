"""`ops cost` and `ops procurement`: what a stack costs and what we can promise, from the offline plan."""

from __future__ import annotations

import typer

from ops.cli.base import JSON_OPTION
from ops.cli.plan import STACK_OPTION, run_plan_or_config_error
from ops.errors import ConfigError, VerificationError
from ops.output import print_json, progress, table


def cost(stack: str = STACK_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Monthly cost of a stack from the dated price table, against its phase's budget and its free plans'
    allowances (Neon Free's CU-hours); exit 8 when over either."""
    from stacks.cost import PriceError

    plan = run_plan_or_config_error(stack)
    try:
        estimate = plan.estimate()
    except PriceError as exc:
        raise ConfigError(str(exc), hint="add the price to stacks/data/prices.json, with its source") from None
    if as_json:
        print_json(estimate.to_json())
    else:
        table(f"{stack} ({estimate.phase}): EUR per month", ["item", "what", "EUR", "source"],
              [(c.item, c.detail, f"{c.eur:.2f}", c.source) for c in estimate.lines])
        budget = "no budget set" if estimate.budget is None else f"budget {estimate.budget:.2f}"
        progress(f"total {estimate.total:.2f} EUR/month ({budget})")
        for finding in estimate.findings:
            progress(f"over a free allowance: {finding.message}")
        for note in estimate.notes:
            progress(f"note: {note}")
    if not estimate.ok:
        problems = [f.message for f in estimate.findings]
        if not estimate.within_budget:
            problems.insert(0, f"{stack} costs {estimate.total:.2f} EUR/month, over the {estimate.phase} "
                               f"budget of {estimate.budget:.2f}")
        raise VerificationError("; ".join(problems))


def procurement(stack: str = STACK_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Answers to a customer's procurement questions (data location, encryption, backups, GDPR,
    SOC 2) with evidence (Markdown, or --json); exit 8 if anything is outside the EU."""
    from stacks.procurement import answers

    result = answers(run_plan_or_config_error(stack))
    if as_json:
        print_json(result.to_json())
    else:
        typer.echo(result.to_markdown(), nl=False)
    if not result.ok:
        raise VerificationError("not every resource is in the EU: " + "; ".join(result.outside_eu))
