"""`ops sandbox up --containers`: the sandbox's apps run as the image built from app/Dockerfile.

The test switches the session's sandbox to containers in the session's engine (OPS_SANDBOX_DOCKER_HOST,
so the image build reuses the `app_image` layers) and back to processes at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ops.cli import app
from ops.sandbox import components as c
from ops.sandbox import manager
from ops.sandbox.images import BuiltImage
from ops.sandbox.state import load_state
from tests.lab.docker import DockerEngine


@pytest.fixture()
def containers_sandbox(sandbox_root: Path, docker_engine: DockerEngine, app_image: BuiltImage) -> Iterator[Path]:
    os.environ["OPS_SANDBOX_DOCKER_HOST"] = docker_engine.host
    try:
        yield sandbox_root
    finally:
        os.environ.pop("OPS_SANDBOX_DOCKER_HOST", None)
        manager.up(sandbox_root, containers=False)


def _running_containers(engine: DockerEngine) -> dict[str, str]:
    out = engine.docker("ps", "--format", "{{.Names}} {{.Image}}").stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


def test_up_containers_runs_the_apps_as_the_image_and_processes_again_after(containers_sandbox: Path,
                                                                            docker_engine: DockerEngine) -> None:
    result = CliRunner().invoke(app, ["sandbox", "up", "--containers", "--json"])
    assert result.exit_code == 0, result.output
    state = load_state(containers_sandbox)
    assert state.containers is not None and state.containers.engine_host == docker_engine.host

    running = _running_containers(docker_engine)
    for role in state.apps:
        assert running.get(c.container_name(state, role)) == state.containers.image, running
    assert httpx.get(state.public_url() + "/ready", timeout=5).status_code == 200
    uid = docker_engine.docker("exec", c.container_name(state, "primary"), "id", "-u")
    assert uid.stdout.strip() == "10001"
    # No secret on the CLI's command line: variables go by name.
    argv = Path(f"/proc/{state.apps['primary'].proc.pid}/cmdline").read_bytes().decode()  # type: ignore[union-attr]
    assert state.auth_secret not in argv and "AUTH_SECRET" in argv

    manager.up(containers_sandbox, containers=False)
    state = load_state(containers_sandbox)
    assert state.containers is None
    assert not any(name.startswith("autoenroll-sandbox-") for name in _running_containers(docker_engine))
    assert httpx.get(state.public_url() + "/ready", timeout=5).status_code == 200
