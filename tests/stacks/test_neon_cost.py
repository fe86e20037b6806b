"""`ops cost`'s Neon lines: prices from Neon's plans page, the read replica's compute priced with main's
against the plan, and Free's per-project CU-hour allowance reported (exit 8) when the stack would spend it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from ops.cli import app
from stacks.config import REPLICA_CU_HOURS
from stacks.cost import HOURS_PER_MONTH, Estimate
from stacks.data import load
from stacks.plan import Plan, run_plan

pytestmark = pytest.mark.stacks
runner = CliRunner()

# neon.com/docs/introduction/plans (neondatabase/website content/docs/introduction/plans.md, updatedOn
# 2026-03-20), in USD: the figures prices.json must carry, converted at its note's 0.92 EUR/USD.
EUR_PER_USD = 0.92
FREE_CU_HOURS, FREE_STORAGE_GB = 100, 0.5
LAUNCH_CU_HOUR_USD, LAUNCH_STORAGE_GB_USD = 0.106, 0.35


def _neon(estimate: Estimate) -> dict[str, float]:
    return {line.detail: line.eur for line in estimate.lines if line.item == "neon"}


def _cli(monkeypatch: pytest.MonkeyPatch, overrides: dict[str, Any], *args: str) -> Any:
    import stacks.plan as plan_module

    # `run_plan` as imported above: the real one, even when an earlier call of this patched it.
    monkeypatch.setattr(plan_module, "run_plan", lambda stack: run_plan(stack, overrides))
    return runner.invoke(app, ["cost", "--stack", "production", *args])


def test_neon_prices_are_the_plans_page_in_eur() -> None:
    neon = load("prices")["neon"]
    assert "2026-03-20" in neon["source"] and "plans" in neon["source"]
    free, launch = neon["plans"]["free"], neon["plans"]["launch"]
    assert (free["base"], free["included_cu_hours"], free["included_storage_gb"]) == (0, FREE_CU_HOURS,
                                                                                     FREE_STORAGE_GB)
    assert launch["base"] == 0 and launch["included_cu_hours"] == 0  # no monthly minimum
    assert launch["cu_hour"] == pytest.approx(LAUNCH_CU_HOUR_USD * EUR_PER_USD, abs=1e-4)
    assert launch["storage_gb_month"] == pytest.approx(LAUNCH_STORAGE_GB_USD * EUR_PER_USD, abs=1e-4)


def test_launch_bills_main_and_the_replica_per_cu_hour_and_storage_per_gb() -> None:
    estimate = run_plan("production", {"phase": "growth", "cost": {"neon_compute_hours": 150.0,
                                                                    "neon_replica_compute_hours": 40.0,
                                                                    "neon_storage_gb": 10.0}}).estimate()
    launch = load("prices")["neon"]["plans"]["launch"]
    lines = _neon(estimate)
    assert "read replica compute ~40 CU-hours" in lines
    compute = next(eur for detail, eur in lines.items() if detail.startswith("compute 190 CU-hours"))
    assert compute == pytest.approx(190 * launch["cu_hour"])
    assert lines["storage ~10 GB-month (0 included)"] == pytest.approx(10 * launch["storage_gb_month"])
    without = run_plan("production", {"phase": "growth", "database": {"read_replica": False},
                                      "cost": {"neon_compute_hours": 150.0, "neon_storage_gb": 10.0}}).estimate()
    assert not any("replica" in detail for detail in _neon(without))
    assert estimate.total - without.total == pytest.approx(40 * launch["cu_hour"], abs=0.011)


def test_default_replica_hours_follow_database_read_replica(production_plan: Plan) -> None:
    assert production_plan.config.database.read_replica
    assert production_plan.config.replica_cu_hours == REPLICA_CU_HOURS
    assert f"read replica compute ~{REPLICA_CU_HOURS:g} CU-hours" in _neon(production_plan.estimate())
    off = run_plan("production", {"database": {"read_replica": False}})
    assert off.config.replica_cu_hours == 0


def test_replica_hours_without_a_replica_are_refused() -> None:
    with pytest.raises(Exception, match=r"cost\.neon_replica_compute_hours.*database\.read_replica is off"):
        run_plan("production", {"database": {"read_replica": False}, "cost": {"neon_replica_compute_hours": 5.0}})


def test_free_allowance_counts_every_compute_and_fails_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    # 90 CU-hours of main alone fit Free's 100; with the replica's they do not.
    over = {"cost": {"neon_compute_hours": 90.0, "neon_replica_compute_hours": 20.0}}
    estimate = run_plan("production", over).estimate()
    assert estimate.within_budget and not estimate.ok
    (finding,) = estimate.findings
    assert (finding.usage, finding.allowance) == (110, FREE_CU_HOURS)
    assert "main 90" in finding.message and "read replica 20" in finding.message
    assert "suspends" in finding.message and "neon.com/docs/introduction/plans" in finding.message
    result = _cli(monkeypatch, over, "--json")
    assert result.exit_code == 8, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is False and body["findings"][0]["usage"] == 110
    assert "110 CU-hours" in result.output and "over the plan's 100" in result.output
    fits = {"database": {"read_replica": False}, "cost": {"neon_compute_hours": 90.0}}
    assert _cli(monkeypatch, fits).exit_code == 0


def test_a_load_balancer_keeps_main_awake_all_month(production_plan: Plan) -> None:
    # Its health check asks /ready, which queries the primary every 10 s: Free's scale to zero never comes.
    estimate = run_plan("production", {"compute": {"replicas": 2}}).estimate()
    always_on = HOURS_PER_MONTH * production_plan.config.database.autoscaling_min_cu
    assert any(f"main compute ~{always_on:g} CU-hours (always on: the load balancer" in d for d in _neon(estimate))
    (finding,) = estimate.findings
    assert finding.usage == always_on + REPLICA_CU_HOURS and "load balancer" in finding.message


def test_free_storage_over_the_projects_half_gigabyte_is_a_finding() -> None:
    estimate = run_plan("production", {"cost": {"neon_storage_gb": 0.8}}).estimate()
    assert [(f.usage, f.allowance) for f in estimate.findings] == [(0.8, FREE_STORAGE_GB)]
    assert "storage" in estimate.findings[0].what


def test_default_stacks_fit_free_without_a_finding(production_plan: Plan, staging_plan: Plan) -> None:
    for plan in (production_plan, staging_plan):
        estimate = plan.estimate()
        assert estimate.ok and not estimate.findings, estimate.to_json()


def test_the_project_allowance_shared_with_the_other_stack_is_noted(production_plan: Plan,
                                                                     staging_plan: Plan) -> None:
    # Staging's branches are on production's project: Free's 100 CU-hours cover both stacks' computes.
    production, staging = production_plan.config, staging_plan.config
    together = production.cost.neon_compute_hours + production.replica_cu_hours + staging.cost.neon_compute_hours
    (from_production,) = production_plan.estimate().notes
    assert f"staging's branches (~{staging.cost.neon_compute_hours:g} CU-hours" in from_production
    assert f"with them ~{together:g}" in from_production
    (from_staging,) = staging_plan.estimate().notes
    assert f"with them ~{together:g}" in from_staging and "production's main and read replica" in from_staging
