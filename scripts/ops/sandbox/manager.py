"""Sandbox use-cases: up, down, status, logs. The CLI in `ops.cli.sandbox` only renders them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from autoenroll.contract import BUCKET_ROLES, bucket_name
from ops.errors import NotFoundError, SandboxError
from ops.processes import run_checked
from ops.sandbox import components as c
from ops.sandbox.state import (
    APP_ROLES,
    AppState,
    CaddyState,
    ContainersState,
    HeartbeatState,
    PostgresState,
    RedisState,
    S3State,
    SandboxState,
    load_state,
    save_state,
    state_path,
)
from ops.tcp_ports import free_port

Progress = Callable[[str], None]


def _new_state(root: Path) -> SandboxState:
    import uuid

    sandbox_id = uuid.uuid4().hex[:12]
    pg_dir = c.choose_pg_dir(root, sandbox_id)
    return SandboxState(
        sandbox_id=sandbox_id,
        root=str(root),
        postgres=PostgresState(port=free_port(), data_dir=str(pg_dir / "data"), socket_dir=str(pg_dir / "run")),
        redis=RedisState(port=free_port()),
        s3=S3State(ports={name: free_port() for name in c.S3_PORT_NAMES},
                   buckets={role: bucket_name("local", role) for role in BUCKET_ROLES}),
        apps={role: AppState(port=free_port()) for role in APP_ROLES},
        caddy=CaddyState(port=free_port(), admin_port=free_port()),
        heartbeat=HeartbeatState(port=free_port()),
    )


def _fail_with_log(root: Path, result: c.ComponentHealth) -> SandboxError:
    log = root / "logs" / f"{result.name}.log"
    last = [line for line in c.tail(log, 5) if line.strip()]
    from ops.secrets import scrub_text

    detail = scrub_text(" | ".join(last)[-400:]) if last else "no log output"
    return SandboxError(
        f"{result.name} did not become healthy ({result.detail}); last log lines: {detail}",
        hint=f"see {log}, or run: ops sandbox logs {result.name}",
    )


def default_containers(root: Path) -> bool | None:
    """What `ops sandbox up` without --containers/--processes chooses: an existing sandbox keeps its
    mode (None); a new one runs the apps as the image, what production runs, when a Docker engine can
    be had (OPS_SANDBOX_DOCKER_HOST, or root with docker.io and the image's offline build tools).

    The test suite's and benchmarks' sandboxes call `up` directly and stay on processes: the first
    image build takes minutes and every app start a container, where the suite has ~25 min in all;
    tests/scripts/test_sandbox_containers.py runs the container path."""
    if state_path(root).exists():
        return None
    if os.environ.get("OPS_SANDBOX_DOCKER_HOST"):
        return True
    from ops.sandbox.images import missing_lab_tools

    return os.geteuid() == 0 and not missing_lab_tools()


def up(root: Path, progress: Progress = lambda _msg: None, containers: bool | None = None) -> list[c.ComponentHealth]:
    """Start every component that is not already up. Safe to run again at any time.

    `containers`: True runs the apps as the image built from app/Dockerfile, False as processes
    of this checkout, None keeps what the sandbox already does (processes for a new one).
    """
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)  # noqa: S103 - the postgres user must traverse it; secrets inside are 0600
    state = load_state(root) if state_path(root).exists() else _new_state(root)
    state.backup_recipient = ensure_backup_key(Path(state.backup_identity_file()))
    if containers is not None and containers != (state.containers is not None):
        _switch_app_mode(root, state, containers, progress)
    save_state(root, state)
    results: list[c.ComponentHealth] = []
    image_ready = False
    for comp in c.components_for(state):
        current = c.health(state, comp)
        if current.state == "up":
            progress(f"{comp.name}: already up")
        else:
            if state.containers is not None and comp.runs_app_image and not image_ready:
                _build_app_image(root, state, progress)  # the checkout as it is now, like a release
                image_ready = True
            if current.state == "unhealthy":
                progress(f"{comp.name}: running but unhealthy, restarting")
                c.stop(state, comp)
            if not c.ports_free(state, comp):
                c.reallocate_ports(state, comp)
            progress(f"{comp.name}: starting")
            comp.set_proc(state, comp.start(state, root))
            save_state(root, state)  # record the pid at once: a crash now must still let `down` find it
            c.wait_accepting(state, comp, comp.start_timeout)
        comp.after_start(state, progress)
        current = c.wait_healthy(state, comp, comp.start_timeout)
        if current.state != "up":
            raise _fail_with_log(root, current)
        results.append(current)
    save_state(root, state)
    return results


def _switch_app_mode(root: Path, state: SandboxState, containers: bool, progress: Progress) -> None:
    """Stop the apps (and the sandbox's own engine, when leaving containers), then record the new mode."""
    for comp in reversed(c.components_for(state)):
        if comp.follows_app_mode:
            if c.stop(state, comp):
                progress(f"{comp.name}: stopped (switching to {'containers' if containers else 'processes'})")
            comp.set_proc(state, None)
    state.containers = ContainersState(engine_host=os.environ.get("OPS_SANDBOX_DOCKER_HOST") or None) \
        if containers else None
    save_state(root, state)


def _build_app_image(root: Path, state: SandboxState, progress: Progress) -> None:
    """Build app/Dockerfile into the engine (its layer cache makes an unchanged rebuild take seconds)."""
    from ops.sandbox.images import build_app_image

    if state.containers is None:
        return
    progress(f"image: building {state.containers.image} from app/Dockerfile")
    image = build_app_image(c.engine_client(state, root), reference=state.containers.image)
    progress(f"image: {image.reference} {image.size_bytes / 1e6:.0f} MB, user {image.user}")


def ensure_backup_key(identity: Path) -> str:
    """The sandbox's age key pair for backups (as production's would be kept in a vault); its public key."""
    if not identity.exists():
        identity.parent.mkdir(parents=True, exist_ok=True)
        run_checked(["age-keygen", "-o", str(identity)], what="age-keygen")
        os.chmod(identity, 0o600)
    for line in identity.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise SandboxError(f"{identity}: no public key line; delete it and run ops sandbox up again")


def status(root: Path) -> list[c.ComponentHealth]:
    """Health of every component; a crashed process is `down`, never `up`."""
    state = load_state(root)
    return [c.health(state, comp) for comp in c.components_for(state)]


def down(root: Path, progress: Progress = lambda _msg: None) -> list[str]:
    """Stop what this sandbox started (in reverse order), nothing else. Data is kept."""
    try:
        state = load_state(root)
    except NotFoundError:
        return []
    stopped: list[str] = []
    for comp in reversed(c.components_for(state)):
        if c.stop(state, comp):
            progress(f"{comp.name}: stopped")
            stopped.append(comp.name)
        comp.set_proc(state, None)
        save_state(root, state)
    return stopped


def logs(root: Path, name: str, lines: int) -> list[str]:
    c.component(name)  # validates the name
    load_state(root)
    return c.tail(root / "logs" / f"{name}.log", lines)
