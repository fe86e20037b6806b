"""Plans are data: the program fits the phase's provider plans, and a setting outside them fails
the fits-the-plan policy naming the resource, the setting and the limit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks import plans
from stacks.data import load
from stacks.plan import Plan, run_plan
from stacks.policies import DYNAMIC, RULESET, ResourceView, fits_the_plan

pytestmark = pytest.mark.stacks


@pytest.fixture(scope="module")
def growth_plans() -> dict[str, Plan]:
    return {stack: run_plan(stack, {"phase": "growth"}) for stack in ("production", "staging")}


def test_every_limit_is_dated_and_sourced() -> None:
    table = load("plans")
    assert table["checked"]
    for provider, by_plan in table["limits"].items():
        for plan, limits in by_plan.items():
            for key, entry in limits.items():
                assert set(entry) == {"value", "source"} and entry["source"].strip(), f"{provider}.{plan}.{key}"
    for phase, chosen in table["phases"].items():
        for provider in ("cloudflare", "neon", "betterstack", "hetzner", "redis_cloud"):
            assert chosen[provider] in table["limits"][provider], f"{phase}: {provider} plan {chosen[provider]}"


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_both_stacks_fit_their_plans_in_pre_revenue(stack: str, production_plan: Plan, staging_plan: Plan) -> None:
    plan = production_plan if stack == "production" else staging_plan
    assert plan.config.phase == "pre-revenue"
    assert plan.policies["fits-the-plan"] == []
    assert plan.passed


@pytest.mark.parametrize("stack", ["production", "staging"])
def test_both_stacks_fit_their_plans_in_growth(stack: str, growth_plans: dict[str, Plan]) -> None:
    plan = growth_plans[stack]
    assert plan.config.phase == "growth"
    assert plan.policies["fits-the-plan"] == [] and plan.passed


def test_the_phase_changes_what_the_program_asks_for(production_plan: Plan, growth_plans: dict[str, Plan]) -> None:
    free, launch = production_plan.config, growth_plans["production"].config
    assert free.database.history_retention_seconds == 21600 and launch.database.history_retention_seconds == 604800
    assert free.database.protect_main is False and launch.database.protect_main is True
    # Neon: 0 is the default (300 s), never is -1; Free can't disable scale to zero, nor be sent any value.
    assert free.database.suspend_timeout_seconds is None and launch.database.suspend_timeout_seconds == -1
    # `main`'s read replica scales to zero (Neon's default 300 s) even where `main` never suspends.
    replica = next(r for r in growth_plans["production"].resources if r.props.get("endpoint_type") == "read_only")
    assert replica.props["suspend_timeout_seconds"] == 300
    assert free.database.read_replica and launch.database.read_replica
    assert free.monitoring.check_frequency_seconds == 180 and launch.monitoring.check_frequency_seconds == 60
    limits = {p.config.phase: _ratelimit(p)["ratelimit"] for p in (production_plan, growth_plans["production"])}
    assert (limits["pre-revenue"]["period"], limits["pre-revenue"]["mitigationTimeout"]) == (10, 10)
    assert limits["pre-revenue"]["requestsPerPeriod"] == 5  # 30 a minute, per 10 s
    assert (limits["growth"]["period"], limits["growth"]["mitigationTimeout"]) == (60, 60)


def _ratelimit(plan: Plan) -> dict[str, Any]:
    ruleset = next(r for r in plan.resources if r.type == RULESET and r.props.get("phase") == "http_ratelimit")
    rule: dict[str, Any] = ruleset.props["rules"][0]
    assert "http.request.method" not in rule["expression"]
    return rule


@pytest.mark.parametrize(("overrides", "resource", "setting", "limit"), [
    ({"database": {"history_retention_seconds": 604800}}, "database-project", "history_retention_seconds",
     "neon free max_history_seconds"),
    ({"database": {"protect_main": True}}, "database-main", "protected", "neon free protected_branches"),
    ({"database": {"suspend_timeout_seconds": -1}}, "database-main", "suspend_timeout_seconds",
     "neon free can_disable_suspend"),
    ({"monitoring": {"check_frequency_seconds": 60}}, "monitoring-app-health", "attributes.check_frequency",
     "betterstack free min_check_frequency_seconds"),
])
def test_an_out_of_plan_setting_fails_naming_resource_setting_and_limit(
        overrides: dict[str, Any], resource: str, setting: str, limit: str) -> None:
    plan = run_plan("production", overrides)
    violations = plan.policies["fits-the-plan"]
    assert any(v.startswith(f"{resource}: {setting}") and limit in v for v in violations), violations
    assert not plan.passed
    # The same setting is within the growth phase's plans.
    assert run_plan("production", {**overrides, "phase": "growth"}).policies["fits-the-plan"] == []


def test_a_rate_limit_rule_outside_cloudflare_free_is_named() -> None:
    rule = {"expression": '(http.request.uri.path eq "/x" and http.request.method eq "POST")',
            "ratelimit": {"characteristics": ["ip.src", "cf.colo.id"], "period": 60.0, "requestsPerPeriod": 30.0,
                          "mitigationTimeout": 60.0}}
    hetzner = ResourceView("hcloud:index/network:Network", "net", {"labels": {"phase": "pre-revenue"}})
    ruleset = ResourceView(RULESET, "edge-ratelimit", {"phase": "http_ratelimit", "rules": [rule, rule]})
    violations = fits_the_plan("production", [hetzner, ruleset])
    for expected in ("edge-ratelimit: number of rate limiting rules = 2",
                     "edge-ratelimit: rules[0].ratelimit.period = 60",
                     "edge-ratelimit: rules[0].ratelimit.mitigation_timeout = 60",
                     "edge-ratelimit: rules[0].expression field = 'http.request.method'"):
        assert any(v.startswith(expected) for v in violations), (expected, violations)
    assert all("cloudflare free" in v for v in violations)
    pro = ResourceView("hcloud:index/network:Network", "net", {"labels": {"phase": "growth"}})
    assert [v for v in fits_the_plan("production", [pro, ruleset]) if "method" not in v and "number" not in v] == []


def test_a_second_key_with_the_same_fingerprint_is_named() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6mP0b0nCallKeyPlaceholderOnlyReplaceMe"
    views = [ResourceView("hcloud:index/sshKey:SshKey", n, {"publicKey": f"{key} {n}", "labels": {}}) for n in "ab"]
    assert [v.split(":")[0] for v in fits_the_plan("production", views)] == ["b"]


def test_staging_finds_productions_ssh_keys_instead_of_creating_them(staging_plan: Plan,
                                                                     production_plan: Plan) -> None:
    assert [r.name for r in production_plan.resources if r.type == "hcloud:index/sshKey:SshKey"]
    assert not [r for r in staging_plan.resources if r.type == "hcloud:index/sshKey:SshKey"]
    server = next(r for r in staging_plan.resources if r.type == "hcloud:index/server:Server")
    assert server.props["sshKeys"]  # looked up by fingerprint


def test_cost_and_policy_read_the_same_phase_table(production_plan: Plan) -> None:
    estimate = production_plan.estimate()
    table = plans.phases()["pre-revenue"]
    assert estimate.budget == table["budget"]
    assert any(line.detail.startswith(f"{table['neon']} plan") for line in estimate.lines)
    assert "phases" not in load("prices")


def test_neon_branches_and_monitors_are_dynamic_resources(production_plan: Plan) -> None:
    # The policy recognises Neon branches and BetterStack monitors by their inputs: keep it honest.
    dynamic = [r for r in production_plan.resources if r.type == DYNAMIC]
    assert any("min_cu" in r.props for r in dynamic) and any(r.props.get("kind") == "monitors" for r in dynamic)


@pytest.mark.parametrize("phase", ["pre-revenue", "growth"])
@pytest.mark.parametrize("stack", ["production", "staging"])
def test_ops_plan_passes_in_both_phases(stack: str, phase: str) -> None:
    from typer.testing import CliRunner

    from ops.cli import app

    result = CliRunner().invoke(app, ["plan", "--stack", stack, "--phase", phase, "--json"])
    assert result.exit_code == 0, result.output[-2000:]
    assert '"fits-the-plan"' in result.stdout


def test_ops_plan_fails_an_out_of_plan_setting_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from ops.cli import app
    from stacks import plan as plan_module

    real = plan_module.read_stack_file

    def with_a_week_of_history(stack: str) -> dict[str, Any]:
        values = real(stack)
        return {**values, "autoenroll:database": {**values["autoenroll:database"],
                                                  "history_retention_seconds": 604800}}

    monkeypatch.setattr(plan_module, "read_stack_file", with_a_week_of_history)
    result = CliRunner().invoke(app, ["plan", "--stack", "production", "--json"])
    assert result.exit_code == 8, result.output[-2000:]
    violations = json.loads(result.stdout)["policies"]["fits-the-plan"]["violations"]
    assert [v for v in violations if v.startswith("database-project: history_retention_seconds = 604800")
            and "neon free max_history_seconds" in v]
    assert CliRunner().invoke(app, ["plan", "--stack", "production", "--phase", "growth"]).exit_code == 0


def test_more_replicas_than_a_spread_group_holds_is_named() -> None:
    violations = run_plan("production", {"compute": {"replicas": 11}}).policies["fits-the-plan"]
    assert [v for v in violations if v.startswith("compute-spread: servers in the spread placement group = 11")
            and "hetzner cloud spread_group_servers" in v], violations


def test_the_plan_table_says_which_redis_plan_has_tls() -> None:
    assert plans.plan_limit("redis_cloud", "free", "tls").value is False
    assert plans.plan_limit("redis_cloud", "paid", "tls").value is True
    assert "redis.io" in plans.plan_limit("redis_cloud", "free", "tls").source


def test_production_on_a_redis_plan_without_tls_fails_fits_the_plan() -> None:
    plan = run_plan("production", {"cache": {"plan": "free"}})
    violations = [v for v in plan.policies["fits-the-plan"] if v.startswith("cache:")]
    assert violations and "redis_cloud free tls" in violations[0] and "REDIS_URL" in violations[0], violations
    assert not plan.passed


def test_staging_on_the_free_redis_plan_fits_only_with_its_explicit_opt_out(staging_plan: Plan) -> None:
    assert staging_plan.config.cache.plan == "free" and staging_plan.policies["fits-the-plan"] == []
    plan = run_plan("staging", {"cache": {"plan": "free", "allow_plaintext": False}})
    assert any(v.startswith("cache:") and "cache.allow_plaintext" in v for v in plan.policies["fits-the-plan"])
    assert "REDIS_ALLOW_PLAINTEXT" not in plan.outputs["app_env"]
    assert staging_plan.outputs["app_env"]["REDIS_ALLOW_PLAINTEXT"] == "true"
