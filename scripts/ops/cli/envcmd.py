"""`ops env show`: the resolved Environment, secrets left out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper
from ops.output import print_json, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops.wiring import public_view
    from ops.wiring import resolve_from_sources as resolve
else:
    public_view, resolve = lazy.functions("ops.wiring", "public_view", "resolve_from_sources")

app = OpsTyper(help="Inspect the environment `ops` resolves for --env.")


@app.command("show")
def show(env: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Show where an environment's database, storage, hosts and traffic switch are."""
    view = public_view(resolve(env))
    if as_json:
        print_json(view)
        return
    table(f"environment {env}", ["key", "value"], [(k, v) for k, v in view.items()])
