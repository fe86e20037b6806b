"""After a failover the live database is another one; `ops` then reaches it with the owner's URL
and gives the app's hosts the app's URL. `ops db migrate` sets the app role's password from the
app URL it is given, so the two must never be confused: the owner's password on the app's role
locks every running app out (found by the runbook drill after a failover: every later release
stayed at 503 'database: timed out')."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg
import pytest

from ops import wiring
from ops.pg import create_database, drop_database
from ops.sandbox.state import SandboxState

pytestmark = pytest.mark.integration


def test_migrating_the_live_database_after_a_failover_keeps_the_app_roles_password(sandbox: SandboxState) -> None:
    admin = sandbox.database_url("postgres", admin=True)
    live = "main_live_urls_test"
    create_database(admin, live)
    recorded = wiring.live_database(wiring.resolve("local", live=False))
    try:
        recorded.set(live, "branch")  # what a failover onto a restored database records
        env = wiring.resolve("local")
        assert env.app_database_url is not None
        app_url = urlsplit(env.app_database_url.get_secret_value())
        assert (app_url.username, app_url.path) == (sandbox.postgres.app_role, f"/{live}")
        assert urlsplit(env.database_url(None)).path == f"/{live}"

        migrated = subprocess.run([sys.executable, "-m", "ops", "db", "migrate", "--env", "local", "--yes"],
                                  env={**os.environ, "OPS_SANDBOX_DIR": sandbox.root}, capture_output=True,
                                  text=True, timeout=300, check=False)
        assert migrated.returncode == 0, migrated.stderr
        # The running apps' URL still logs in, on the live database and on the home one.
        for database in (live, "main"):
            with psycopg.connect(sandbox.database_url(database), connect_timeout=5) as conn:
                assert conn.execute("SELECT current_user").fetchone() == (sandbox.postgres.app_role,)
    finally:
        recorded.set("main", "branch")
        drop_database(admin, live)
