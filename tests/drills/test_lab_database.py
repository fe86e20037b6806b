"""The lab's database refuses what Neon refuses, and the release path passes it: TLS only (with channel
binding), roles as Neon's API makes them, empty at bring-up; `ops db migrate` then `ops deploy` serve a
signed-in tenant's upload through the edge; the app's role cannot get around row-level security."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg
import pytest
from psycopg import sql

from autoenroll.contract import APP_DATABASE_ROLE
from tests.app.payroll import csv_file
from tests.drills.lab import APP_PASSWORDS, Lab
from tests.drills.lab_database import NEON_TLS

pytestmark = pytest.mark.drill


def test_lab_database_takes_tls_only_with_channel_binding(lab: Lab) -> None:
    owner = lab.owner_url("main")
    assert NEON_TLS in owner  # Neon's own URI parameters
    with psycopg.connect(owner) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        assert row == (True,)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(owner.replace(NEON_TLS, "sslmode=disable"), connect_timeout=5)
    # "allow" tries plain TCP first; refused, libpq retries with TLS, which is all the server takes.
    with psycopg.connect(owner.replace(NEON_TLS, "sslmode=allow"), connect_timeout=5) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def _client(lab: Lab) -> httpx.Client:
    return httpx.Client(base_url=lab.edge_url, verify=lab.edge_tls(), timeout=100)


def _sign_up(client: httpx.Client) -> dict[str, str]:
    email, password = f"owner-{uuid.uuid4().hex[:10]}@example.ie", "correct horse battery staple"
    created = client.post("/api/signup", json={"company": "Lab Payroll Ltd", "email": email,
                                                "full_name": "Úna Owner", "password": password})
    assert created.status_code == 201, created.text
    login = client.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"tenant_id": created.json()["tenant_id"], "token": login.json()["token"]}


def test_lab_bring_up_from_an_empty_database_migrates_then_serves_an_upload(lab: Lab) -> None:
    """The release path on a database as `pulumi up` leaves it: nothing in it and no app role. `ops db
    migrate` makes the app's role in SQL and the schema; `ops deploy` then serves a signed-in upload."""
    lab.empty_database()
    with psycopg.connect(lab.owner_url("main")) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        assert conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_DATABASE_ROLE,)).fetchone() is None
    with pytest.raises(psycopg.OperationalError):  # the app's URL leads nowhere before the migration
        psycopg.connect(lab.app_url("main"), connect_timeout=5)

    planned = lab.ops("db", "migrate", "--env", "production", "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout)["before"] is None
    migrated = lab.ops("db", "migrate", "--env", "production", "--yes", "--json")
    assert migrated.returncode == 0, migrated.stderr
    report = json.loads(migrated.stdout)
    assert report["after"] == report["head"] and report["before"] is None

    deployed = lab.ops("deploy", "--env", "production", "--yes", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr
    with _client(lab) as client:
        account = _sign_up(client)
        upload = client.post("/api/uploads", headers={"Authorization": f"Bearer {account['token']}",
                                                      "X-Filename": "payroll.csv"}, content=csv_file(rows=5))
        assert upload.status_code in (200, 201), upload.text
        listed = client.get("/api/uploads", headers={"Authorization": f"Bearer {account['token']}"})
        assert listed.status_code == 200 and len(listed.json()["items"]) == 1, listed.text


def test_lab_app_role_cannot_leave_row_level_security(lab: Lab) -> None:
    """The app's role as `ops db migrate` makes it: no BYPASSRLS, no way to SET ROLE to neon_superuser or
    the owner, and with one tenant set it sees only that tenant. A role made as Neon's API makes them can
    do all of that, which is why the stack no longer makes the app's role that way."""
    from tests.seed import seed

    owner = lab.owner_url("main")
    seed(owner, tenants=2, employees_per_run=2, tag="lab-rls")
    with psycopg.connect(owner) as conn:
        tenants = [str(r[0]) for r in conn.execute("SELECT id FROM tenants ORDER BY id").fetchall()]
    assert len(tenants) >= 2

    with psycopg.connect(lab.app_url("main"), autocommit=True) as app:
        attrs = app.execute("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles "
                            "WHERE rolname = current_user").fetchone()
        assert attrs == (False, False, False, False)
        for target in ("neon_superuser", "autoenroll_owner"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(target)))
        with app.transaction():
            app.execute("SELECT set_config('app.tenant_id', %s, true)", (tenants[0],))
            seen = {str(r[0]) for r in app.execute("SELECT id FROM tenants").fetchall()}
        assert seen == {tenants[0]}

    # The control: a role made as Neon's API makes them walks straight out.
    lab.database.api_role("api_made_role")
    try:
        with psycopg.connect(lab.database.url("main", "api_made_role"), autocommit=True) as api_made:
            api_made.execute("SET ROLE neon_superuser")
            everyone = {str(r[0]) for r in api_made.execute("SELECT id FROM tenants").fetchall()}
        assert set(tenants) <= everyone
    finally:
        lab.database.drop_role("api_made_role")


def test_lab_migrate_refuses_an_app_role_made_through_neons_api(lab: Lab) -> None:
    """An app role made as Neon's API makes them (a member of neon_superuser) is refused: exit 8, named."""
    lab.empty_database()
    lab.database.passwords[APP_DATABASE_ROLE] = APP_PASSWORDS["main"]
    lab.database.api_role(APP_DATABASE_ROLE)
    try:
        refused = lab.ops("db", "migrate", "--env", "production", "--yes")
        assert refused.returncode == 8, refused.stderr
        assert "autoenroll_app" in refused.stderr and "neon_superuser" in refused.stderr
        assert APP_PASSWORDS["main"] not in refused.stderr + refused.stdout
    finally:
        lab.empty_database()
        lab.migrate("production")
        lab.migrate("staging")
