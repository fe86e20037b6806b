"""`ops logs --env E [--host H] [--unit app|caddy|deploy] [--since ...] [--follow]` (Kamal's `kamal app logs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from ops import logs as usecase
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, on_interrupt
from ops.errors import ConfigError, ExternalError
from ops.output import print_json, progress

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    resolve = lazy.function("ops.wiring", "resolve")


def logs(
    env_name: str = ENV_OPTION,
    host: str | None = typer.Option(None, "--host", help="One host by name (default: every host)."),
    unit: str = typer.Option("app", "--unit", "-u", help="app (the app container), caddy (its journal), "
                                                         "deploy (the deploy script's journal)."),
    since: str | None = typer.Option(None, "--since", help="Only newer lines: a span (15m, 2h, 1d) or an ISO time "
                                                           "(UTC unless it says)."),
    lines: int = typer.Option(100, "--lines", "-n", min=1, max=100000, help="How many of the last lines per host."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new lines (every host at once, "
                                                              "prefixed by host) until Ctrl-C."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The last lines of the app's, Caddy's or the deploy script's log on each host, over the same SSH
    path as deploys (the sandbox: its log files). Long-term logs are in BetterStack (Vector ships the
    hosts' journal there). A host that cannot be read is named, the others still shown; then exit 7."""
    usecase.check_unit(unit)
    moment = usecase.parse_since(since)
    if follow and as_json:
        raise ConfigError("--follow and --json together: --json prints one document; follow prints lines as "
                          "they come")
    env = resolve(env_name, live=False)
    source, secrets = wiring.log_source(env)
    names = usecase.pick(source, unit, host)
    if moment is not None and not source.applies_since:
        progress(f"note: the {env.name} log files have no common timestamp: --since is not applied there")
        moment = None
    if follow:
        on_interrupt("nothing to resume: following logs changes nothing")
        failed = usecase.follow(source, names, unit, lines, moment,
                                lambda name, line: typer.echo(f"{name} | {line}"), secrets)
        if failed:
            raise ExternalError(f"the {unit} log of {', '.join(failed)} ended with an error (said above)")
        return
    found = usecase.read(source, names, unit, lines, moment, secrets)
    if as_json:
        print_json({"environment": env.name, "unit": unit, "hosts": found})
    else:
        for entry in found:
            progress(f"{entry['host']}: {unit} log" + (f": [red]{entry['error']}[/red]" if entry["error"] else ""))
            for line in entry["lines"]:
                typer.echo(line)
    failed = [f"{e['host']} ({e['error']})" for e in found if e["error"]]
    if failed:
        raise ExternalError(f"could not read the {unit} log of {'; '.join(failed)}",
                            hint="the other hosts' lines are above; long-term logs are in BetterStack")
