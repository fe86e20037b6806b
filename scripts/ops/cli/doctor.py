"""`ops doctor --stack S`: every missing or placeholder prerequisite of a stack, at once (ops.doctor)."""

from __future__ import annotations

import os

import typer

from ops.cli.base import JSON_OPTION
from ops.errors import ConfigError
from ops.output import print_json, progress

STACK_OPTION = typer.Option(..., "--stack", "-s", help="staging or production")
ONLINE_OPTION = typer.Option(False, "--online", help="Also ask the providers' APIs (needs CLOUDFLARE_API_TOKEN, "
                             "HCLOUD_TOKEN in the environment): token rights, R2, Pages, existing rulesets, "
                             "records and SSH keys.")


def doctor(stack: str = STACK_OPTION, as_json: bool = JSON_OPTION, online: bool = ONLINE_OPTION) -> None:
    """List every stack secret, variable and placeholder the first `pulumi up` would stop on.

    Offline by default (the stack file and the environment). Exit 0 when nothing is missing, 2 otherwise."""
    from ops import doctor as checks

    report = checks.offline(stack, os.environ)
    if online:
        checks.online(report, os.environ)
    if as_json:
        print_json(report.to_json())
    else:
        # Lines, not a table: the sources and commands are long and must stay whole to be copied.
        typer.echo(f"ops doctor: stack {stack} ({report.stack_file})")
        for f in report.findings:
            typer.echo(f"{'MISSING' if f.severity == 'missing' else 'note   '} {f.key}: {f.problem}\n"
                       f"        get it: {f.where}\n        set it: {f.how}")
    missing = [f.key for f in report.findings if f.severity == "missing"]
    if missing:
        raise ConfigError(f"stack {stack}: {len(missing)} prerequisite(s) missing or placeholders: "
                          f"{', '.join(missing)}",
                          hint="each line above says where to get it and how to set it")
    progress(f"stack {stack}: every prerequisite is set" + ("" if online else " (offline checks; --online asks the "
                                                                             "providers too)"))
