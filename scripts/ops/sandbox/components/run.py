"""The engine's steps on any component: health, stop, free ports, waiting; the registry in start order."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ops.errors import ConfigError
from ops.processes import is_running, stop_process
from ops.sandbox.components.app import App
from ops.sandbox.components.base import Component, ComponentHealth, _timed
from ops.sandbox.components.caddy import Caddy
from ops.sandbox.components.docker import Docker
from ops.sandbox.components.heartbeat import Heartbeat
from ops.sandbox.components.postgres import Postgres
from ops.sandbox.components.redis import Redis
from ops.sandbox.components.replica import Replica, new_replica_state, wanted
from ops.sandbox.components.s3 import S3
from ops.sandbox.state import APP_ROLES, SandboxState
from ops.tcp_ports import port_is_free

COMPONENTS: tuple[Component, ...] = (Postgres(), Redis(), S3(), Heartbeat(), *(App(role) for role in APP_ROLES),
                                     Caddy())

# Only in --containers mode with the sandbox's own engine (see components_for).
DOCKER: Component = Docker()
# Only in a sandbox made with OPS_SANDBOX_REPLICA=1 (see components_for): right after PostgreSQL.
REPLICA: Component = Replica()

COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)  # the default mode's; --containers adds DOCKER


def components_for(state: SandboxState) -> tuple[Component, ...]:
    """The sandbox's components in start order: the read replica, when the sandbox has one, right after
    PostgreSQL; the engine, when it runs its own, before the apps.

    A sandbox gets its replica here, the first time this is asked with OPS_SANDBOX_REPLICA=1 (what
    `ops sandbox up` asks before starting anything, and records with the state)."""
    if state.replica is None and wanted():
        state.replica = new_replica_state(state)
    components = COMPONENTS
    if state.replica is not None:
        components = (components[0], REPLICA, *components[1:])
    if state.containers is None or state.containers.engine_host is not None:
        return components
    first_app = next(i for i, comp in enumerate(components) if comp.runs_app_image)
    return (*components[:first_app], DOCKER, *components[first_app:])


def component(name: str) -> Component:
    for comp in (*COMPONENTS, DOCKER, REPLICA):
        if comp.name == name:
            return comp
    raise ConfigError(f"unknown component {name!r}",
                      hint=f"one of: {', '.join((*COMPONENT_NAMES, DOCKER.name, REPLICA.name))}")


def health(state: SandboxState, comp: Component) -> ComponentHealth:
    """A component is up only when its own process is alive *and* its probe answers."""
    proc = comp.get_proc(state)
    if proc is None or not is_running(proc):
        return ComponentHealth(comp.name, "down", None, comp.endpoint(state), "process not running")
    ok, detail, latency = _timed(lambda: comp.probe(state))
    return ComponentHealth(comp.name, "up" if ok else "unhealthy", proc.pid, comp.endpoint(state), detail,
                           round(latency, 1))




def stop(state: SandboxState, comp: Component) -> bool:
    stopped = stop_process(comp.get_proc(state), sig=comp.stop_signal, timeout=comp.stop_timeout)
    comp.after_stop(state)
    return stopped


def ports_free(state: SandboxState, comp: Component) -> bool:
    return all(port_is_free(p) for p in comp.ports(state))



def reallocate_ports(state: SandboxState, comp: Component) -> None:
    """Give a component new free ports when something else took its old ones."""
    comp.reallocate_ports(state)


def wait_accepting(state: SandboxState, comp: Component, timeout: float) -> bool:
    """Wait until the process accepts work (its `accepting` check passes); False if it died or timed out."""
    proc = comp.get_proc(state)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(proc):
            return False
        try:
            comp.accepting(state)
            return True
        except Exception:  # not ready yet
            time.sleep(0.2)
    return False


def wait_healthy(state: SandboxState, comp: Component, timeout: float) -> ComponentHealth:
    deadline = time.monotonic() + timeout
    result = health(state, comp)
    while result.state != "up" and time.monotonic() < deadline:
        if result.state == "down":
            break  # the process died: waiting longer won't help
        time.sleep(0.2)
        result = health(state, comp)
    return result


def tail(path: Path, lines: int) -> list[str]:
    if not path.exists():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 64 * 1024))
        data = fh.read().decode(errors="replace")
    return data.splitlines()[-lines:]
