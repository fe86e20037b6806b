"""The sandbox's read replica (opt-in): a streaming hot standby of its PostgreSQL, made by
`pg_basebackup -R`, which the apps read their lag-tolerant queries from (DATABASE_REPLICA_URL,
autoenroll.db.lag_tolerant_read), as production's app reads from Neon's read replica of `main`.

Opt-in, because it doubles the sandbox's PostgreSQL: `OPS_SANDBOX_REPLICA=1 ops sandbox up` makes it
(the apps started after it get its URL); once made it is part of that sandbox until `ops sandbox down`
and a new sandbox. Stopping it (`kill` its pid) shows the fallback: the apps' reads go to the primary.
The primary needs no change: initdb's pg_hba already admits replication from 127.0.0.1, and
PostgreSQL's defaults (wal_level replica, 10 WAL senders) stream.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from ops.errors import SandboxError
from ops.pg.tools import bindir as postgres_bindir
from ops.processes import ProcRef, start_process
from ops.sandbox.components.base import Component
from ops.sandbox.components.postgres import as_postgres_user
from ops.sandbox.state import ReplicaState, SandboxState
from ops.tcp_ports import free_port

REPLICA_VARIABLE = "OPS_SANDBOX_REPLICA"


def wanted() -> bool:
    """Whether `ops sandbox up` should make a read replica (OPS_SANDBOX_REPLICA=1)."""
    return os.environ.get(REPLICA_VARIABLE, "").strip() == "1"


def new_replica_state(state: SandboxState) -> ReplicaState:
    # Beside the primary's data: a folder the postgres user can reach (ops.sandbox.components.choose_pg_dir).
    return ReplicaState(port=free_port(), data_dir=str(Path(state.postgres.data_dir).parent / "replica"))


def _postgres_env(state: SandboxState) -> dict[str, str]:
    """HOME is the PostgreSQL folder: libpq (pg_basebackup, the standby's WAL receiver), running as the
    postgres user, looks under ~/.postgresql for client certificates, and root's home is closed to it."""
    return {**os.environ, "HOME": str(Path(state.postgres.data_dir).parent)}


def basebackup_argv(state: SandboxState) -> list[str]:
    """A copy of the primary that starts as its streaming standby (-R: standby.signal, primary_conninfo).
    The superuser's password goes in the environment (PGPASSWORD), never on the command line."""
    assert state.replica is not None
    pg = state.postgres
    return as_postgres_user([
        str(postgres_bindir() / "pg_basebackup"), "-D", state.replica.data_dir, "-R", "-X", "stream",
        "--checkpoint=fast", "-d", f"host=127.0.0.1 port={pg.port} user={pg.superuser} sslmode=disable",
    ])


def replica_argv(state: SandboxState) -> list[str]:
    assert state.replica is not None
    return as_postgres_user([
        str(postgres_bindir() / "postgres"), "-D", state.replica.data_dir, "-p", str(state.replica.port),
        "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={state.postgres.socket_dir}",
        "-c", "max_connections=200", "-c", "hot_standby=on",
        # As the primary: a sandbox trades crash-durability for speed.
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
    ])


def ensure_replica_data(state: SandboxState, root: Path) -> None:
    import subprocess

    assert state.replica is not None
    if (Path(state.replica.data_dir) / "PG_VERSION").exists():
        return  # made before: it streams from where it stopped
    copied = subprocess.run(basebackup_argv(state), capture_output=True, text=True, timeout=600, check=False,
                            env={**_postgres_env(state), "PGPASSWORD": state.postgres.superuser_password})
    if copied.returncode != 0:
        raise SandboxError(f"replica: pg_basebackup failed: {copied.stderr.strip()[-500:]}",
                           hint=f"logs in {root / 'logs'}; the primary must be up (ops sandbox status)")


def probe_replica(state: SandboxState) -> str:
    import psycopg

    assert state.replica is not None
    pg = state.postgres
    url = f"postgresql://{pg.superuser}:{pg.superuser_password}@127.0.0.1:{state.replica.port}/postgres"
    with psycopg.connect(url, connect_timeout=2) as conn:
        row = conn.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text").fetchone()
    if not row or not row[0]:
        raise SandboxError("replica: the server is not in recovery (not a standby)")
    return f"PostgreSQL standby, replayed to {row[1]}"


class Replica(Component):
    name = "replica"
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown
    start_timeout = 120.0  # the first start copies the primary

    def endpoint(self, state: SandboxState) -> str:
        return f"127.0.0.1:{state.replica.port}" if state.replica else "-"

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.replica.proc if state.replica else None

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        if state.replica is not None:
            state.replica.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.replica.port] if state.replica else []

    def reallocate_ports(self, state: SandboxState) -> None:
        if state.replica is not None:
            state.replica.port = free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        ensure_replica_data(state, root)
        return start_process(replica_argv(state), log_file=root / "logs" / "replica.log", env=_postgres_env(state))

    def probe(self, state: SandboxState) -> str:
        return probe_replica(state)
