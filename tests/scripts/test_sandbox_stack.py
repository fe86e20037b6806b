"""The running sandbox behaves like the real stack: headers, readiness, branches, buckets."""

from __future__ import annotations

import subprocess
import sys

import httpx
import psycopg
import pytest

from autoenroll.migrate import head_revision
from ops.sandbox import components as c
from ops.sandbox.state import BRANCHES, SandboxState

pytestmark = pytest.mark.integration


def test_caddy_adds_the_seeds_security_headers(sandbox: SandboxState) -> None:
    response = httpx.get(sandbox.public_url() + "/health", timeout=5)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert response.headers["x-request-id"]


def test_static_paths_are_cacheable_for_a_year(sandbox: SandboxState) -> None:
    response = httpx.get(sandbox.public_url() + "/static/app.css", timeout=5)
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_ready_checks_every_dependency(sandbox: SandboxState) -> None:
    body = httpx.get(sandbox.public_url() + "/ready", timeout=5).json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "redis", "storage", "schema"}
    assert body["checks"]["schema"] == {"ok": True, "revision": head_revision(), "head": head_revision()}


def test_ready_fails_fast_not_hangs_when_redis_is_stopped(sandbox: SandboxState) -> None:
    assert c.stop(sandbox, c.component("redis"))
    # A generous client timeout: the app must answer 503 well within it, never hang.
    response = httpx.get(sandbox.app_url("primary") + "/ready", timeout=10)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["redis"]["ok"] is False
    assert checks["database"]["ok"] is True
    # liveness is independent of dependencies
    assert httpx.get(sandbox.app_url("primary") + "/health", timeout=5).status_code == 200


def test_each_branch_database_is_migrated_to_head(sandbox: SandboxState) -> None:
    for branch in BRANCHES:
        with psycopg.connect(sandbox.database_url(branch, admin=True)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert row is not None and row[0] == head_revision(), branch


def test_the_app_role_is_confined_by_row_level_security(sandbox: SandboxState) -> None:
    with psycopg.connect(sandbox.database_url("development", admin=True), autocommit=True) as owner:
        a = owner.execute("INSERT INTO tenants (name) VALUES ('rls-a') RETURNING id").fetchone()[0]  # type: ignore[index]
        b = owner.execute("INSERT INTO tenants (name) VALUES ('rls-b') RETURNING id").fetchone()[0]  # type: ignore[index]
    try:
        with psycopg.connect(sandbox.database_url("development")) as app_conn:
            app_conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(a),))
            names = [r[0] for r in app_conn.execute("SELECT name FROM tenants WHERE name LIKE 'rls-%'")]
            assert names == ["rls-a"]
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app_conn.execute("INSERT INTO users (tenant_id, email, full_name, password_hash)"
                                 " VALUES (%s, 'x@example.com', 'X', 'h')", (str(b),))
    finally:
        with psycopg.connect(sandbox.database_url("development", admin=True), autocommit=True) as owner:
            owner.execute("DELETE FROM tenants WHERE name LIKE 'rls-%'")


def test_buckets_of_the_real_stack_exist(sandbox: SandboxState) -> None:
    client = c.s3_client(sandbox)
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert {"autoenroll-local-uploads", "autoenroll-local-agents", "autoenroll-local-backups"} <= names


def test_ops_cli_runs_as_a_console_script(sandbox: SandboxState) -> None:
    out = subprocess.run([sys.executable, "-m", "ops", "sandbox", "status", "--json"],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert sandbox.postgres.superuser_password not in out.stdout + out.stderr
