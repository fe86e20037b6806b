"""The `ops` command line: one Typer sub-app per concern, composed here."""

from __future__ import annotations

import os

import typer

from ops.cli import (
    backup,
    checklist,
    db,
    deploy,
    doctor,
    envcmd,
    failover,
    hosts,
    lock,
    logs,
    monitors,
    plan,
    sandbox,
    stack_reports,
    status,
)
from ops.cli.base import OpsTyper

# The exit codes of ops/errors.py's tree, shown in `ops --help`. They live in the app's help and
# not in the root callback's docstring, because Typer shows `help=` and drops that docstring.
EXIT_CODES_HELP = ("Exit codes: 0 ok, 1 unexpected (a bug; --verbose shows the traceback), 2 bad input, "
                   "3 refused by a safety rail, 4 needs confirmation (--yes or type the environment's name), "
                   "5 not found, 6 lock held, 7 external failure (a provider, database or process), "
                   "8 verification failed (`ops status`: something needs attention), 9 sandbox unhealthy.")

app = OpsTyper(
    name="ops",
    # `ops --install-completion` / `--show-completion`: each <TAB> runs `ops` to complete, affordable now that the
    # CLI modules load their use cases and SDKs inside the commands (ops/cli/lazy.py), not at import.
    add_completion=True,
    help="Operations for the AutoEnroll stack: sandbox, database branches, backups, deploys, failover."
         f"\n\n{EXIT_CODES_HELP}",
)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(envcmd.app, name="env")
app.add_typer(backup.app, name="backup")
app.add_typer(db.app, name="db")
app.add_typer(lock.app, name="lock")
app.command("plan")(plan.plan)
app.command("cost")(stack_reports.cost)
app.command("procurement")(stack_reports.procurement)
app.command("deploy")(deploy.deploy)
app.command("rollback")(deploy.rollback)
app.command("health")(deploy.health)
app.add_typer(failover.app, name="failover")
app.command("failback")(failover.failback)
app.command("checklist")(checklist.checklist)
app.command("doctor")(doctor.doctor)
app.add_typer(monitors.app, name="monitors")
app.add_typer(hosts.app, name="hosts")
app.command("status")(status.status)
app.command("logs")(logs.logs)


def _print_version(value: bool) -> None:
    if value:
        from ops import __version__
        from ops.pg import tools as pgtools

        # The client tools' major and TLS are part of what a bug report needs (>= the server's; Neon needs TLS).
        tls = "with TLS" if pgtools.tools_have_tls() else "WITHOUT TLS: only local databases"
        typer.echo(f"ops {__version__} (pg_dump {pgtools.tool_major('pg_dump')}, {tls}; {pgtools.bindir()})")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks for unexpected errors."),
    _version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                  help="Print the version of ops (and of its pg_dump, with or without TLS) and exit."),
) -> None:
    """Global options (the exit codes are in the app's help, EXIT_CODES_HELP)."""
    if verbose:
        os.environ["OPS_VERBOSE"] = "1"


def main() -> None:
    """Console entry point."""
    app()
