"""`ops hosts reboot --env E`: the hosts an installed update asks to reboot, one at a time, traffic kept
on a host that is up (the use-case, and why it is a command and not a timer: ops.reboot)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper
from ops.cli.deploy import OPEN_SSH_OPTION
from ops.output import print_json, progress, table
from ops.reboot import BOOT_TIMEOUT, plan_reboot, reboot_hosts

# The adapters and models behind this command load on first use (ops/cli/lazy.py says why).
if TYPE_CHECKING:
    from ops import wiring
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    resolve = lazy.function("ops.wiring", "resolve")

app = OpsTyper(help="The environment's app hosts: reboots after kernel and libc updates.")

TIMEOUT_OPTION = typer.Option(BOOT_TIMEOUT, "--timeout", min=10.0, metavar="SECONDS",
                              help="How long a host gets to come back ready after its reboot.")


def _render_plan(plan: dict[str, Any], as_json: bool, plan_only: bool) -> None:
    if as_json and plan_only:
        print_json({**plan, "applied": False})
        return
    rows = [(h["host"], h["role"] + (" (serving)" if h["serving"] else ""),
             ("yes: " + (", ".join(h["packages"]) or "an update")) if h["required"] else "no", h["action"])
            for h in plan["hosts"]]
    title = f"plan: reboot hosts in {plan['environment']}" + (" (nothing changed)" if plan_only else "")
    if as_json:
        progress(title + ": " + "; ".join(f"{r[0]} ({r[1]}) reboot required {r[2]}: {r[3]}" for r in rows))
    else:
        table(title, ["host", "role", "reboot required", "what happens"], rows)


@app.command("reboot")
def reboot(env_name: str = ENV_OPTION, open_ssh_from: str | None = OPEN_SSH_OPTION, timeout: float = TIMEOUT_OPTION,
           plan_only: bool = confirm.PLAN_OPTION, yes: bool = confirm.YES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Reboot each host whose updates ask for it (/var/run/reboot-required), one at a time: the
    others first, then the serving host with its traffic moved to a ready host and back; never two
    hosts down at once. A host no update asked to reboot is left alone."""
    env = resolve(env_name)
    hosts, switch = wiring.reboot_ports(env)
    with wiring.ssh_access(env, None if plan_only else open_ssh_from):
        plan = plan_reboot(env.name, hosts, switch)
        if not confirm.gate(env.name, env.is_production, "reboot hosts",
                            lambda: _render_plan(plan, as_json, plan_only), plan_only=plan_only, yes=yes):
            return
        done = reboot_hosts(env.name, hosts, switch, wiring.objects(env), timeout=timeout,
                            progress=(lambda _m: None) if as_json else progress)
    if as_json:
        print_json({"environment": env.name, "hosts": done})
    else:
        table(f"reboot hosts in {env.name}", ["host", "role", "outcome"],
              [(h["host"], h["role"], h["outcome"]) for h in done])
