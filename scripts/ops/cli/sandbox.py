"""`ops sandbox up|down|status|logs`: the whole stack as local processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from ops.cli import lazy
from ops.cli.base import JSON_OPTION, OpsTyper
from ops.errors import SandboxError
from ops.output import print_json, progress, table
from ops.paths import sandbox_dir

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops.sandbox import manager
    from ops.sandbox.components import ComponentHealth
    from ops.sandbox.state import load_state
else:
    manager = lazy.module("ops.sandbox.manager")
    load_state = lazy.function("ops.sandbox.state", "load_state")

app = OpsTyper(help="The local sandbox: PostgreSQL, Redis, SeaweedFS S3, the app (primary, standby), Caddy.")


def _rows(results: list[ComponentHealth]) -> list[list[Any]]:
    return [[r.name, r.state, r.pid or "", r.endpoint, r.latency_ms if r.latency_ms is not None else "",
             r.detail] for r in results]


def _as_dicts(results: list[ComponentHealth]) -> list[dict[str, Any]]:
    return [{"name": r.name, "state": r.state, "pid": r.pid, "endpoint": r.endpoint,
             "latency_ms": r.latency_ms, "detail": r.detail} for r in results]


COLUMNS = ["component", "state", "pid", "endpoint", "ms", "detail"]


CONTAINERS_OPTION = typer.Option(
    None, "--containers/--processes",
    help="Run the apps as the image built from app/Dockerfile (in a Docker engine of the sandbox's own, "
         "or OPS_SANDBOX_DOCKER_HOST's), or as processes of this checkout. Default: as the sandbox already does; "
         "a new sandbox runs containers when a Docker engine can be had (docker.io, root), processes otherwise.")


@app.command("up")
def up(as_json: bool = JSON_OPTION, containers: bool | None = CONTAINERS_OPTION) -> None:
    """Start every component that is not running (idempotent), then show their health."""
    root = sandbox_dir()
    chosen = containers if containers is not None else manager.default_containers(root)
    results = manager.up(root, progress=progress, containers=chosen)
    if as_json:
        print_json({"components": _as_dicts(results), **load_state(root).public_view()})
    else:
        table("sandbox", COLUMNS, _rows(results))
        progress(f"app through Caddy: {load_state(root).public_url()}")


@app.command("status")
def status(as_json: bool = JSON_OPTION) -> None:
    """Each component's health; exit 9 when any is not up."""
    results = manager.status(sandbox_dir())
    if as_json:
        print_json({"components": _as_dicts(results), "healthy": all(r.state == "up" for r in results)})
    else:
        table("sandbox", COLUMNS, _rows(results))
    bad = [r.name for r in results if r.state != "up"]
    if bad:
        raise SandboxError(f"not healthy: {', '.join(bad)}", hint="run: ops sandbox up")


@app.command("down")
def down(as_json: bool = JSON_OPTION) -> None:
    """Stop the processes this sandbox started, and nothing else. Data is kept for the next `up`."""
    stopped = manager.down(sandbox_dir(), progress=progress)
    if as_json:
        print_json({"stopped": stopped})
    elif not stopped:
        progress("nothing was running")


@app.command("logs")
def logs(
    component: str = typer.Argument(..., help="postgres, redis, s3, heartbeat, app-primary, app-standby, caddy"),
    lines: int = typer.Option(50, "--lines", "-n", min=1, max=10000, help="How many of the last lines."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The last lines of one component's log."""
    from ops.secrets import scrub_text

    out = [scrub_text(line) for line in manager.logs(sandbox_dir(), component, lines)]
    if as_json:
        print_json({"component": component, "lines": out})
    else:
        for line in out:
            typer.echo(line)
