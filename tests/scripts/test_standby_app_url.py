"""The app's URL on the standby host's PostgreSQL (failover --db latest-backup): the server's address,
the app's role and password, TLS; never the owner's credentials."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from ops.adapters.cloud.failover_site import STANDBY_DATABASE_VARIABLE, standby_app_url
from ops.environment import Environment
from ops.errors import ConfigError

pytestmark = pytest.mark.unit


def _env(app_url: str | None) -> Environment:
    # Only the fields standby_app_url reads; the rest of an Environment plays no part here.
    return Environment.model_construct(name="production", app_database_url=SecretStr(app_url) if app_url else None)


def test_the_standby_app_url_is_the_servers_address_with_the_apps_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STANDBY_DATABASE_VARIABLE, "postgresql://postgres:owner-secret@10.0.1.11:5432/postgres")
    env = _env("postgresql://autoenroll_app:p%40ss%2Fw@ep-x-pooler.eu-central-1.aws.neon.tech/autoenroll?sslmode=require")
    url = standby_app_url(env, "main_failover")
    parts = urlsplit(url)
    assert (parts.username, parts.password, parts.hostname, parts.port, parts.path) == (
        "autoenroll_app", "p%40ss%2Fw", "10.0.1.11", 5432, "/main_failover")
    assert parse_qs(parts.query)["sslmode"] == ["require"]
    assert "owner-secret" not in url


def test_a_server_url_asking_for_verify_full_keeps_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STANDBY_DATABASE_VARIABLE, "postgresql://postgres:s@db.internal:6432/x?sslmode=verify-full")
    url = standby_app_url(_env("postgresql://app:pw@h/db"), "main_failover")
    assert parse_qs(urlsplit(url).query)["sslmode"] == ["verify-full"]


def test_without_an_app_url_it_is_a_config_error_not_the_owners_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STANDBY_DATABASE_VARIABLE, "postgresql://postgres:s@db.internal/x")
    with pytest.raises(ConfigError, match="no app database URL"):
        standby_app_url(_env(None), "main_failover")
