"""`ops failover [--db ...] [--plan]`, `ops failover status`, `ops failback`."""

from __future__ import annotations

import json

import typer

from ops import wiring
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, run_guarded, typed_confirmation
from ops.environment import Environment, resolve
from ops.errors import ConfirmationRequired
from ops.failover import usecase
from ops.output import print_json, progress, stderr, table

app = OpsTyper(help="Fail over to the standby (the seed's plan, journaled and resumable); see its journal.",
               no_args_is_help=False)

DB_OPTION = typer.Option("none", "--db", help="none (host-only outage: keep the database) | neon-pitr@TIME | "
                                              "latest-backup (Neon itself is down)")
YES_OPTION = typer.Option(False, "--yes", "-y", help="Confirm a database-replacing --db mode.")


def confirm(env: Environment, db_mode: str, yes: bool) -> None:
    """A database-replacing mode needs --yes; on production a person may instead type the
    environment's name (which --json never skips)."""
    mode, _moment = usecase.parse_db_mode(db_mode)
    if mode == "none" or yes:
        return
    if env.is_production:
        typed_confirmation(env.name, f"fail over with --db {db_mode}, replacing the live database,")
        return
    raise ConfirmationRequired(f"--db {db_mode} replaces the live database: run again with --yes",
                               hint="a host-only outage needs no database change: --db none (the default)")


@app.callback(invoke_without_command=True)
def failover(
    ctx: typer.Context,
    env_name: str = ENV_OPTION,
    db: str = DB_OPTION,
    plan_only: bool = typer.Option(False, "--plan", help="Print the steps and change nothing."),
    watch_seconds: float = typer.Option(30.0, "--watch-seconds", min=1, help="How long to watch the error rate."),
    yes: bool = YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the failover (or resume it after a crash: run the same command again)."""
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        steps = usecase.plan(db)
        if plan_only:
            if as_json:
                print_json({"plan": steps})
            else:
                for number, step in enumerate(steps, 1):
                    stderr.print(f"  {number}. {step}", highlight=False)
            return
        env = resolve(env_name)
        confirm(env, db, yes)
        report = usecase.failover(env.name, wiring.failover_site(env), wiring.traffic(env), wiring.live_database(env),
                                  wiring.objects(env), db_mode=db, watch_seconds=watch_seconds,
                                  progress=(lambda _m: None) if as_json else progress)
        if as_json:
            print_json(report)
            return
        progress(f"recovered in {report['recovery_seconds']} s; data-loss window "
                 f"{report.get('data_loss_window_seconds', 0)} s; writes after the restored point: "
                 f"{report.get('writes_after_point', 'n/a')}; live database: {report['live_database']}")

    run_guarded(run)


@app.command("status")
def status(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The journal of a failover in progress (or the report of the last one)."""
    env = resolve(env_name, live=False)
    store = wiring.objects(env)
    journal = usecase.read_journal(store, env.name)
    last_raw = store.get_bytes(f"_ops/{env.name}/failover.last.json")
    data = {"in_progress": journal, "last": json.loads(last_raw) if last_raw else None,
            "live_database": wiring.live_database(env).get()}
    if as_json:
        print_json(data)
        return
    if journal:
        done = journal["done"]
        steps = usecase.STEPS if journal["direction"] == "failover" else usecase.FAILBACK_STEPS
        table(f"{journal['direction']} in progress", ["step", "state"],
              [(s, "done" if s in done else "pending") for s in steps])
    else:
        progress("no failover in progress" + (" (last report available with --json)" if last_raw else ""))


def failback(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Return traffic to the primary once it is healthy again (journaled and resumable, like the failover)."""
    env = resolve(env_name)
    report = usecase.failback(env.name, wiring.failover_site(env), wiring.traffic(env), wiring.live_database(env),
                              wiring.objects(env), progress=(lambda _m: None) if as_json else progress)
    if as_json:
        print_json(report)
    else:
        progress(f"traffic back on the primary: {report['results'].get('deploy', 'already')}. {report['note']}")
