"""The read replica: the dashboard's history and the upload listing are served by the standby when
DATABASE_REPLICA_URL is set, a run's own page (read right after the user's write) by the primary; a
stopped replica costs no read anything (they go to the primary, said once in the log, no secret in it);
row-level security holds on the replica.

Real PostgreSQL: a TLS-only primary with the app's schema and a streaming standby made by pg_basebackup -R
(tests/app/replica_pair.py), one pair for the module. "Served by the standby" is shown by holding the
standby's replay still: a row written on the primary after that exists only there."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
import pytest

from autoenroll import db, runs, uploads
from autoenroll import resources as resources_module
from autoenroll.config import Settings
from autoenroll.resources import Resources, open_database
from tests.app.replica_pair import ReplicaPair, running_replica_pair

pytestmark = pytest.mark.integration
T = TypeVar("T")


@pytest.fixture(scope="module")
def pair() -> Iterator[ReplicaPair]:
    with running_replica_pair() as running:
        yield running


def settings(pair: ReplicaPair) -> Settings:
    return Settings(app_env="local", app_version="test", host="127.0.0.1", port=8000,
                    database_url=pair.app_url(pair.primary), database_replica_url=pair.app_url(pair.standby),
                    redis_url="redis://127.0.0.1:1", s3_endpoint_url=None, s3_region="auto", s3_access_key_id="x",
                    s3_secret_access_key="x", s3_bucket_uploads="x", sentry_dsn=None, auth_secret="x" * 32)


@asynccontextmanager
async def app_database(pair: ReplicaPair) -> AsyncIterator[Resources]:
    """The app's database resources as open_resources makes them (Redis, S3 and the checker play no part)."""
    pool, replica = await open_database(settings(pair))
    try:
        yield Resources(settings(pair), pool, redis=None, s3=None, checker=None, replica=replica)  # type: ignore[arg-type]
    finally:
        await pool.close()
        if replica is not None:
            await replica.close()


def run(pair: ReplicaPair, body: Callable[[Resources], Awaitable[T]]) -> T:
    async def main() -> T:
        async with app_database(pair) as resources:
            return await body(resources)

    return asyncio.run(main())


def tenant_with_a_check(pair: ReplicaPair, filename: str) -> tuple[str, str]:
    """A tenant, its owner, one upload and its completed run, written on the primary; (tenant id, run id)."""
    with pair.admin(pair.primary) as conn:
        tenant = conn.execute("INSERT INTO tenants (name) VALUES (%s) RETURNING id::text", (filename,)).fetchone()
        assert tenant is not None
        return str(tenant[0]), add_check(pair, str(tenant[0]), filename)


def add_check(pair: ReplicaPair, tenant_id: str, filename: str) -> str:
    with pair.admin(pair.primary) as conn:
        user = conn.execute(
            "INSERT INTO users (tenant_id, email, full_name, password_hash) VALUES (%s, %s, 'Úna', 'x')"
            " ON CONFLICT (email) DO UPDATE SET full_name = excluded.full_name RETURNING id",
            (tenant_id, f"owner-{tenant_id}@example.ie")).fetchone()
        upload = conn.execute(
            "INSERT INTO uploads (tenant_id, user_id, object_key, original_filename, content_type, size_bytes,"
            " sha256, status) VALUES (%s, %s, %s, %s, 'text/csv', 10, 'x', 'validated') RETURNING id",
            (tenant_id, user[0] if user else None, f"uploads/{uuid.uuid4()}", filename)).fetchone()
        checked = conn.execute(
            "INSERT INTO validation_runs (tenant_id, upload_id, status, row_count, summary, finished_at, month)"
            " VALUES (%s, %s, 'completed', 3, '{\"rows\": 3}', now(),"
            " date_trunc('month', now() AT TIME ZONE 'UTC')::date) RETURNING id::text",
            (tenant_id, upload[0] if upload else None)).fetchone()
    assert checked is not None
    return str(checked[0])


async def listed(resources: Resources, tenant_id: str) -> tuple[set[str], set[str]]:
    """(file names on the dashboard's history, file names in the upload listing), as the app reads them."""
    history = {row[1] for row in await runs.recent_runs(resources, tenant_id)}
    listing = {item["filename"] for item in (await uploads.list_uploads(resources, tenant_id, 50, 0))["items"]}
    return history, listing


def test_the_history_and_listing_are_the_replicas_and_a_runs_own_page_the_primarys(pair: ReplicaPair) -> None:
    tenant, _first = tenant_with_a_check(pair, "march.csv")
    pair.catch_up()
    pair.pause_replay()
    try:
        # The user's write: only the primary has it while the standby's replay is held.
        latest = add_check(pair, tenant, "april.csv")

        async def body(resources: Resources) -> tuple[tuple[set[str], set[str]], dict[str, Any]]:
            return await listed(resources, tenant), await runs.get_run(resources, tenant, latest)

        (history, listing), own_page = run(pair, body)
    finally:
        pair.catch_up()
    assert history == listing == {"march.csv"}, "the lag-tolerant reads did not come from the standby"
    assert own_page["status"] == "completed" and own_page["summary"] == {"rows": 3}  # read-your-write: primary


def test_rls_holds_on_the_replica_with_the_apps_role_and_tenant_setting(pair: ReplicaPair) -> None:
    tenant_a, _ = tenant_with_a_check(pair, "a-payroll.csv")
    tenant_b, _ = tenant_with_a_check(pair, "b-payroll.csv")
    pair.catch_up()

    async def where_and_what(conn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
        row = await (await conn.execute(
            "SELECT pg_is_in_recovery(), current_user, (SELECT count(*) FROM uploads WHERE tenant_id = %s),"
            " (SELECT count(*) FROM tenants WHERE id = %s)", (tenant_b, tenant_b))).fetchone()
        assert row is not None
        return tuple(row)

    async def body(resources: Resources) -> tuple[Any, ...]:
        return (await listed(resources, tenant_a), await listed(resources, tenant_b),
                await db.lag_tolerant_read(resources, tenant_a, where_and_what))

    as_a, as_b, (in_recovery, role, b_uploads_seen_by_a, b_tenant_seen_by_a) = run(pair, body)
    assert (in_recovery, role) == (True, "autoenroll_app")  # the standby, as the app's role (NOBYPASSRLS)
    assert (b_uploads_seen_by_a, b_tenant_seen_by_a) == (0, 0)  # B's rows are there, but not for A
    assert as_a == ({"a-payroll.csv"}, {"a-payroll.csv"})
    assert as_b == ({"b-payroll.csv"}, {"b-payroll.csv"})
    with psycopg.connect(pair.app_url(pair.standby)) as conn:  # no tenant set: RLS shows nothing at all
        assert conn.execute("SELECT count(*) FROM uploads").fetchone() == (0,)


def test_a_stopped_replica_sends_reads_to_the_primary_said_once_without_secrets(
        pair: ReplicaPair, caplog: pytest.LogCaptureFixture) -> None:
    tenant, _ = tenant_with_a_check(pair, "may.csv")
    pair.catch_up()
    pair.pause_replay()
    add_check(pair, tenant, "june.csv")  # on the primary only: who answers shows in what is listed
    pair.standby.stop()
    try:
        async def body(resources: Resources) -> list[tuple[set[str], set[str]]]:
            return [await listed(resources, tenant) for _ in range(3)]

        with caplog.at_level(logging.INFO):
            answers = run(pair, body)
    finally:
        pair.start_standby()
        pair.catch_up()
    assert answers == [({"may.csv", "june.csv"}, {"may.csv", "june.csv"})] * 3
    said = [r for r in caplog.records if r.name == "autoenroll.replica" and r.levelno == logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert f"127.0.0.1:{pair.standby.port}" in said[0].getMessage()
    everything = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert pair.app_password not in everything and pair.superuser_password not in everything
    assert not [r for r in caplog.records if r.name == "psycopg.pool" and r.levelno >= logging.WARNING]


def test_reads_return_to_the_replica_when_it_is_back(pair: ReplicaPair, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(resources_module, "REPLICA_RETRY_S", 0.0)  # try it again at once instead of in 30 s
    tenant, _ = tenant_with_a_check(pair, "july.csv")
    pair.catch_up()

    async def where(conn: psycopg.AsyncConnection[Any]) -> bool:
        row = await (await conn.execute("SELECT pg_is_in_recovery()")).fetchone()
        return bool(row and row[0])

    async def body(resources: Resources) -> list[bool]:
        seen = [await db.lag_tolerant_read(resources, tenant, where)]
        await asyncio.to_thread(pair.standby.stop)
        seen.append(await db.lag_tolerant_read(resources, tenant, where))
        await asyncio.to_thread(pair.start_standby)
        seen.append(await db.lag_tolerant_read(resources, tenant, where))
        return seen

    try:
        with caplog.at_level(logging.INFO):
            seen = run(pair, body)
    finally:
        if pair.standby.process is None:
            pair.start_standby()
    assert seen == [True, False, True]  # standby, primary while it was down, standby again
    assert any("is back" in r.getMessage() for r in caplog.records if r.name == "autoenroll.replica")


def test_a_replica_that_refuses_the_login_sends_reads_to_the_primary_without_echoing_the_url(
        pair: ReplicaPair, caplog: pytest.LogCaptureFixture) -> None:
    tenant, _ = tenant_with_a_check(pair, "august.csv")
    wrong = "not-the-password-" + uuid.uuid4().hex
    refused = settings(pair).__class__(**{**vars(settings(pair)), "database_replica_url": pair.app_url(
        pair.standby).replace(quote(pair.app_password, safe=""), wrong)})

    async def main() -> tuple[set[str], set[str]]:
        pool, replica = await open_database(refused)
        resources = Resources(refused, pool, redis=None, s3=None, checker=None, replica=replica)  # type: ignore[arg-type]
        try:
            return await listed(resources, tenant)
        finally:
            await pool.close()
            if replica is not None:
                await replica.close()

    with caplog.at_level(logging.INFO):
        history, listing = asyncio.run(main())
    assert history == listing == {"august.csv"}
    said = [r.getMessage() for r in caplog.records if r.name == "autoenroll.replica" and r.levelno == logging.WARNING]
    assert len(said) == 1 and f"127.0.0.1:{pair.standby.port}" in said[0], said
    assert wrong not in caplog.text and pair.app_password not in caplog.text
