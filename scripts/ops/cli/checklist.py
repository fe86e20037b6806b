"""`ops checklist --env E`: the deployment checklist as checks with evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION
from ops.cli.deploy import OPEN_SSH_OPTION
from ops.errors import ExternalError, VerificationError
from ops.output import print_json, progress, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    resolve = lazy.function("ops.wiring", "resolve")


def checklist(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION, open_ssh_from: str | None = OPEN_SSH_OPTION
              ) -> None:
    """Each deployment-checklist item (environment variables, migrations, TLS, monitoring, Stripe,
    uploads, GDPR deletion, load, backups, DNS, scaling, runbooks) run with its evidence; exit 8 when any
    fails (a skip says why)."""
    from ops import checklist as checks

    try:
        env = resolve(env_name)
    except ExternalError as exc:
        # The checklist reports a dead dependency as a failed item; without the recorded live
        # database it checks the home one, and says so.
        progress(f"live database unknown ({exc.message}): checking the environment's home database")
        env = resolve(env_name, live=False)
    # Item 11 asks each host over SSH; in CI the runner reaches SSH only through the rule this adds.
    with wiring.ssh_access(env, open_ssh_from):
        items = checks.run(env, wiring.checklist_ports(env), progress=(lambda _m: None) if as_json else progress)
    if as_json:
        print_json([item.__dict__ for item in items])
    else:
        table(f"deployment checklist: {env.name}", ["#", "item", "result", "evidence"],
              [(i.number, i.title, i.status, i.evidence) for i in items])
    failed = [f"{i.number}. {i.title}: {i.evidence}" for i in items if i.status == "fail"]
    if failed:
        raise VerificationError("checklist failed: " + " | ".join(failed))
