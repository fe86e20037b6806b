"""`ops env show`: the resolved Environment, secrets left out."""

from __future__ import annotations

from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper
from ops.output import print_json, table
from ops.wiring import public_view
from ops.wiring import resolve_from_sources as resolve

app = OpsTyper(help="Inspect the environment `ops` resolves for --env.")


@app.command("show")
def show(env: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Show where an environment's database, storage, hosts and traffic switch are."""
    view = public_view(resolve(env))
    if as_json:
        print_json(view)
        return
    table(f"environment {env}", ["key", "value"], [(k, v) for k, v in view.items()])
