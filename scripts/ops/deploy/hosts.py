"""Hosts: where app versions run. Local processes in the sandbox; SSH + Docker on Hetzner.

The deploy use-case needs: the hosts (with their role), a candidate of a new version started
beside the current one, whether it is ready, and then promoting or discarding it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from ops.paths import APP_DIR
from ops.ports import free_port
from ops.processes import ProcRef, start_process, stop_process
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState, load_state, save_state


@dataclass(frozen=True)
class Candidate:
    role: str
    version: str
    address: str  # host:port the candidate serves on
    proc: ProcRef | None = None


class Hosts(Protocol):
    def roles(self) -> list[str]: ...
    def current(self, role: str) -> tuple[str, str]: ...  # (version, address)
    def start_candidate(self, role: str, version: str) -> Candidate: ...
    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None: ...  # None = ready, else why not
    def promote(self, candidate: Candidate) -> None: ...
    def discard(self, candidate: Candidate) -> None: ...


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

    def current(self, role: str) -> tuple[str, str]:
        app = self._state().apps[role]
        return app.version, f"127.0.0.1:{app.port}"

    def start_candidate(self, role: str, version: str) -> Candidate:
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
            if not is_running(candidate.proc):
                log = c.tail(self.root / "logs" / f"app-{candidate.role}.log", 3)
                return f"process exited ({' | '.join(log)[-300:]})"
            try:
                response = httpx.get(f"http://{candidate.address}/ready", timeout=2)
                if response.status_code == 200:
                    return None
                last = f"/ready answered {response.status_code}"
            except httpx.HTTPError as exc:
                last = exc.__class__.__name__
            time.sleep(0.2)
        return f"not ready after {timeout:g}s ({last})"

    def promote(self, candidate: Candidate) -> None:
        state = self._state()
        app = state.apps[candidate.role]
        old = app.proc
        app.proc, app.port, app.version = candidate.proc, int(candidate.address.rsplit(":", 1)[1]), candidate.version
        save_state(self.root, state)
        # Graceful: uvicorn stops accepting, finishes in-flight requests, then exits.
        stop_process(old, timeout=30)

    def discard(self, candidate: Candidate) -> None:
        stop_process(candidate.proc, timeout=10)


def ssh_deploy_argv(address: str, version: str, user: str = "deploy") -> list[str]:
    """The command `ops deploy` runs per Hetzner host (the host role installs autoenroll-deploy)."""
    return ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"{user}@{address}",
            "sudo", "/usr/local/bin/autoenroll-deploy", version]
