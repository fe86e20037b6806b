"""`ops monitors resume --env E`: resume the stack's BetterStack monitors, which it creates paused.

Before the first deploy nothing answers the monitored URLs, so the stack makes its monitors paused
(stacks/monitoring.py) and the release resumes them once `ops deploy` has the environment serving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper
from ops.output import print_json, progress

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops.wiring import resolve
else:
    resolve = lazy.function("ops.wiring", "resolve")

app = OpsTyper(help="The stack's BetterStack monitors.")


@app.command("resume")
def resume(env_name: str = ENV_OPTION, plan_only: bool = confirm.PLAN_OPTION, yes: bool = confirm.YES_OPTION,
           as_json: bool = JSON_OPTION) -> None:
    """Unpause every monitor in the stack outputs (`monitor_ids`); resuming a running one changes nothing."""
    from ops.adapters.cloud.clients import BetterStackClient
    from ops.errors import ConfigError

    env = resolve(env_name, live=False)
    if not env.monitor_ids:
        raise ConfigError(f"stack outputs for {env.name}: no monitor_ids")
    steps = [f"unpause the {host} monitor ({monitor_id})" for host, monitor_id in sorted(env.monitor_ids.items())]
    if not confirm.gate(env.name, env.is_production, "resume the monitors",
                        confirm.show_steps(steps, as_json=as_json, plan_only=plan_only), plan_only=plan_only,
                        yes=yes):
        return
    states = {}
    with BetterStackClient.from_environ() as client:
        for host, monitor_id in sorted(env.monitor_ids.items()):
            data = client.update("monitors", str(monitor_id), {"paused": False})
            states[host] = str(data["attributes"].get("status"))
    if as_json:
        print_json({"environment": env.name, "monitors": states})
    progress(f"{env.name}: monitors resumed ({', '.join(f'{h} {s}' for h, s in states.items())})")
