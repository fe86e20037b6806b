"""A real primary and its streaming standby for the read-replica tests: PostgreSQL 17 (the build `ops` runs,
ops.pg.tools) started as the `postgres` user, TLS only (`hostssl` and a `hostnossl ... reject`, as the lab's
database and Neon do), the app's schema migrated as `ops db migrate` does, and a standby made from it by
`pg_basebackup -R` (so it streams from the primary and answers read-only queries: hot standby).

A killed run leaves no servers behind for long: each pair's folder holds its owner's pid and start time
(as the lab's Docker engines do, ops.sandbox.engine), and the next pair first stops the servers of
folders whose owner is gone and removes them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from ops.migrations import migrate
from ops.pg import tools as pgtools
from ops.sandbox.components import _chown_to_postgres, as_postgres_user
from ops.sandbox.engine import abandoned, owner_token
from ops.tcp_ports import free_port
from tests.lab.tls import issue, make_ca

PARENT = Path("/var/lib/postgresql")  # the postgres user reaches it; a pytest tmp folder is root's 0700
PREFIX = "autoenroll-replica-test-"
OWNER = "owner"
SUPERUSER = "cloud_admin"
APP_ROLE = "autoenroll_app"
DATABASE = "autoenroll"
ADDRESS = "127.0.0.1"


def _stop_postmaster(data: Path) -> None:
    """Stop the server of a data folder a killed run left (immediate shutdown: it is thrown away)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return
    if str(data).encode() not in cmdline:
        return  # the pid is some other process now
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def sweep_stale_pairs() -> list[str]:
    """Stop and remove the pairs of runs that were killed; returns their folders' names."""
    removed = []
    for folder in sorted(PARENT.glob(PREFIX + "*")):
        if not abandoned(folder, OWNER):
            continue
        for data in (folder / "primary", folder / "standby"):
            _stop_postmaster(data)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Fast shutdown (SIGINT: open connections are ended, not waited for), then SIGKILL after 10 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def postgres_env(folder: Path) -> dict[str, str]:
    """The environment for what runs as `postgres`: HOME is the pair's folder, since libpq (pg_basebackup,
    the standby's WAL receiver) looks for a client certificate under ~/.postgresql, and root's is closed."""
    return {**os.environ, "HOME": str(folder)}


@dataclass
class Server:
    name: str
    data: Path
    port: int
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, superuser_url: str) -> None:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.log.open("ab"),
                                        env=postgres_env(self.data.parent))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.name} PostgreSQL exited: {self.log.read_text()[-2000:]}")
            try:
                with psycopg.connect(superuser_url, connect_timeout=5):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"the {self.name} PostgreSQL did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        _stop(self.process)
        self.process = None


@dataclass
class ReplicaPair:
    folder: Path
    superuser_password: str
    app_password: str
    primary: Server
    standby: Server

    def _url(self, server: Server, role: str, password: str, database: str) -> str:
        return (f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{ADDRESS}:{server.port}/"
                f"{database}?sslmode=require")

    def admin_url(self, server: Server, database: str = DATABASE) -> str:
        return self._url(server, SUPERUSER, self.superuser_password, database)

    def app_url(self, server: Server) -> str:
        """The app's role (NOBYPASSRLS), as the app connects: the standby has the same role, a copy."""
        return self._url(server, APP_ROLE, self.app_password, DATABASE)

    def admin(self, server: Server) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url(server), autocommit=True, connect_timeout=10)

    def start_standby(self) -> None:
        self.standby.start(self.admin_url(self.standby, "postgres"))

    def pause_replay(self) -> None:
        """The standby keeps receiving WAL but applies none: what lag looks like, held still for a test."""
        with self.admin(self.standby) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def catch_up(self) -> None:
        """Resume replay and wait until the standby has applied all the primary has written."""
        with self.admin(self.primary) as conn:
            # The insert position, not pg_current_wal_lsn (the written one): with synchronous_commit=off a
            # commit's record may not be written yet when its statement returns.
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        with self.admin(self.standby) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)).fetchone()
                if done and done[0]:
                    return
                time.sleep(0.05)
        raise RuntimeError("the standby did not catch up with the primary within 30 s")


def _server_argv(data: Path, port: int, folder: Path, cert: Path, key: Path) -> list[str]:
    return as_postgres_user([
        pgtools.tool("postgres"), "-D", str(data), "-p", str(port), "-c", f"listen_addresses={ADDRESS}",
        "-c", f"unix_socket_directories={folder}", "-c", "ssl=on", "-c", f"ssl_cert_file={cert}",
        "-c", f"ssl_key_file={key}", "-c", "password_encryption=scram-sha-256", "-c", "max_connections=50",
        # Throwaway servers: crash-durability traded for speed (replication does not need it).
        "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])


@contextlib.contextmanager
def running_replica_pair() -> Iterator[ReplicaPair]:
    """A TLS-only primary with the app's schema and a streaming standby of it, both stopped and removed
    on exit."""
    sweep_stale_pairs()
    PARENT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=PARENT))
    pair: ReplicaPair | None = None
    try:
        (folder / OWNER).write_text(owner_token())
        tls = issue(make_ca(folder / "tls", "replica-test"), folder / "tls", "server", (ADDRESS,))
        tls.key.chmod(0o600)
        password, app_password = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        _chown_to_postgres(folder)
        primary_data, standby_data = folder / "primary", folder / "standby"
        subprocess.run(as_postgres_user([
            pgtools.tool("initdb"), "-D", str(primary_data), "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions"]),
            check=True, capture_output=True, timeout=120)
        pwfile.unlink()
        # TLS only, replication included (pg_basebackup and the standby's stream come in over TLS too).
        (primary_data / "pg_hba.conf").write_text(
            f"hostssl all all {ADDRESS}/32 scram-sha-256\n"
            f"hostssl replication {SUPERUSER} {ADDRESS}/32 scram-sha-256\n"
            "hostnossl all all 0.0.0.0/0 reject\n")
        ports = free_port(), free_port()
        primary = Server("primary", primary_data, ports[0],
                         _server_argv(primary_data, ports[0], folder, tls.cert, tls.key), folder / "primary.log")
        standby = Server("standby", standby_data, ports[1],
                         _server_argv(standby_data, ports[1], folder, tls.cert, tls.key), folder / "standby.log")
        pair = ReplicaPair(folder, password, app_password, primary, standby)
        primary.start(pair.admin_url(primary, "postgres"))
        with psycopg.connect(pair.admin_url(primary, "postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(app_password)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        migrate(pair.admin_url(primary), app_role=APP_ROLE)
        # -R writes primary_conninfo and standby.signal: the copy starts as a streaming standby. The password
        # goes in the environment, never on the command line.
        copied = subprocess.run(as_postgres_user([
            pgtools.tool("pg_basebackup"), "-D", str(standby_data), "-R", "-X", "stream", "--checkpoint=fast",
            "-d", f"host={ADDRESS} port={primary.port} user={SUPERUSER} sslmode=require"]),
            capture_output=True, text=True, timeout=120, env={**postgres_env(folder), "PGPASSWORD": password})
        if copied.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed: {copied.stderr.strip()[-2000:]}")
        pair.start_standby()
        yield pair
    finally:
        if pair is not None:
            pair.standby.stop()
            pair.primary.stop()
        shutil.rmtree(folder, ignore_errors=True)
