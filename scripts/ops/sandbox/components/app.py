"""The app, one per role (primary, standby): this checkout's process, or the image in --containers mode."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ops.errors import SandboxError
from ops.paths import APP_DIR
from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component, probe_http
from ops.sandbox.engine import DOCKER_CLI, EngineClient
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port


def image_start_command(dockerfile: Path = APP_DIR / "Dockerfile") -> list[str]:
    """The container image's CMD (exec form), so the sandbox starts the app exactly as the image does."""
    for line in reversed(dockerfile.read_text().splitlines()):
        if line.startswith("CMD "):
            try:
                argv = json.loads(line[4:])
            except json.JSONDecodeError:
                break
            if not isinstance(argv, list) or not argv:
                break
            return [str(a) for a in argv]
    raise SandboxError(f"{dockerfile}: no exec-form CMD [...] line found")


def app_argv() -> list[str]:
    argv = image_start_command()
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the image's python is this checkout's virtualenv here
    return argv


def release_env(root: Path, version: str) -> dict[str, str]:
    """Extra environment a local release carries (`.sandbox/releases/<version>.env`, KEY=VALUE lines).

    In the cloud a version is an image tag; locally the code is the checkout, and a release
    is that code with its configuration, which is what a bad release usually gets wrong.
    """
    path = root / "releases" / f"{version}.env"
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def app_env(state: SandboxState, role: str, version: str) -> dict[str, str]:
    """The app process's environment: this one's, plus the app's own variables."""
    return {**os.environ, **app_variables(state, role, version)}


def app_variables(state: SandboxState, role: str, version: str) -> dict[str, str]:
    """The app's own variables: the same ones a Hetzner host's env file carries."""
    return {
        "APP_ENV": "local",
        "APP_ROLE": role,
        "APP_VERSION": version,
        "HOST": "127.0.0.1",
        "PORT": str(state.apps[role].port),
        "DATABASE_URL": state.database_url(state.apps[role].database),
        "REDIS_URL": state.redis_url(),
        "S3_ENDPOINT_URL": state.s3.endpoint_url,
        "S3_ACCESS_KEY_ID": state.s3.access_key,
        "S3_SECRET_ACCESS_KEY": state.s3.secret_key,
        "S3_BUCKET_UPLOADS": state.s3.buckets["uploads"],
        "S3_REGION": "us-east-1",
        "AUTH_SECRET": state.auth_secret,
        "STRIPE_WEBHOOK_SECRET": state.stripe_webhook_secret,
        # The read replica's, in a sandbox made with one (OPS_SANDBOX_REPLICA=1): the same database on it.
        **({"DATABASE_REPLICA_URL": replica} if (replica := state.replica_url(state.apps[role].database)) else {}),
        **release_env(Path(state.root), version),
    }


def probe_app(state: SandboxState, role: str) -> str:
    return probe_http(state.app_url(role) + "/ready")


def container_name(state: SandboxState, role: str) -> str:
    return f"autoenroll-sandbox-{state.sandbox_id}-{role}"


def engine_client(state: SandboxState, root: Path) -> EngineClient:
    return EngineClient(state.docker_host(), root / "docker-cli")


def app_container_argv(state: SandboxState, role: str) -> list[str]:
    """`docker run` of the image in the foreground: the CLI is the process the sandbox tracks.

    The CLI forwards SIGTERM to the container (uvicorn's graceful stop) and `--rm` removes it.
    Variables go by name only (`--env KEY`, values from the CLI's environment), so no secret is
    on a command line. The host network: the app reaches the sandbox's loopback services and
    listens on its own port, as the process would.
    """
    variables = app_variables(state, role, state.apps[role].version)
    image = state.containers.image if state.containers is not None else ""
    return [DOCKER_CLI, f"--host={state.docker_host()}", "run", "--rm", "--name", container_name(state, role),
            "--network=host", *(arg for key in variables for arg in ("--env", key)), image]



class App(Component):
    """The app in one role; in --containers mode the `docker run` CLI is the process tracked."""

    start_timeout = 30.0
    follows_app_mode = True
    runs_app_image = True

    def __init__(self, role: str) -> None:
        self.role = role
        self.name = f"app-{role}"

    def endpoint(self, state: SandboxState) -> str:
        return state.app_url(self.role)

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.apps[self.role].proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.apps[self.role].proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.apps[self.role].port]

    def reallocate_ports(self, state: SandboxState) -> None:
        state.apps[self.role].port = free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        role, app = self.role, state.apps[self.role]
        log = root / "logs" / f"app-{role}.log"
        if state.containers is not None:
            # A container left by a killed CLI would hold the name (and the port).
            engine_client(state, root).docker("rm", "--force", container_name(state, role), check=False)
            env = {**app_variables(state, role, app.version), "PATH": os.environ.get("PATH", ""),
                   "DOCKER_CONFIG": str(root / "docker-cli")}
            return start_process(app_container_argv(state, role), log_file=log, env=env, cwd=root)
        return start_process(app_argv(), log_file=log, env=app_env(state, role, app.version), cwd=APP_DIR)

    def probe(self, state: SandboxState) -> str:
        return probe_app(state, self.role)

    def after_stop(self, state: SandboxState) -> None:
        if state.containers is None:
            return
        # The CLI's --rm removes the container; this catches one whose CLI was killed.
        client = EngineClient(state.docker_host(), Path(state.root) / "docker-cli")
        if client.answers():
            client.docker("rm", "--force", container_name(state, self.role), check=False)
