"""The sandbox's `Hosts`: app processes behind the sandbox's one Caddy (Hetzner's are in
ops.adapters.cloud.ssh_hosts)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from ops.paths import APP_DIR
from ops.ports import Candidate
from ops.processes import start_process, stop_process
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState, load_state, save_state
from ops.sandbox.traffic_caddy import CaddyUpstreams
from ops.tcp_ports import free_port


def _reason(response: httpx.Response) -> str:
    """The app's own account of a 503 (`reason`: which check failed, e.g. the schema revision)."""
    try:
        said = response.json().get("reason")
    except (ValueError, AttributeError):
        return ""
    return f": {said}" if isinstance(said, str) and said else ""


class LocalHosts:
    """The sandbox's app processes; state lives in the sandbox state file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _state(self) -> SandboxState:
        return load_state(self.root)

    def roles(self) -> list[str]:
        state = self._state()
        active = state.caddy.active_app
        return sorted(state.apps, key=lambda r: r == active)  # the serving host last

    def serving(self, _role: str) -> list[str]:
        with CaddyUpstreams(self._state().caddy_admin_url()) as caddy:
            return caddy.current_upstreams()

    def route(self, _role: str, dials: list[str]) -> None:
        with CaddyUpstreams(self._state().caddy_admin_url()) as caddy:
            caddy.set_upstreams(dials)

    def current(self, role: str) -> tuple[str, str]:
        app = self._state().apps[role]
        return app.version, f"127.0.0.1:{app.port}"

    def start_candidate(self, role: str, version: str, digest: str | None = None) -> Candidate:
        state = self._state()
        port = free_port()
        env = {**c.app_env(state, role, version), "PORT": str(port)}
        proc = start_process(c.app_argv(), log_file=self.root / "logs" / f"app-{role}.log", env=env, cwd=APP_DIR)
        return Candidate(role, version, f"127.0.0.1:{port}", proc)

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        from ops.processes import is_running

        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            # No handle: a live app asked about (the checklist), not a candidate this run started.
            if candidate.handle is not None and not is_running(candidate.handle):
                log = c.tail(self.root / "logs" / f"app-{candidate.role}.log", 3)
                return f"process exited ({' | '.join(log)[-300:]})"
            try:
                response = httpx.get(f"http://{candidate.address}/ready", timeout=2)
                if response.status_code == 200:
                    return None
                last = f"/ready answered {response.status_code}{_reason(response)}"
            except httpx.HTTPError as exc:
                last = exc.__class__.__name__
            time.sleep(0.2)
        return f"not ready after {timeout:g}s ({last})"

    def promote(self, candidate: Candidate) -> None:
        state = self._state()
        app = state.apps[candidate.role]
        old = app.proc
        app.proc, app.port, app.version = candidate.handle, int(candidate.address.rsplit(":", 1)[1]), candidate.version
        save_state(self.root, state)
        # Graceful: uvicorn stops accepting, finishes in-flight requests, then exits.
        stop_process(old, timeout=30)

    def discard(self, candidate: Candidate) -> None:
        stop_process(candidate.handle, timeout=10)

    def slots(self, role: str) -> list[tuple[str, str, str]]:
        # A candidate process is not recorded until promoted, and an interrupted deploy discards its
        # own (roll_out): the sandbox knows only its live one.
        version, address = self.current(role)
        return [(address, "live", version)]

