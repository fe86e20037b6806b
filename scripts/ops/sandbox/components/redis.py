"""Redis: sessions and the token blacklist, password-protected on loopback."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port


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



class Redis(Component):
    name = "redis"

    def endpoint(self, state: SandboxState) -> str:
        return f"127.0.0.1:{state.redis.port}"

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.redis.proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.redis.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.redis.port]

    def reallocate_ports(self, state: SandboxState) -> None:
        state.redis.port = free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        conf = write_redis_conf(state, root)
        return start_process(redis_argv(conf), log_file=root / "logs" / "redis.log")

    def probe(self, state: SandboxState) -> str:
        return probe_redis(state)
