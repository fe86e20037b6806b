"""`/ready` answers 503, naming the database's revision and the head, until `ops db migrate` has
brought the database to this release's head; then 200 (the app is not restarted in between).

The app runs as a real process against a database of its own in the sandbox's PostgreSQL,
connected as the app role, as on a host.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql

from autoenroll.migrate import head_revision, known_revisions
from ops.migrations import migrate, migrate_argv
from ops.paths import APP_DIR
from ops.pg import create_database, drop_database
from ops.processes import run_checked
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port


@pytest.mark.unit
def test_schema_check_is_ready_at_head_and_at_a_later_release_only() -> None:
    from autoenroll.readiness import reason, schema_check

    head = head_revision()
    older = sorted(known_revisions() - {head})[0]
    assert schema_check(head, None, "staging")["ok"]
    # A later release migrated first (or this one is a rollback over its schema): still ready.
    assert schema_check("9999_a_later_release", None, "staging")["ok"]
    behind = schema_check(older, None, "staging")
    assert not behind["ok"] and behind["revision"] == older and behind["head"] == head
    assert f"at revision {older}" in behind["error"] and "ops db migrate --env staging" in behind["error"]
    empty = schema_check(None, "never migrated", "production")
    assert not empty["ok"] and "ops db migrate --env production" in empty["error"]
    assert reason({"database": {"ok": True}, "schema": empty}) == f"schema: {empty['error']}"


@dataclass
class App:
    base: str
    admin_url: str  # the test database as the superuser (migrations, as the owner runs them)
    app_role: str

    def ready(self) -> httpx.Response:
        return httpx.get(self.base + "/ready", timeout=10)

    def migrate_to(self, revision: str) -> None:
        run_checked([*migrate_argv()[:-1], "upgrade", revision],
                    env={**os.environ, "DATABASE_URL": self.admin_url, "APP_DB_ROLE": self.app_role},
                    what="test migration")


@contextmanager
def running_app(sandbox: SandboxState, database_url: str) -> Iterator[str]:
    """The app as a real process on a free port, connected to `database_url`; yields its base URL."""
    port = free_port()
    env = {**c.app_env(sandbox, "standby", "ready-test"), "PORT": str(port), "DATABASE_URL": database_url}
    proc = subprocess.Popen(c.app_argv(), env=env, cwd=APP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # until it answers at all (its start-up), whatever /ready says
            try:
                httpx.get(base + "/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, "the app exited at start-up"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture()
def app_on_empty_database(sandbox: SandboxState) -> Iterator[App]:
    name = f"ready_{uuid.uuid4().hex[:10]}"
    admin = sandbox.database_url("postgres", admin=True)
    create_database(admin, name)
    try:
        with running_app(sandbox, sandbox.database_url(name)) as base:  # the app role, as on a host
            yield App(base, sandbox.database_url(name, admin=True), sandbox.postgres.app_role)
    finally:
        drop_database(admin, name)


@pytest.mark.integration
def test_ready_names_the_servers_reason_when_no_connection_can_be_made(sandbox: SandboxState) -> None:
    """A release pointed at a database that does not exist (a failover's side database dropped, a
    typo): the pool retries silently in the background, so /ready must say why it cannot connect,
    not only that it timed out."""
    missing = f"gone_{uuid.uuid4().hex[:10]}"
    with running_app(sandbox, sandbox.database_url(missing)) as base:
        answer = httpx.get(base + "/ready", timeout=10)
    assert answer.status_code == 503, answer.text
    database = answer.json()["checks"]["database"]
    assert not database["ok"]
    assert "OperationalError" in database["error"], database
    assert f'database "{missing}" does not exist' in database["error"], database
    assert "timed out" not in answer.json()["reason"]


def _schema(response: httpx.Response) -> dict[str, Any]:
    schema: dict[str, Any] = response.json()["checks"]["schema"]
    return schema


@pytest.mark.integration
def test_ready_is_503_until_the_database_is_migrated_to_head(app_on_empty_database: App) -> None:
    app, head = app_on_empty_database, head_revision()

    empty = app.ready()
    assert empty.status_code == 503, empty.text
    body = empty.json()
    assert body["checks"]["database"]["ok"], body  # it is connected: only the schema is missing
    assert _schema(empty) | {"error": ""} == {"ok": False, "revision": None, "head": head, "error": ""}
    assert "never migrated" in body["reason"] and head in body["reason"]
    assert "ops db migrate --env local" in body["reason"]

    older = sorted(known_revisions() - {head})[-1]  # one release behind
    app.migrate_to(older)
    behind = app.ready()
    assert behind.status_code == 503, behind.text
    assert (_schema(behind)["revision"], _schema(behind)["head"]) == (older, head)
    assert f"the database is at revision {older}, this release needs {head}" in behind.json()["reason"]

    migrate(app.admin_url, app_role=app.app_role)  # what `ops db migrate` runs
    at_head = app.ready()
    assert at_head.status_code == 200, at_head.text
    assert _schema(at_head) == {"ok": True, "revision": head, "head": head}
    assert "reason" not in at_head.json()

    # A later release's migration ran first (migrations precede the deploy; a rollback runs this
    # image over that schema): this release must still become ready.
    with psycopg.connect(app.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("UPDATE alembic_version SET version_num = {}").format(sql.Literal("9999_later")))
    later = app.ready()
    assert later.status_code == 200, later.text
    assert _schema(later)["revision"] == "9999_later"


@pytest.mark.integration
def test_ready_is_503_when_the_app_role_cannot_read_the_revision(app_on_empty_database: App) -> None:
    """Migrated, but for another role (APP_DB_ROLE wrong): the app's role has no grants at all."""
    app = app_on_empty_database
    with psycopg.connect(app.admin_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES (%s)", (head_revision(),))
        conn.execute(sql.SQL("REVOKE ALL ON alembic_version FROM PUBLIC, {}").format(sql.Identifier(app.app_role)))
    denied = app.ready()
    assert denied.status_code == 503, denied.text
    assert "cannot read alembic_version" in denied.json()["reason"]
    assert _schema(denied)["revision"] is None


@pytest.mark.integration
def test_a_deploy_over_an_unmigrated_database_fails_at_ready_and_says_to_migrate(sandbox: SandboxState) -> None:
    """`ops deploy --env local` of a release whose database is empty: the candidate never becomes
    ready, the old version keeps serving, and the message names the schema and `ops db migrate`."""
    name = f"ready_{uuid.uuid4().hex[:10]}"
    admin = sandbox.database_url("postgres", admin=True)
    create_database(admin, name)
    release = f"unmigrated-{uuid.uuid4().hex[:6]}"
    release_file = Path(sandbox.root) / "releases" / f"{release}.env"
    release_file.parent.mkdir(exist_ok=True)
    # A local release is the checkout plus its settings (ops.sandbox.components.release_env): this one
    # points at a database nothing has migrated, as a first bring-up's is.
    release_file.write_text(f"DATABASE_URL={sandbox.database_url(name)}\n")
    release_file.chmod(0o600)
    env = {**os.environ, "OPS_SANDBOX_DIR": sandbox.root, "COLUMNS": "2000"}  # rich unwrapped
    before = httpx.get(sandbox.public_url() + "/version", timeout=10).json()["version"]
    deployed = None
    try:
        deployed = subprocess.run([sys.executable, "-m", "ops", "deploy", "--env", "local", "--version", release],
                                  env=env, capture_output=True, text=True, timeout=300, check=False)
        assert deployed.returncode == 7, deployed.stdout + deployed.stderr
        said = " ".join(deployed.stderr.split())
        assert f"{release} did not become ready" in said and "rolled back" in said, said
        assert "/ready answered 503: schema: the database has no alembic_version table" in said, said
        assert f"this release needs revision {head_revision()}" in said, said
        assert "run `ops db migrate --env local`" in said, said  # the app's reason and ops' hint both say it
        # The hint alone, for hosts whose `ready` verb reports only the status (the SSH path).
        assert "hint: a 503 from /ready means" in said and "`ops db migrate --env local --plan`" in said, said
        assert httpx.get(sandbox.public_url() + "/version", timeout=10).json()["version"] == before
    finally:
        if deployed is not None and deployed.returncode == 0:  # before the fix: it went live; put it back
            subprocess.run([sys.executable, "-m", "ops", "rollback", "--env", "local"], env=env,
                           capture_output=True, timeout=300, check=False)
        release_file.unlink()
        drop_database(admin, name)
