"""`ops failover [--db ...] [--plan]`, `ops failover status`, `ops failback`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt, run_guarded
from ops.failover import usecase
from ops.output import print_json, progress, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    resolve = lazy.function("ops.wiring", "resolve")

app = OpsTyper(help="Fail over to the standby: switch traffic, restore the database if asked, redeploy, check "
                    "(journaled and resumable); see its journal.",
               # A bare `ops failover` shows this help: acting on the default `--env local` from a
               # mistyped or half-typed command is not what anyone at 3 a.m. meant. Any flag runs it.
               no_args_is_help=True)

DB_OPTION = typer.Option("none", "--db", help="none (host-only outage: keep the database) | neon-pitr@TIME | "
                                              "latest-backup (Neon itself is down)")
WAIT_OPTION = typer.Option(usecase.HOSTS_WAIT_SECONDS, "--wait-for-hosts", min=0, metavar="SECONDS",
                           help="How long to wait for a deploy or rollback holding the hosts before exit 6 "
                                "(nothing changed).")


@app.callback(invoke_without_command=True)
def failover(
    ctx: typer.Context,
    env_name: str = ENV_OPTION,
    db: str = DB_OPTION,
    plan_only: bool = confirm.PLAN_OPTION,
    watch_seconds: float = typer.Option(30.0, "--watch-seconds", min=1, help="How long to watch the error rate."),
    yes: bool = confirm.YES_OPTION,
    wait_for_hosts: float = WAIT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the failover (or resume it after a crash: run the same command again)."""
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        steps = usecase.plan(db)  # a bad --db is refused before anything is resolved
        # The plan is the same everywhere: --plan needs no environment (nor a running sandbox).
        env = None if plan_only else resolve(env_name)
        action = "fail over" + ("" if db == "none" else f" with --db {db}, replacing the live database,")
        if not confirm.gate(env_name, env is not None and env.is_production, action,
                            confirm.show_steps(steps, as_json=as_json, plan_only=plan_only), plan_only=plan_only,
                            yes=yes):
            return
        assert env is not None  # resolved whenever it is not a plan
        on_interrupt(usecase.interrupt_note(env.name, {"direction": "failover", "db_mode": db}))
        report = usecase.failover(env.name, wiring.failover_site(env), wiring.traffic(env), wiring.live_database(env),
                                  wiring.objects(env), db_mode=db, watch_seconds=watch_seconds,
                                  progress=(lambda _m: None) if as_json else progress, hosts_wait=wait_for_hosts)
        if as_json:
            print_json(report)
            return
        progress(f"recovered in {report['recovery_seconds']} s; data-loss window "
                 f"{report.get('data_loss_window_seconds', 0)} s; writes after the restored point: "
                 f"{report.get('writes_after_point', 'n/a')}; live database: {report['live_database']}")

    run_guarded(run)


@app.command("status")
def status(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Where traffic and data are: failed over (since when, to what, which database), a failover or
    failback in progress (its mode and the command that resumes it), or idle."""
    env = resolve(env_name, live=False)
    store = wiring.objects(env)
    serving, source = wiring.traffic_reader(env)
    # The switch behind `serving` also reads every record it moves (app and api), to find a split.
    switch = getattr(serving, "__self__", None)
    data = usecase.status(env.name, store, wiring.live_database(env), home_database=env.branch,
                          serving=serving, serving_source=source, records=getattr(switch, "records", None))
    if as_json:
        print_json(data)
        return
    if data["state"] == "in-progress":
        table(f"{data['direction']} in progress (--db {data['db_mode']})", ["step", "state"],
              [(s, "done" if s in data["done"] else "pending") for s in [*data["done"], *data["pending"]]])
    progress(data["summary"])
    progress(f"traffic per {data['serving_source']}")
    if data.get("note"):
        progress(f"note: {data['note']}")
    if data.get("locks_note"):
        progress(f"locks: {data['locks_note']}")


def failback(
    env_name: str = ENV_OPTION,
    plan_only: bool = confirm.PLAN_OPTION,
    wait_for_hosts: float = WAIT_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Return traffic to the primary once it is healthy again (journaled and resumable, like the failover)."""
    # Before the recorded state, the lock and the journal: a dead sandbox fails now, with its own
    # exit code, not after the redeploy's readiness timeout.
    env = resolve(env_name, live=False)
    wiring.preflight(env)
    env = wiring.with_live_database(env)
    site, traffic, live = wiring.failover_site(env), wiring.traffic(env), wiring.live_database(env)
    plan = usecase.plan_failback(env.name, site, traffic, live, wiring.objects(env))

    def show() -> None:
        if as_json and plan_only:
            print_json(plan)
            return
        if as_json:  # before a real run: stdout stays the result alone
            progress(f"plan: failback in {env.name}: " + "; ".join(f"{s['step']} ({s['state']}): {s['does']}"
                                                                  for s in plan["steps"]))
        else:
            table(f"plan: failback in {env.name}, traffic on the {plan['serving']} now"
                  + (" (nothing changed)" if plan_only else ""),
                  ["step", "state", "does"], [(s["step"], s["state"], s["does"]) for s in plan["steps"]])
        if plan["data_note"]:
            progress(plan["data_note"])

    if not confirm.gate(env.name, env.is_production, "fail back to the primary", show, plan_only=plan_only, yes=yes):
        return
    on_interrupt(usecase.interrupt_note(env.name, {"direction": "failback"}))
    report = usecase.failback(env.name, site, traffic, live, wiring.objects(env),
                              progress=(lambda _m: None) if as_json else progress, hosts_wait=wait_for_hosts)
    if as_json:
        print_json(report)
    else:
        progress(f"traffic back on the primary: {report['results'].get('deploy', 'already')}. {report['note']}")
