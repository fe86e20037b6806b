"""The one confirmation policy of every `ops` command that changes an environment.

Written once here, applied by every such command through `gate`, and checked by
tests/scripts/test_confirm_policy.py, which walks the Typer app and holds every command to
`COMMANDS` (a command missing from it, or a mutating one that skips `gate`, fails that test):

1. The command works out its plan and prints it first, always (stderr, so `--json` stdout stays
   the result alone; with `--plan --json` the plan is the JSON on stdout).
2. `--plan` stops there: nothing is changed, exit 0. (The one dry-run idiom: the old
   "plan unless --yes" of backup restore/prune and db refresh is gone.)
3. On production it then asks to type the environment's name, unless `--yes` is given
   (`--json` never skips this). Without a terminal (CI, a pipe) and without `--yes` it
   refuses: exit 4, nothing changed. So CI passes `--yes` for production.
4. Elsewhere (local, development, staging) it goes ahead after printing the plan.

Commands that only read, or only add (a new backup, a verification record), or only touch this
machine's sandbox are declared as such in `COMMANDS` and take no confirmation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import typer

from ops.errors import ConfirmationRequired
from ops.output import print_json, progress, stderr


class Kind(StrEnum):
    CHANGES = "changes"  # changes what an environment serves or holds: the policy applies (gate)
    ADDS = "adds"  # only adds something new beside what serves (a backup, a verification record)
    READS = "reads"  # changes nothing
    SANDBOX = "sandbox"  # this machine's sandbox processes only; takes no --env


# Every `ops` command, by the path a person types after `ops`. The one declared list.
COMMANDS: dict[str, Kind] = {
    "deploy": Kind.CHANGES,
    "rollback": Kind.CHANGES,
    "failover": Kind.CHANGES,
    "failback": Kind.CHANGES,
    "db refresh": Kind.CHANGES,
    "db migrate": Kind.CHANGES,
    "db restore-to": Kind.CHANGES,
    "db retention": Kind.CHANGES,
    "backup restore": Kind.CHANGES,
    "backup prune": Kind.CHANGES,
    "lock release": Kind.CHANGES,
    "monitors resume": Kind.CHANGES,
    "hosts reboot": Kind.CHANGES,
    "backup create": Kind.ADDS,
    "backup verify": Kind.ADDS,
    "db partitions": Kind.ADDS,  # the coming months' empty partitions, beside the ones that serve
    "backup list": Kind.READS,
    "backup fetch": Kind.READS,
    "lock list": Kind.READS,
    "failover status": Kind.READS,
    "health": Kind.READS,
    "checklist": Kind.READS,
    "env show": Kind.READS,
    "plan": Kind.READS,
    "cost": Kind.READS,
    "procurement": Kind.READS,
    "doctor": Kind.READS,
    "status": Kind.READS,
    "logs": Kind.READS,
    "sandbox up": Kind.SANDBOX,
    "sandbox down": Kind.SANDBOX,
    "sandbox status": Kind.SANDBOX,
    "sandbox logs": Kind.SANDBOX,
}

PLAN_OPTION = typer.Option(False, "--plan", help="Print the plan and stop: nothing is changed.")
YES_OPTION = typer.Option(False, "--yes", "-y",
                          help="Confirm a change of production without typing its name (CI). Elsewhere the "
                               "change goes ahead after its plan anyway.")


def typed_confirmation(environment: str, action: str) -> None:
    """Ask the person at the terminal to type the environment's name; `--json` never skips this, only `--yes`.

    Without a terminal (CI, a pipe) there is nobody to ask: that is exit 4, not a prompt that aborts."""
    if not sys.stdin.isatty():
        raise ConfirmationRequired(f"{action} in {environment} needs confirmation and there is no terminal to ask",
                                   hint="confirm with --yes (CI), or run it in a terminal; --plan shows the plan only")
    stderr.print(f"{action} in [bold]{environment}[/bold]. Type the environment name to confirm: ", end="",
                 highlight=False)
    typed = sys.stdin.readline().strip()
    if typed != environment:
        raise ConfirmationRequired("not confirmed: nothing was changed")


def gate(environment: str, production: bool, action: str, show_plan: Callable[[], None], *, plan_only: bool,
         yes: bool) -> bool:
    """The policy (module docstring): print the plan; True when the command should go on and change things.

    `show_plan` prints the command's plan its own way (a table, numbered steps, or with `--plan --json`
    the JSON); it runs first, every time, so nobody confirms a change they were not shown."""
    show_plan()
    if plan_only:
        progress("plan only: nothing was changed (run it without --plan to carry it out)")
        return False
    if production and not yes:
        typed_confirmation(environment, action)
    return True


def show_steps(steps: Sequence[str], *, as_json: bool, plan_only: bool,
               data: dict[str, Any] | None = None) -> Callable[[], None]:
    """A `show_plan` for a plan of numbered steps: JSON on stdout for `--plan --json`, else lines on stderr."""
    def show() -> None:
        if as_json and plan_only:
            print_json({**(data or {}), "plan": list(steps), "applied": False})
            return
        stderr.print("plan:", highlight=False)
        for number, text in enumerate(steps, 1):
            stderr.print(f"  {number}. {text}", highlight=False)

    return show
