"""PostgreSQL: the sandbox's database server, its three branch databases and the app's role."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path

from ops.migrations import head_revision, migrate, schema_revision
from ops.pg.tools import bindir as postgres_bindir
from ops.processes import ProcRef, run_checked, start_process
from ops.sandbox.components.base import Component, Progress
from ops.sandbox.state import BRANCHES, SandboxState
from ops.tcp_ports import free_port

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




class Postgres(Component):
    name = "postgres"
    stop_signal = signal.SIGINT  # PostgreSQL's "fast" shutdown

    def endpoint(self, state: SandboxState) -> str:
        return f"127.0.0.1:{state.postgres.port}"

    def get_proc(self, state: SandboxState) -> ProcRef | None:
        return state.postgres.proc

    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None:
        state.postgres.proc = proc

    def ports(self, state: SandboxState) -> list[int]:
        return [state.postgres.port]

    def reallocate_ports(self, state: SandboxState) -> None:
        state.postgres.port = free_port()

    def start(self, state: SandboxState, root: Path) -> ProcRef:
        ensure_pg_initialised(state)
        return start_process(postgres_argv(state), log_file=root / "logs" / "postgres.log")

    def probe(self, state: SandboxState) -> str:
        return probe_postgres(state)

    def after_start(self, state: SandboxState, progress: Progress) -> None:
        progress("postgres: roles, databases and migrations")
        bootstrap_postgres(state)
