"""The sandbox's opt-in read replica (OPS_SANDBOX_REPLICA=1): a streaming standby of its PostgreSQL made by
pg_basebackup -R, right after PostgreSQL in the start order, whose URL the apps get as DATABASE_REPLICA_URL.

The unit tests run everywhere. The end-to-end test brings up a second sandbox (about a minute), so it is
skipped by a narrower run (AUTOENROLL_SANDBOX_REPLICA=1 runs it); the whole suite (`bin/test`,
tests/parts.py) runs it."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from ops.paths import REPO_ROOT
from ops.sandbox import components as c
from ops.sandbox import manager
from ops.sandbox.components.replica import REPLICA_VARIABLE, basebackup_argv
from ops.sandbox.manager import _new_state
from ops.sandbox.state import SandboxState, load_state
from tests.app.payroll import csv_file
from tests.conftest import sandbox_dir_env


def new_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxState:
    # The data folder inside tmp_path: choose_pg_dir would fall back to /var/lib/postgresql for a 0700 tmp
    # folder and leave a folder there.
    monkeypatch.setattr(c, "choose_pg_dir", lambda root, _sandbox_id: root / "pg")
    return _new_state(tmp_path)


@pytest.mark.unit
def test_without_the_variable_a_sandbox_has_no_replica(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REPLICA_VARIABLE, raising=False)
    state = new_state(tmp_path, monkeypatch)
    assert c.components_for(state) == c.COMPONENTS and state.replica is None
    assert "DATABASE_REPLICA_URL" not in c.app_variables(state, "primary", "dev")


@pytest.mark.unit
def test_with_the_variable_the_replica_starts_after_postgres_and_the_apps_get_its_url(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLICA_VARIABLE, "1")
    state = new_state(tmp_path, monkeypatch)
    order = [comp.name for comp in c.components_for(state)]
    assert order[:2] == ["postgres", "replica"] and order.count("replica") == 1
    assert state.replica is not None and state.replica.port != state.postgres.port
    url = c.app_variables(state, "standby", "dev")["DATABASE_REPLICA_URL"]
    assert url.endswith(f"@127.0.0.1:{state.replica.port}/{state.apps['standby'].database}")
    assert url.startswith(f"postgresql://{state.postgres.app_role}:")  # the app's role, never the superuser
    assert state.postgres.superuser_password not in " ".join(basebackup_argv(state))  # PGPASSWORD, not argv
    monkeypatch.delenv(REPLICA_VARIABLE)
    assert [comp.name for comp in c.components_for(state)] == order  # made once, kept with the sandbox


@pytest.mark.skipif(os.environ.get("AUTOENROLL_SANDBOX_REPLICA") != "1",
                    reason="opt-in (about a minute, a second sandbox): AUTOENROLL_SANDBOX_REPLICA=1 runs it")
def test_a_sandbox_with_a_replica_lists_from_it_and_falls_back_when_it_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    root = REPO_ROOT / ".sandbox-test-replica"
    monkeypatch.setenv(REPLICA_VARIABLE, "1")
    with sandbox_dir_env(root):
        try:
            up = {h.name: h.state for h in manager.up(root)}
            assert up["replica"] == "up", up
            state = load_state(root)
            assert state.replica is not None
            with httpx.Client(base_url=state.public_url(), timeout=15) as client:
                email, password = f"owner-{uuid.uuid4().hex[:10]}@example.ie", "correct horse battery staple"
                signed = client.post("/api/signup", json={"company": "Replica Ltd", "email": email,
                                                          "full_name": "Úna Owner", "password": password})
                assert signed.status_code == 201, signed.text
                token = client.post("/api/auth/login", json={"email": email, "password": password}).json()["token"]
                auth = {"Authorization": f"Bearer {token}"}
                sent = client.post("/api/uploads", headers={**auth, "X-Filename": "r.csv"}, content=csv_file(rows=3))
                assert sent.status_code == 201, sent.text
                deadline = time.monotonic() + 10  # the standby replays within moments
                while time.monotonic() < deadline:
                    items = client.get("/api/uploads", headers=auth).json()["items"]
                    if [i["filename"] for i in items] == ["r.csv"]:
                        break
                    time.sleep(0.2)
                assert [i["filename"] for i in items] == ["r.csv"]
                pg = state.postgres
                replica = f"postgresql://{pg.superuser}:{pg.superuser_password}@127.0.0.1:{state.replica.port}/postgres"
                with psycopg.connect(replica) as conn:  # the app's role is connected to the standby: it read there
                    seen = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND datname = 'main'",
                                        (pg.app_role,)).fetchone()
                assert seen is not None and seen[0] >= 1
                c.stop(state, c.REPLICA)
                after = client.get("/api/uploads", headers=auth)
                assert after.status_code == 200 and [i["filename"] for i in after.json()["items"]] == ["r.csv"]
        finally:
            manager.down(root)
            state_dir = load_state(root).postgres.data_dir if (root / "state.json").exists() else None
            shutil.rmtree(root, ignore_errors=True)
            if state_dir and not state_dir.startswith(str(root)):
                shutil.rmtree(Path(state_dir).parent, ignore_errors=True)
