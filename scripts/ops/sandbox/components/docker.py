"""The sandbox's own Docker engine: only in --containers mode without OPS_SANDBOX_DOCKER_HOST."""

from __future__ import annotations

from pathlib import Path

from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component
from ops.sandbox.engine import EngineClient, dockerd_argv, unmount_under
from ops.sandbox.state import SandboxState


def probe_docker(state: SandboxState) -> str:
    client = EngineClient(state.docker_host(), Path(state.root) / "docker-cli")
    version = client.docker("version", "--format", "{{.Server.Version}}", timeout=10).stdout.strip()
    return f"dockerd {version}"


class Docker(Component):
    name = "docker"
    follows_app_mode = True

    def endpoint(self, state: SandboxState) -> str:
        return state.docker_host()

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.containers.proc if state.containers is not None else None

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        if state.containers is not None:
            state.containers.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return []  # a unix socket in the sandbox's folder

    def reallocate_ports(self, state: SandboxState) -> None:
        pass  # no TCP port

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        folder = root / "docker"
        folder.mkdir(parents=True, exist_ok=True)
        return start_process(dockerd_argv(folder), log_file=root / "logs" / "docker.log")

    def probe(self, state: SandboxState) -> str:
        return probe_docker(state)

    def after_stop(self, state: SandboxState) -> None:
        unmount_under(Path(state.root) / "docker")  # what a dockerd that was killed left mounted
