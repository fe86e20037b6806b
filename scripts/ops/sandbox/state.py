"""The sandbox's state file: ports, pids and credentials, the single source `--env local` reads.

The file holds passwords, so it is written 0600, atomically (temp file + rename), and is
never printed whole: `public_view()` is what reaches a terminal.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError

from autoenroll.contract import APP_DATABASE_ROLE
from ops.environment import AppHost, Environment, ObjectStorage, StripeWebhook
from ops.errors import NotFoundError, SandboxError
from ops.processes import ProcRef

STATE_FILE = "state.json"
BRANCHES = ("main", "staging", "development")
APP_ROLES = ("primary", "standby")



def new_secret() -> str:
    return secrets.token_urlsafe(24)


class PostgresState(BaseModel):
    port: int
    proc: ProcRef | None = None
    data_dir: str
    socket_dir: str
    superuser: str = "postgres"
    superuser_password: str = Field(default_factory=new_secret)
    app_role: str = APP_DATABASE_ROLE
    app_password: str = Field(default_factory=new_secret)


class ReplicaState(BaseModel):
    """The opt-in streaming replica of the sandbox's PostgreSQL (OPS_SANDBOX_REPLICA=1 at `ops sandbox up`):
    a hot standby made by pg_basebackup -R, which the apps read their lag-tolerant queries from."""

    port: int
    proc: ProcRef | None = None
    data_dir: str


class RedisState(BaseModel):
    port: int
    proc: ProcRef | None = None
    password: str = Field(default_factory=new_secret)


class S3State(BaseModel):
    ports: dict[str, int]
    proc: ProcRef | None = None
    access_key: str = Field(default_factory=lambda: "sandbox" + secrets.token_hex(6))
    secret_key: str = Field(default_factory=new_secret)
    buckets: dict[str, str]

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"


class AppState(BaseModel):
    port: int
    proc: ProcRef | None = None
    version: str = "dev"
    database: str = "main"  # which branch database this host's app uses (failover may move it)


class CaddyState(BaseModel):
    port: int
    admin_port: int
    proc: ProcRef | None = None
    active_app: str = "primary"


class HeartbeatState(BaseModel):
    port: int
    proc: ProcRef | None = None


class ContainersState(BaseModel):
    """`ops sandbox up --containers`: the apps run as the image built from app/Dockerfile.

    In an engine the sandbox starts itself (`proc`, folder `docker/` in the sandbox), or in the
    one at `engine_host` when OPS_SANDBOX_DOCKER_HOST named it at the first `up --containers`.
    """

    engine_host: str | None = None
    proc: ProcRef | None = None
    image: str = "autoenroll/app:sandbox"


class SandboxState(BaseModel):
    sandbox_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    root: str
    postgres: PostgresState
    redis: RedisState
    s3: S3State
    apps: dict[str, AppState]
    caddy: CaddyState
    heartbeat: HeartbeatState
    backup_recipient: str | None = None  # age public key; the identity is backup-identity.txt beside this file
    masking_key: str = Field(default_factory=new_secret)  # the sandbox's MASKING_KEY for branch refreshes
    auth_secret: str = Field(default_factory=lambda: secrets.token_urlsafe(48))  # the app's AUTH_SECRET
    # The app's STRIPE_WEBHOOK_SECRET; in the cloud the stack's webhook endpoint mints it.
    stripe_webhook_secret: str = Field(default_factory=lambda: "whsec_" + secrets.token_urlsafe(32))
    containers: ContainersState | None = None  # None: the apps run as processes of this checkout
    replica: ReplicaState | None = None  # None: no read replica (the default)

    def database_url(self, branch: str, *, admin: bool = False) -> str:
        """Connection URL for one of the branch databases, as the app role or the superuser."""
        pg = self.postgres
        user, password = (pg.superuser, pg.superuser_password) if admin else (pg.app_role, pg.app_password)
        return f"postgresql://{user}:{password}@127.0.0.1:{pg.port}/{branch}"

    def replica_url(self, branch: str) -> str | None:
        """The app role's URL for `branch` on the read replica, or None without one."""
        if self.replica is None:
            return None
        pg = self.postgres
        return f"postgresql://{pg.app_role}:{pg.app_password}@127.0.0.1:{self.replica.port}/{branch}"

    def redis_url(self) -> str:
        return f"redis://:{self.redis.password}@127.0.0.1:{self.redis.port}/0"

    def app_url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.apps[role].port}"

    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.caddy.port}"

    def caddy_admin_url(self) -> str:
        return f"http://127.0.0.1:{self.caddy.admin_port}"

    def backup_identity_file(self) -> str:
        return str(Path(self.root) / "backup-identity.txt")

    def heartbeat_url(self) -> str:
        return f"http://127.0.0.1:{self.heartbeat.port}/ping/backup"

    def public_view(self) -> dict[str, Any]:
        """Everything a person may see: ports and URLs, no passwords."""
        return {
            "sandbox_id": self.sandbox_id,
            "root": self.root,
            "public_url": self.public_url(),
            "postgres": {"port": self.postgres.port, "databases": list(BRANCHES)},
            "redis": {"port": self.redis.port},
            "s3": {"endpoint_url": self.s3.endpoint_url, "buckets": self.s3.buckets},
            "apps": {role: self.app_url(role) for role in self.apps},
            "caddy": {"url": self.public_url(), "admin_url": self.caddy_admin_url(),
                      "active_app": self.caddy.active_app},
            "heartbeat": {"url": self.heartbeat_url()},
            "containers": ({"image": self.containers.image, "engine": self.docker_host()}
                           if self.containers is not None else None),
        }

    def docker_host(self) -> str:
        """The engine the app containers run in (only in --containers mode)."""
        if self.containers is None:
            raise SandboxError("this sandbox runs its apps as processes", hint="ops sandbox up --containers")
        return self.containers.engine_host or f"unix://{Path(self.root) / 'docker' / 'docker.sock'}"


def state_path(root: Path) -> Path:
    return root / STATE_FILE


def load_state(root: Path) -> SandboxState:
    """Read the state file, or raise NotFoundError with the command that creates it."""
    path = state_path(root)
    if not path.exists():
        raise NotFoundError(f"no sandbox at {root}", hint="start it with: ops sandbox up")
    try:
        return SandboxState.model_validate_json(path.read_text())
    except (ValidationError, json.JSONDecodeError) as exc:
        raise SandboxError(
            f"sandbox state file {path} is unreadable: {exc.__class__.__name__}",
            hint="stop what runs with `ops sandbox down --force`, then remove the folder and run `ops sandbox up`",
        ) from None


def save_state(root: Path, state: SandboxState) -> None:
    """Write the state file atomically with mode 0600."""
    root.mkdir(parents=True, exist_ok=True)
    path = state_path(root)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(state.model_dump_json(indent=2))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def environment(root: Path) -> Environment:
    """The sandbox's Environment, from its state file: the sandbox turns its own state into the
    model, so ops.environment needs to know nothing of the sandbox."""
    state = load_state(root)
    return Environment(
        name="local",
        branch="main",
        database_urls={b: SecretStr(state.database_url(b, admin=True)) for b in BRANCHES},
        app_database_url=SecretStr(state.database_url("main")),
        redis_url=SecretStr(state.redis_url()),
        storage=ObjectStorage(
            endpoint_url=state.s3.endpoint_url, region="us-east-1",
            access_key_id=SecretStr(state.s3.access_key), secret_access_key=SecretStr(state.s3.secret_key),
            buckets=dict(state.s3.buckets),
        ),
        app_hosts=tuple(AppHost(name=f"app-{role}", role=role, url=state.app_url(role))  # type: ignore[arg-type]
                        for role in state.apps),
        public_url=state.public_url(),
        caddy_admin_url=state.caddy_admin_url(),
        heartbeat_url=SecretStr(state.heartbeat_url()),
        backup_recipient=state.backup_recipient,
        backup_identity_file=state.backup_identity_file(),
        scratch_database_url=SecretStr(state.database_url("postgres", admin=True)),
        masking_key=SecretStr(state.masking_key),
        stripe_webhook=StripeWebhook(endpoint_id=None, secret=SecretStr(state.stripe_webhook_secret)),
    )
