"""`ops cost`, `ops procurement` and the stack diagrams, from the offline plan."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.cli import app
from stacks.diagram import render_svg
from stacks.plan import Plan, run_plan
from stacks.procurement import answers

pytestmark = pytest.mark.stacks
runner = CliRunner()
DOCS = Path(__file__).parents[2] / "docs"


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_default_stacks_are_within_their_budget(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    estimate = plan.estimate()
    assert estimate.budget == 20 and estimate.within_budget, estimate.to_json()
    result = runner.invoke(app, ["cost", "--stack", stack, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_eur_month"] == estimate.total


def test_server_type_and_replicas_change_the_estimate(staging_plan: Plan) -> None:
    base = staging_plan.estimate().total
    bigger = run_plan("staging", {"compute": {"server_type": "cx53"}}).estimate().total
    more = run_plan("staging", {"compute": {"replicas": 3}}).estimate()
    assert bigger > base
    assert more.total > base
    assert any("load balancer lb11" in line.detail for line in more.lines)


def test_over_budget_fails_and_an_unpriced_type_is_named() -> None:
    over = run_plan("production", {"compute": {"server_type": "cx53", "replicas": 3}}).estimate()
    assert not over.within_budget
    unknown = run_plan("staging", {"compute": {"server_type": "ccx63"}})
    with pytest.raises(Exception, match="server type 'ccx63' has no price"):
        unknown.estimate()


def test_growth_phase_uses_the_growth_budget() -> None:
    estimate = run_plan("production", {"phase": "growth"}).estimate()
    assert estimate.budget == 150 and estimate.within_budget
    assert estimate.total > 100  # paid tiers: Neon Launch, Cloudflare Pro, BetterStack, Sentry, ...


def test_procurement_answers_with_evidence(production_plan: Plan) -> None:
    result = answers(production_plan)
    assert result.ok
    by_question = {a.question: a for a in result.answers}
    assert by_question["Where is data stored?"].answer.startswith("EU only")
    assert any("jurisdiction=eu" in e for e in by_question["Where is data stored?"].evidence)
    assert "Full (strict)" in by_question["Encrypted in transit?"].answer
    assert "6 hours" in by_question["Backup policy?"].answer  # Neon Free's restore window (pre-revenue)
    assert "no SOC 2 report" in by_question["SOC 2?"].answer  # the seed's blanket claim isn't quite true
    cli = runner.invoke(app, ["procurement", "--stack", "production", "--json"])
    assert cli.exit_code == 0 and json.loads(cli.stdout)["ok"] is True


def test_a_bucket_outside_the_eu_makes_procurement_refuse_and_name_it() -> None:
    result = answers(run_plan("production", {"storage": {"jurisdiction": "default"}}))
    assert not result.ok
    assert any("autoenroll-production-backups" in o for o in result.outside_eu)
    data = next(a for a in result.answers if a.question == "Where is data stored?")
    assert data.answer.startswith("refused")


def test_procurement_cli_exits_8_when_refusing(monkeypatch: pytest.MonkeyPatch) -> None:
    import stacks.plan as plan_module

    original = plan_module.run_plan
    monkeypatch.setattr(plan_module, "run_plan",
                        lambda stack: original(stack, {"storage": {"jurisdiction": "default"}}))
    result = runner.invoke(app, ["procurement", "--stack", "production"])
    assert result.exit_code == 8
    assert "autoenroll-production-uploads" in result.output


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_committed_diagram_is_current(stack: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    svg = render_svg(plan)
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert f"autoenroll-{stack}-backups" in texts and "Neon branch" in texts
    assert (DOCS / f"{stack}.svg").read_text() == svg, (
        f"docs/{stack}.svg is stale: run `ops plan --stack {stack} --diagram docs/{stack}.svg`")
