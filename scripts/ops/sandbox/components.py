"""The sandbox's components: how each is started (as argv), probed and stopped.

Each component is a real process of the real software (PostgreSQL, Redis, SeaweedFS,
the app, Caddy). Commands are built as argv lists by small pure functions, so tests can
assert them, and executed by `ops.processes`.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from ops.errors import ConfigError, SandboxError
from ops.migrations import head_revision, migrate, schema_revision
from ops.paths import APP_DIR, venv_binary
from ops.pg.tools import bindir as postgres_bindir
from ops.processes import ProcRef, is_running, run_checked, start_process, stop_process
from ops.sandbox.engine import DOCKER_CLI, EngineClient, dockerd_argv, unmount_under
from ops.sandbox.state import APP_ROLES, BRANCHES, SandboxState
from ops.tcp_ports import free_port, port_is_free

Health = Literal["up", "down", "unhealthy"]


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    state: Health
    pid: int | None
    endpoint: str
    detail: str
    latency_ms: float | None = None


def _timed(probe: Callable[[], str]) -> tuple[bool, str, float]:
    started = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except Exception as exc:  # any probe failure means "unhealthy", with its reason
        detail, ok = f"{exc.__class__.__name__}: {str(exc)[:120]}", False
    return ok, detail, (time.perf_counter() - started) * 1000


# --------------------------------------------------------------------------- PostgreSQL

POSTGRES_USER = "postgres"


def _running_as_root() -> bool:
    return os.geteuid() == 0


def as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: drop to the `postgres` user without a fork (setpriv)."""
    if not _running_as_root():
        return argv
    return ["setpriv", f"--reuid={POSTGRES_USER}", f"--regid={POSTGRES_USER}", "--init-groups", "--", *argv]


def initdb_argv(data_dir: Path, pwfile: Path) -> list[str]:
    return as_postgres_user([
        str(postgres_bindir() / "initdb"), "-D", str(data_dir), "-U", POSTGRES_USER,
        "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        "-E", "UTF8", "--no-locale", "--no-instructions",
    ])


def postgres_argv(state: SandboxState) -> list[str]:
    pg = state.postgres
    return as_postgres_user([
        str(postgres_bindir() / "postgres"), "-D", pg.data_dir, "-p", str(pg.port),
        "-c", "listen_addresses=127.0.0.1",
        "-c", f"unix_socket_directories={pg.socket_dir}",
        "-c", "max_connections=200",
        # A sandbox trades crash-durability for speed; nothing here outlives a drill.
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ])


def _chown_to_postgres(path: Path) -> None:
    if not _running_as_root():
        return
    user = pwd.getpwnam(POSTGRES_USER)
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, user.pw_uid, user.pw_gid)
        for name in files:
            os.chown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def _postgres_can_write(path: Path) -> bool:
    if not _running_as_root():
        return os.access(path, os.W_OK | os.X_OK)
    probe = subprocess.run(as_postgres_user(["test", "-w", str(path), "-a", "-x", str(path)]), check=False)
    return probe.returncode == 0


def choose_pg_dir(root: Path, sandbox_id: str) -> Path:
    """The folder for PostgreSQL's data: inside the sandbox unless the `postgres` user can't reach it.

    When running as root from a checkout under a private folder (mode 0700), the postgres
    user can't traverse to it; then the data lives under /var/lib/postgresql instead.
    """
    preferred = root / "pg"
    preferred.mkdir(parents=True, exist_ok=True)
    _chown_to_postgres(preferred)
    if _postgres_can_write(preferred):
        return preferred
    fallback = Path("/var/lib/postgresql/autoenroll-sandbox") / sandbox_id
    fallback.mkdir(parents=True, exist_ok=True)
    _chown_to_postgres(fallback.parent)
    return fallback


def ensure_pg_initialised(state: SandboxState) -> None:
    data_dir = Path(state.postgres.data_dir)
    if (data_dir / "PG_VERSION").exists():
        from ops.pg import tools as pgtools

        found = (data_dir / "PG_VERSION").read_text().strip()
        wanted = pgtools.tool_major("postgres")
        if found == str(wanted):
            return
        # A sandbox made before the move to production's major: its data can't be opened by the new
        # server. Sandbox data is disposable (bootstrap rebuilds the branches), but keep it aside.
        aside = data_dir.with_name(f"{data_dir.name}.pg{found}-old")
        shutil.rmtree(aside, ignore_errors=True)
        data_dir.rename(aside)
    pg_root = data_dir.parent
    pg_root.mkdir(parents=True, exist_ok=True)
    Path(state.postgres.socket_dir).mkdir(parents=True, exist_ok=True)
    pwfile = pg_root / "initdb.pw"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(state.postgres.superuser_password + "\n")
    _chown_to_postgres(pg_root)
    try:
        run_checked(initdb_argv(data_dir, pwfile), what="initdb")
    finally:
        pwfile.unlink(missing_ok=True)


def probe_postgres(state: SandboxState) -> str:
    import psycopg

    with psycopg.connect(state.database_url("postgres", admin=True), connect_timeout=2) as conn:
        version = conn.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {version[0] if version else '?'}"


def bootstrap_postgres(state: SandboxState) -> None:
    """Create the app role and the three branch databases; migrate each. Safe to repeat."""
    import psycopg
    from psycopg import sql

    pg = state.postgres
    with psycopg.connect(state.database_url("postgres", admin=True), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (pg.app_role,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}").format(
                sql.Identifier(pg.app_role), sql.Literal(pg.app_password)
            )
        )
        for branch in BRANCHES:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (branch,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(branch)))
    behind = [b for b in BRANCHES if schema_revision(state.database_url(b, admin=True)) != head_revision()]
    # Independent databases: migrate them side by side (each run is a ~2 s subprocess).
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(BRANCHES)) as pool:
        futures = [pool.submit(migrate, state.database_url(b, admin=True), app_role=pg.app_role)
                   for b in behind]
        for future in futures:
            future.result()


# --------------------------------------------------------------------------- Redis


def write_redis_conf(state: SandboxState, root: Path) -> Path:
    """Redis config with the password, 0600: a password on argv would show in `ps`."""
    redis_dir = root / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    conf = redis_dir / "redis.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(
            f"port {state.redis.port}\nbind 127.0.0.1\nprotected-mode yes\n"
            f"requirepass {state.redis.password}\ndir {redis_dir}\n"
            'save ""\nappendonly no\ndaemonize no\n'
        )
    return conf


def redis_argv(conf: Path) -> list[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    return [binary, str(conf)]


def probe_redis(state: SandboxState) -> str:
    import redis

    client = redis.Redis.from_url(state.redis_url(), socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
        return f"Redis {client.info('server').get('redis_version', '?')}"
    finally:
        client.close()


# --------------------------------------------------------------------------- SeaweedFS (S3)

S3_PORT_NAMES = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


def write_s3_identities(state: SandboxState, root: Path) -> Path:
    s3_dir = root / "s3"
    (s3_dir / "data").mkdir(parents=True, exist_ok=True)
    config = {
        "identities": [{
            "name": "sandbox",
            "credentials": [{"accessKey": state.s3.access_key, "secretKey": state.s3.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]
    }
    path = s3_dir / "identities.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    return path


def weed_argv(state: SandboxState, root: Path, identities: Path) -> list[str]:
    p = state.s3.ports
    return [
        venv_binary("weed"), "server", f"-dir={root / 's3' / 'data'}",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
        "-master.volumeSizeLimitMB=1024", "-volume.max=0",
        "-volume.preStopSeconds=0",  # its default 10 s pause is for clusters, not a sandbox
        f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
        "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
        "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={identities}",
        # Side services we don't use would otherwise grab fixed default ports.
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]


def s3_client(state: SandboxState):  # type: ignore[no-untyped-def]
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=state.s3.endpoint_url,
        aws_access_key_id=state.s3.access_key,
        aws_secret_access_key=state.s3.secret_key,
        region_name="us-east-1",
        config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2},
                      s3={"addressing_style": "path"}),
    )


def ensure_buckets(state: SandboxState) -> None:
    client = s3_client(state)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for name in state.s3.buckets.values():
        if name not in existing:
            client.create_bucket(Bucket=name)


def probe_s3(state: SandboxState) -> str:
    client = s3_client(state)
    names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    missing = sorted(set(state.s3.buckets.values()) - names)
    if missing:
        raise RuntimeError(f"buckets missing: {', '.join(missing)}")
    return f"{len(names)} buckets"


# --------------------------------------------------------------------------- the app


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
        **release_env(Path(state.root), version),
    }


def probe_http(url: str) -> str:
    response = httpx.get(url, timeout=2)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code} from {url}")
    return f"HTTP 200 {url}"


def probe_app(state: SandboxState, role: str) -> str:
    return probe_http(state.app_url(role) + "/ready")


# --------------------------------------------------------------------------- Caddy


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


# --------------------------------------------------------------------------- heartbeat recorder


def heartbeat_argv(state: SandboxState, root: Path) -> list[str]:
    return [sys.executable, "-m", "ops.sandbox.heartbeat_recorder",
            "--port", str(state.heartbeat.port), "--file", str(root / "heartbeats.jsonl")]


def probe_heartbeat(state: SandboxState) -> str:
    return probe_http(f"http://127.0.0.1:{state.heartbeat.port}/health")


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Component:
    """One sandbox process: how to find its pid in the state, start it and probe it."""

    name: str
    endpoint: Callable[[SandboxState], str]
    get_proc: Callable[[SandboxState], ProcRef | None]
    set_proc: Callable[[SandboxState, ProcRef | None], None]
    ports: Callable[[SandboxState], list[int]]
    start: Callable[[SandboxState, Path], ProcRef]
    probe: Callable[[SandboxState], str]
    stop_signal: int = 15
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    # Succeeds as soon as the process accepts work; the post-start step (buckets, roles)
    # runs after it, and only then is `probe` expected to pass.
    accepting: Callable[[SandboxState], object] | None = None


def _start_postgres(state: SandboxState, root: Path) -> ProcRef:
    ensure_pg_initialised(state)
    return start_process(postgres_argv(state), log_file=root / "logs" / "postgres.log")


def _start_redis(state: SandboxState, root: Path) -> ProcRef:
    conf = write_redis_conf(state, root)
    return start_process(redis_argv(conf), log_file=root / "logs" / "redis.log")


def _start_s3(state: SandboxState, root: Path) -> ProcRef:
    identities = write_s3_identities(state, root)
    return start_process(weed_argv(state, root, identities), log_file=root / "logs" / "s3.log", cwd=root / "s3")


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


def _app_component(role: str) -> Component:
    def start(state: SandboxState, root: Path) -> ProcRef:
        app = state.apps[role]
        log = root / "logs" / f"app-{role}.log"
        if state.containers is not None:
            # A container left by a killed CLI would hold the name (and the port).
            engine_client(state, root).docker("rm", "--force", container_name(state, role), check=False)
            env = {**app_variables(state, role, app.version), "PATH": os.environ.get("PATH", ""),
                   "DOCKER_CONFIG": str(root / "docker-cli")}
            return start_process(app_container_argv(state, role), log_file=log, env=env, cwd=root)
        return start_process(app_argv(), log_file=log, env=app_env(state, role, app.version), cwd=APP_DIR)

    def set_proc(s: SandboxState, proc: ProcRef | None) -> None:
        s.apps[role].proc = proc

    return Component(
        name=f"app-{role}",
        endpoint=lambda s: s.app_url(role),
        get_proc=lambda s: s.apps[role].proc,
        set_proc=set_proc,
        ports=lambda s: [s.apps[role].port],
        start=start,
        probe=lambda s: probe_app(s, role),
        start_timeout=30.0,
    )


def _start_docker(state: SandboxState, root: Path) -> ProcRef:
    folder = root / "docker"
    folder.mkdir(parents=True, exist_ok=True)
    return start_process(dockerd_argv(folder), log_file=root / "logs" / "docker.log")


def probe_docker(state: SandboxState) -> str:
    client = EngineClient(state.docker_host(), Path(state.root) / "docker-cli")
    version = client.docker("version", "--format", "{{.Server.Version}}", timeout=10).stdout.strip()
    return f"dockerd {version}"


def _docker_proc(state: SandboxState) -> ProcRef | None:
    return state.containers.proc if state.containers is not None else None


def _set_docker_proc(state: SandboxState, proc: ProcRef | None) -> None:
    if state.containers is not None:
        state.containers.proc = proc


def _start_caddy(state: SandboxState, root: Path) -> ProcRef:
    return start_process(caddy_argv(), log_file=root / "logs" / "caddy.log",
                         env=caddy_env(state, root), cwd=root)


def _start_heartbeat(state: SandboxState, root: Path) -> ProcRef:
    return start_process(heartbeat_argv(state, root), log_file=root / "logs" / "heartbeat.log")


def _setter(attr: str) -> Callable[[SandboxState, ProcRef | None], None]:
    def set_proc(state: SandboxState, proc: ProcRef | None) -> None:
        getattr(state, attr).proc = proc

    return set_proc


COMPONENTS: tuple[Component, ...] = (
    Component("postgres", lambda s: f"127.0.0.1:{s.postgres.port}", lambda s: s.postgres.proc,
              _setter("postgres"), lambda s: [s.postgres.port], _start_postgres, probe_postgres,
              stop_signal=2),  # SIGINT: PostgreSQL's "fast" shutdown
    Component("redis", lambda s: f"127.0.0.1:{s.redis.port}", lambda s: s.redis.proc,
              _setter("redis"), lambda s: [s.redis.port], _start_redis, probe_redis),
    Component("s3", lambda s: s.s3.endpoint_url, lambda s: s.s3.proc, _setter("s3"),
              lambda s: list(s.s3.ports.values()), _start_s3, probe_s3,
              accepting=lambda s: s3_client(s).list_buckets(),
              # SeaweedFS's filer waits 15 s for idle gRPC streams to close; its stores are
              # append-only logs that survive a kill, so don't make every `down` wait for that.
              stop_timeout=5.0),
    Component("heartbeat", lambda s: s.heartbeat_url(), lambda s: s.heartbeat.proc, _setter("heartbeat"),
              lambda s: [s.heartbeat.port], _start_heartbeat, probe_heartbeat, start_timeout=15.0),
    *(_app_component(role) for role in APP_ROLES),
    Component("caddy", lambda s: s.public_url(), lambda s: s.caddy.proc, _setter("caddy"),
              lambda s: [s.caddy.port, s.caddy.admin_port], _start_caddy, probe_caddy, start_timeout=30.0),
)

# Only in --containers mode with the sandbox's own engine (see components_for).
DOCKER = Component("docker", lambda s: s.docker_host(), _docker_proc, _set_docker_proc, lambda s: [],
                   _start_docker, probe_docker, start_timeout=60.0)

COMPONENT_NAMES = tuple(c.name for c in COMPONENTS)  # the default mode's; --containers adds DOCKER


def components_for(state: SandboxState) -> tuple[Component, ...]:
    """The sandbox's components in start order: the engine, when it runs its own, before the apps."""
    if state.containers is None or state.containers.engine_host is not None:
        return COMPONENTS
    first_app = next(i for i, comp in enumerate(COMPONENTS) if comp.name.startswith("app-"))
    return (*COMPONENTS[:first_app], DOCKER, *COMPONENTS[first_app:])


def component(name: str) -> Component:
    for comp in (*COMPONENTS, DOCKER):
        if comp.name == name:
            return comp
    raise ConfigError(f"unknown component {name!r}", hint=f"one of: {', '.join((*COMPONENT_NAMES, DOCKER.name))}")


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
    if comp is DOCKER:
        unmount_under(Path(state.root) / "docker")  # what a dockerd that was killed left mounted
    if state.containers is not None and comp.name.startswith("app-"):
        # The CLI's --rm removes the container; this catches one whose CLI was killed.
        client = EngineClient(state.docker_host(), Path(state.root) / "docker-cli")
        if client.answers():
            client.docker("rm", "--force", container_name(state, comp.name.removeprefix("app-")), check=False)
    return stopped


def ports_free(state: SandboxState, comp: Component) -> bool:
    return all(port_is_free(p) for p in comp.ports(state))


def reallocate_ports(state: SandboxState, comp: Component) -> None:
    """Give a component new free ports when something else took its old ones."""
    if comp.name == "postgres":
        state.postgres.port = free_port()
    elif comp.name == "redis":
        state.redis.port = free_port()
    elif comp.name == "s3":
        state.s3.ports = {name: free_port() for name in S3_PORT_NAMES}
    elif comp.name == "heartbeat":
        state.heartbeat.port = free_port()
    elif comp.name.startswith("app-"):
        state.apps[comp.name.removeprefix("app-")].port = free_port()
    elif comp.name == "caddy":
        state.caddy.port, state.caddy.admin_port = free_port(), free_port()


def wait_accepting(state: SandboxState, comp: Component, timeout: float) -> bool:
    """Wait until the process accepts work (its `accepting` check passes); False if it died or timed out."""
    check = comp.accepting or comp.probe
    proc = comp.get_proc(state)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(proc):
            return False
        try:
            check(state)
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
