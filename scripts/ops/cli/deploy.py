"""`ops deploy`, `ops rollback` and `ops health`: flags in, ports from the wiring, one use-case."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, on_interrupt
from ops.errors import ConfigError, VerificationError
from ops.output import print_json, progress, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.deploy import usecase
    from ops.health import check_endpoints
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    usecase = lazy.module("ops.deploy.usecase")
    check_endpoints = lazy.function("ops.health", "check_endpoints")
    resolve = lazy.function("ops.wiring", "resolve")

VERSION_OPTION = typer.Option(..., "--version", help="The version to deploy (an image tag; locally a release name).")
OPEN_SSH_OPTION = typer.Option(None, "--open-ssh-from", metavar="IP",
                               help="CI: admit this runner's address through the Hetzner firewall for SSH during "
                                    "the command, removed after (HCLOUD_TOKEN).")


PLAN_OPTION = confirm.PLAN_OPTION


INTERRUPT_NOTE = ("the candidate a host had started was discarded (said above), or, if it could not be, that "
                  "host's next deploy discards it first; hosts done before it keep the new version: run the same "
                  "command again")


def _no_ssh_opening(open_ssh_from: str | None) -> None:
    if open_ssh_from is not None:
        raise ConfigError("--plan changes nothing, so it does not open the firewall (--open-ssh-from)",
                          hint="run the plan from an admin network, where SSH to the hosts is open")


def render_plan(plan: dict[str, Any], as_json: bool, plan_only: bool = True) -> None:
    """One plan, for a person (a table and the lock) or for a machine (the same data as JSON).

    Before a real run with --json the plan goes to stderr as lines, so stdout stays the result alone."""
    if as_json and plan_only:
        print_json(plan)
        return
    head = f"plan: {plan['action']} {plan.get('from', '') + ' -> ' if plan.get('from') else ''}{plan['version']} " \
           f"in {plan['environment']}" + (" (nothing changed)" if plan_only else "")
    rows = [(h["role"], h["from"], h["to"] + (" (same)" if h["same_version"] else ""), h["slot"], h["traffic"])
            for h in plan["hosts"]]
    if as_json:
        progress(head + ": " + "; ".join(f"{r[0]} {r[1]} -> {r[2]} ({r[3]}, {r[4]})" for r in rows))
    else:
        table(head, ["host", "from", "to", "slot", "traffic"], rows)
    held = plan.get("lock_held")
    if held:
        progress(f"the hosts lock is held by {held['owner']} ({held['purpose']}) until {held['expires_at']}: "
                 "the real run would get exit 6")


def _render(report: usecase.DeployReport, title: str, as_json: bool) -> None:
    if as_json:
        print_json({"version": report.version, "hosts": report.hosts, "seconds": report.seconds})
    else:
        table(title, ["host", "from", "to", "address", "image digest"],
              [(h["role"], h.get("from", ""), h["to"], h["address"], h.get("digest", "")) for h in report.hosts])


def deploy(version: str = VERSION_OPTION, env_name: str = ENV_OPTION, open_ssh_from: str | None = OPEN_SSH_OPTION,
           plan_only: bool = PLAN_OPTION, yes: bool = confirm.YES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Rolling, zero-downtime deploy, host by host (the serving one last); a version that does not
    become ready is discarded and the old one keeps serving."""
    usecase.validate_version(version)
    env = resolve(env_name)
    hosts, before = wiring.deploy_ports(env)
    if plan_only:
        _no_ssh_opening(open_ssh_from)
    with wiring.ssh_access(env, None if plan_only else open_ssh_from):
        # The plan reads each host over SSH, so on CI it needs the opening the run needs.
        plan = usecase.plan_deploy(env.name, hosts, wiring.objects(env), version)
        if not confirm.gate(env.name, env.is_production, f"deploy {version}",
                            lambda: render_plan(plan, as_json, plan_only), plan_only=plan_only, yes=yes):
            return
        on_interrupt(INTERRUPT_NOTE)
        report = usecase.deploy(env.name, hosts, wiring.objects(env), version, before=before, public_url=env.public_url,
                                progress=(lambda _m: None) if as_json else progress, rotation=wiring.rotation(env))
    _render(report, f"deployed {version}", as_json)


def rollback(env_name: str = ENV_OPTION, open_ssh_from: str | None = OPEN_SSH_OPTION, plan_only: bool = PLAN_OPTION,
             yes: bool = confirm.YES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Deploy the last version that was good before the current one (twice goes further back)."""
    env = resolve(env_name)
    hosts, before = wiring.deploy_ports(env)
    if plan_only:
        _no_ssh_opening(open_ssh_from)
    with wiring.ssh_access(env, None if plan_only else open_ssh_from):
        plan = usecase.plan_rollback(env.name, hosts, wiring.objects(env))
        if not confirm.gate(env.name, env.is_production, f"roll back to {plan['version']}",
                            lambda: render_plan(plan, as_json, plan_only), plan_only=plan_only, yes=yes):
            return
        on_interrupt(INTERRUPT_NOTE)
        report = usecase.rollback(env.name, hosts, wiring.objects(env), before=before, public_url=env.public_url,
                                  progress=(lambda _m: None) if as_json else progress, rotation=wiring.rotation(env))
    _render(report, f"rolled back to {report.version}", as_json)


def health(env_name: str = ENV_OPTION, requests: int = typer.Option(20, min=1, max=1000, help="Requests per check."),
           as_json: bool = JSON_OPTION) -> None:
    """Every endpoint with its latency against its target (/health < 100 ms, /ready and /version
    < 500 ms); exit 8 when one misses."""
    env = resolve(env_name, live=False)
    checks = check_endpoints(env.public_url, requests=requests)
    rotation = wiring.rotation(env)
    if rotation is not None:  # behind a load balancer: its targets, and one version on every host
        from ops.health import scale_checks, versions_through

        checks += scale_checks(rotation, versions_through(env.public_url, requests))
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        table(f"health of {env.name} ({env.public_url})", ["endpoint", "result", "status", "p50 ms", "p95 ms",
                                                           "target ms", "detail"],
              [(c.endpoint, "pass" if c.ok else "fail", c.status, c.p50_ms, c.p95_ms, c.target_ms, c.detail)
               for c in checks])
    failing = [c.endpoint for c in checks if not c.ok]
    if failing:
        raise VerificationError(f"failing checks: {', '.join(failing)}")
