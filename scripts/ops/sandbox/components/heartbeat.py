"""The heartbeat recorder: stands in for BetterStack's heartbeat URL (ops.sandbox.heartbeat_recorder)."""

from __future__ import annotations

import sys
from pathlib import Path

from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component, probe_http
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port


def heartbeat_argv(state: SandboxState, root: Path) -> list[str]:
    return [sys.executable, "-m", "ops.sandbox.heartbeat_recorder",
            "--port", str(state.heartbeat.port), "--file", str(root / "heartbeats.jsonl")]


def probe_heartbeat(state: SandboxState) -> str:
    return probe_http(f"http://127.0.0.1:{state.heartbeat.port}/health")



class Heartbeat(Component):
    name = "heartbeat"
    start_timeout = 15.0

    def endpoint(self, state: SandboxState) -> str:
        return state.heartbeat_url()

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.heartbeat.proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.heartbeat.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.heartbeat.port]

    def reallocate_ports(self, state: SandboxState) -> None:
        state.heartbeat.port = free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        return start_process(heartbeat_argv(state, root), log_file=root / "logs" / "heartbeat.log")

    def probe(self, state: SandboxState) -> str:
        return probe_heartbeat(state)
