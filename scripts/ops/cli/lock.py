"""`ops lock list|release --env E`: see and break the locks operations hold in the object store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ops import confirm, locks
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper
from ops.output import print_json, progress, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops.wiring import objects, resolve
else:
    objects, resolve = lazy.functions("ops.wiring", "objects", "resolve")

app = OpsTyper(help="Locks held by backups, refreshes, and the hosts (deploys, rollbacks, failovers): list them, "
                    "break a dead run's.")


@app.command("list")
def list_(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Every lock held in the environment: what for, by whom, since when, until when."""
    env = resolve(env_name)
    held = locks.list_locks(objects(env), env.name)
    if as_json:
        print_json(held)
        return
    if not held:
        progress(f"no locks held in {env.name}")
        return
    table(f"locks in {env.name}", ["name", "what it is", "held for", "holder", "since", "lease expires", "state"],
          [(h["name"], h["guards"], h["purpose"], h["owner"], h["acquired_at"], _expiry(h),
            "expired" if h["expired"] else "owner gone" if h["owner_gone"] else "held") for h in held])
    progress("if a holder is dead (check first: a live run loses its protection), break its lock: "
             + "; ".join(locks.release_command(h["name"], env.name) for h in held) + " (--yes without a terminal)")


def _expiry(held: dict[str, Any]) -> str:
    """The expiry, and for a renewed lease that it moves while its run lives (a dead run's stops moving)."""
    lease = held.get("lease_seconds")
    renewed = f" (a {lease // 60}-minute lease renewed while the run lives)" if lease else ""
    return f"{held['expires_at']}{renewed}"


@app.command("release")
def release(
    name: str = typer.Argument(..., help="The lock's name from `ops lock list` (backup, hosts, failover, ...; "
                                         "`deploy` is the hosts lock's earlier name)."),
    env_name: str = ENV_OPTION,
    plan_only: bool = confirm.PLAN_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Break a lock left by a dead run (a cancelled CI job, a lost SSH session); the break is recorded."""
    env = resolve(env_name)
    store = objects(env)
    held = {h["name"]: h for h in locks.list_locks(store, env.name)}
    name = locks.LOCK_ALIASES.get(name, name)
    lock = held.get(name)

    def show() -> None:
        if lock is None:  # release_lock names the locks that are held
            progress(f"plan: break the {name} lock (not held in {env.name})")
        elif as_json and plan_only:
            print_json({"plan": [f"break the {name} lock"], "lock": lock, "applied": False})
        else:
            progress(f"plan: break the {name} lock, {lock['guards']}: {lock['purpose']}, held by {lock['owner']} "
                     f"since {lock['acquired_at']} (expires {lock['expires_at']})")

    # A live run loses its protection when its lock is broken: production asks which environment.
    if not confirm.gate(env.name, env.is_production and lock is not None, f"break the {name} lock", show,
                        plan_only=plan_only, yes=yes):
        return
    broken = locks.release_lock(store, env.name, name)
    if as_json:
        print_json(broken)
    else:
        progress(f"broke the {name} lock of {broken['owner']}; recorded as broken by {broken['broken_by']}")
