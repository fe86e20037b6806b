"""The sandbox's components: how each is started (as argv), probed and stopped.

Each component is a real process of the real software (PostgreSQL, Redis, SeaweedFS, the
heartbeat recorder, the app, Caddy, in --containers mode a Docker engine, and with OPS_SANDBOX_REPLICA=1
a streaming read replica of PostgreSQL), one class per
file with a common base (`base.Component`). Commands are built as argv lists by small pure
functions, so tests can assert them, and executed by `ops.processes`. `run` holds the steps the
engine (`ops.sandbox.manager`) applies to any component and the registry in start order.

The names below are this package's public surface (they were one module's before it was split).
"""

from __future__ import annotations

from ops.paths import venv_binary
from ops.sandbox.components.app import (
    App,
    app_argv,
    app_container_argv,
    app_env,
    app_variables,
    container_name,
    engine_client,
    image_start_command,
    probe_app,
    release_env,
)
from ops.sandbox.components.base import Component, ComponentHealth, Health, Progress, probe_http
from ops.sandbox.components.caddy import Caddy, caddy_argv, caddy_env, point_at_active_app, probe_caddy
from ops.sandbox.components.docker import Docker, probe_docker
from ops.sandbox.components.heartbeat import Heartbeat, heartbeat_argv, probe_heartbeat
from ops.sandbox.components.postgres import (
    POSTGRES_USER,
    Postgres,
    _chown_to_postgres,
    as_postgres_user,
    bootstrap_postgres,
    choose_pg_dir,
    ensure_pg_initialised,
    initdb_argv,
    postgres_argv,
    probe_postgres,
)
from ops.sandbox.components.redis import Redis, probe_redis, redis_argv, write_redis_conf
from ops.sandbox.components.run import (
    COMPONENT_NAMES,
    COMPONENTS,
    DOCKER,
    REPLICA,
    component,
    components_for,
    health,
    ports_free,
    reallocate_ports,
    stop,
    tail,
    wait_accepting,
    wait_healthy,
)
from ops.sandbox.components.s3 import (
    S3,
    S3_PORT_NAMES,
    ensure_buckets,
    probe_s3,
    s3_client,
    weed_argv,
    write_s3_identities,
)

__all__ = [
    "COMPONENTS", "COMPONENT_NAMES", "DOCKER", "POSTGRES_USER", "REPLICA", "S3", "S3_PORT_NAMES", "App", "Caddy",
    "Component", "ComponentHealth", "Docker", "Health", "Heartbeat", "Postgres", "Progress", "Redis",
    "_chown_to_postgres",
    "app_argv", "app_container_argv", "app_env", "app_variables", "as_postgres_user", "bootstrap_postgres",
    "caddy_argv", "caddy_env", "choose_pg_dir", "component", "components_for", "container_name", "engine_client",
    "ensure_buckets", "ensure_pg_initialised", "health", "heartbeat_argv", "image_start_command", "initdb_argv",
    "point_at_active_app", "ports_free", "postgres_argv", "probe_app", "probe_caddy", "probe_docker",
    "probe_heartbeat", "probe_http", "probe_postgres", "probe_redis", "probe_s3", "reallocate_ports", "redis_argv",
    "release_env", "s3_client", "stop", "tail", "venv_binary", "wait_accepting", "wait_healthy", "weed_argv",
    "write_redis_conf", "write_s3_identities",
]
