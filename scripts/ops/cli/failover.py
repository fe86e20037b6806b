"""`ops failover [--db ...] [--plan]`, `ops failover status`, `ops failback`."""

from __future__ import annotations

import typer

from ops.adapters.s3_store import S3ObjectStore
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, run_guarded
from ops.environment import resolve
from ops.errors import ConfigError
from ops.failover import usecase
from ops.output import print_json, progress, stderr, table
from ops.paths import sandbox_dir

app = OpsTyper(help="Fail over to the standby (the seed's plan, journaled and resumable); see its journal.",
               no_args_is_help=False)

DB_OPTION = typer.Option("latest-backup", "--db", help="latest-backup | neon-pitr@TIME | none")


@app.callback(invoke_without_command=True)
def failover(
    ctx: typer.Context,
    env_name: str = ENV_OPTION,
    db: str = DB_OPTION,
    plan_only: bool = typer.Option(False, "--plan", help="Print the steps and change nothing."),
    watch_seconds: float = typer.Option(30.0, "--watch-seconds", min=1, help="How long to watch the error rate."),
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
        if env.name != "local":
            raise ConfigError("cloud failover (Cloudflare DNS, Neon PITR, SSH deploy) is not wired in this version",
                              hint="follow runbooks/failover.md by hand; see the issue notes")
        from ops.failover.local import local_ports

        report = usecase.failover(env.name, local_ports(env, sandbox_dir()), S3ObjectStore(env.storage, "backups"),
                                  db_mode=db, watch_seconds=watch_seconds,
                                  progress=(lambda _m: None) if as_json else progress)
        if as_json:
            print_json(report)
            return
        progress(f"recovered in {report['recovery_seconds']} s; data-loss window "
                 f"{report.get('data_loss_window_seconds', 0)} s; writes after the restored point: "
                 f"{report.get('writes_after_point', 'n/a')}")

    run_guarded(run)


@app.command("status")
def status(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The journal of a failover in progress (or the report of the last one)."""
    env = resolve(env_name)
    store = S3ObjectStore(env.storage, "backups")
    journal = usecase.read_journal(store, env.name)
    last_raw = store.get_bytes(f"_ops/{env.name}/failover.last.json")
    data = {"in_progress": journal, "last": __import__("json").loads(last_raw) if last_raw else None}
    if as_json:
        print_json(data)
        return
    if journal:
        done = journal["done"]
        table("failover in progress", ["step", "state"],
              [(s, "done" if s in done else "pending") for s in usecase.STEPS])
    else:
        progress("no failover in progress" + (" (last report available with --json)" if last_raw else ""))


def failback(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Return traffic to the primary once it is healthy again."""
    env = resolve(env_name)
    if env.name != "local":
        raise ConfigError("cloud failback is not wired in this version", hint="see runbooks/failover.md")
    from ops.failover.local import failback as local_failback

    report = local_failback(sandbox_dir())
    if as_json:
        print_json(report)
    else:
        progress(f"traffic back on the primary: {report['primary']}. {report['note']}")
