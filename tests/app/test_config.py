"""The app's configuration: environment variables only, a bad one named in one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from autoenroll.config import ConfigurationError, load_settings

pytestmark = pytest.mark.unit

GOOD = {
    "DATABASE_URL": "postgresql://app:pw@127.0.0.1:5432/main",
    "REDIS_URL": "redis://:pw@127.0.0.1:6379/0",
    "S3_ACCESS_KEY_ID": "key",
    "S3_SECRET_ACCESS_KEY": "secret",
    "S3_BUCKET_UPLOADS": "autoenroll-local-uploads",
    "AUTH_SECRET": "x" * 40,
}


def test_good_configuration_loads_and_repr_hides_secrets() -> None:
    settings = load_settings(GOOD)
    assert settings.db_pool_max == 20 and settings.db_connect_timeout_s == 2.0
    assert "pw" not in repr(settings) and "secret" not in repr(settings)


@pytest.mark.parametrize("missing", sorted(GOOD))
def test_each_missing_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"^{missing}: required"):
        load_settings(env)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"PORT": "eighty"}, "PORT: must be an integer"),
        ({"PORT": "70000"}, "PORT: must be between"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL: must start with postgresql://"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL: must start with redis://"),
        ({"DATABASE_URL": "postgresql://u:p@ep-x.neon.tech/app?sslmode=disable"}, "sslmode=disable is not allowed"),
        ({"AUTH_SECRET": "short"}, "AUTH_SECRET: must be at least 32 characters"),
    ],
)
def test_malformed_variables_are_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({**GOOD, **overrides})


def test_remote_databases_get_tls_required() -> None:
    settings = load_settings({**GOOD, "DATABASE_URL": "postgresql://u:p@ep-x.eu-central-1.aws.neon.tech/app"})
    assert "sslmode=require" in settings.database_url


def test_start_command_stops_with_one_line_naming_the_variable() -> None:
    env = {k: v for k, v in GOOD.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-m", "autoenroll.serve"], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == "configuration error: REDIS_URL: required but not set"
