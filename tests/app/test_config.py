"""The app's configuration: environment variables only, a bad one named in one line."""

from __future__ import annotations

import base64
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from autoenroll.config import ConfigurationError, load_settings
from tests.lab.tls import make_ca

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


def test_the_replica_url_is_optional_and_checked_like_the_primarys() -> None:
    assert load_settings(GOOD).database_replica_url is None
    replica = "postgresql://u:p@ep-r.eu-central-1.aws.neon.tech/app"
    assert "sslmode=require" in (load_settings({**GOOD, "DATABASE_REPLICA_URL": replica}).database_replica_url or "")
    with pytest.raises(ConfigurationError, match=r"^DATABASE_REPLICA_URL: sslmode=disable is not allowed"):
        load_settings({**GOOD, "DATABASE_REPLICA_URL": replica + "?sslmode=disable"})
    with pytest.raises(ConfigurationError, match=r"^DATABASE_REPLICA_URL: must start with postgresql://"):
        load_settings({**GOOD, "DATABASE_REPLICA_URL": "mysql://x/y"})


def test_start_command_stops_with_one_line_naming_the_variable() -> None:
    env = {k: v for k, v in GOOD.items() if k != "REDIS_URL"}
    out = subprocess.run([sys.executable, "-m", "autoenroll.serve"], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.strip() == "configuration error: REDIS_URL: required but not set"


# Issue 25, item 11: Redis Cloud is reached over the internet; production never accepts redis://.
SECRET_REDIS = "redis://:hunter2-redis-password@redis-12345.c1.eu-central-1-1.ec2.cloud.redislabs.com:12345/0"


@pytest.mark.parametrize("allow", [None, "true"])
def test_production_refuses_redis_without_tls_naming_the_variable_not_its_value(allow: str | None) -> None:
    env = {**GOOD, "APP_ENV": "production", "REDIS_URL": SECRET_REDIS,
           **({"REDIS_ALLOW_PLAINTEXT": allow} if allow else {})}
    with pytest.raises(ConfigurationError, match=r"^REDIS_URL: must be rediss:// \(TLS\) in production") as refused:
        load_settings(env)
    assert "hunter2" not in str(refused.value) and "redislabs" not in str(refused.value)


def test_staging_refuses_redis_without_tls_unless_explicitly_allowed() -> None:
    env = {**GOOD, "APP_ENV": "staging", "REDIS_URL": SECRET_REDIS}
    with pytest.raises(ConfigurationError, match=r"^REDIS_URL: must be rediss:// \(TLS\) in staging.*"
                                                 r"REDIS_ALLOW_PLAINTEXT=true"):
        load_settings(env)
    assert load_settings({**env, "REDIS_ALLOW_PLAINTEXT": "true"}).redis_url == SECRET_REDIS
    with pytest.raises(ConfigurationError, match=r"^REDIS_ALLOW_PLAINTEXT: must be true or false"):
        load_settings({**env, "REDIS_ALLOW_PLAINTEXT": "yes please"})


def test_tls_and_a_ca_bundle_are_accepted_and_local_redis_stays_plain() -> None:
    assert load_settings({**GOOD, "APP_ENV": "local"}).redis_url.startswith("redis://")
    tls_url = SECRET_REDIS.replace("redis://", "rediss://")
    assert load_settings({**GOOD, "APP_ENV": "production", "REDIS_URL": tls_url}).redis_ca_pem is None
    with tempfile.TemporaryDirectory() as folder:
        pem = make_ca(Path(folder), "redis").cert.read_text()
    settings = load_settings({**GOOD, "APP_ENV": "production", "REDIS_URL": tls_url,
                              "REDIS_CA_CERT": base64.b64encode(pem.encode()).decode()})
    assert settings.redis_ca_pem == pem
    with pytest.raises(ConfigurationError, match=r"^REDIS_CA_CERT: must be a base64-encoded PEM bundle"):
        load_settings({**GOOD, "REDIS_CA_CERT": pem})  # PEM as is: several lines, not one


def test_start_command_refuses_plain_redis_in_production_without_printing_it() -> None:
    env = {**GOOD, "APP_ENV": "production", "REDIS_URL": SECRET_REDIS}
    out = subprocess.run([sys.executable, "-m", "autoenroll.serve"], env=env, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.startswith("configuration error: REDIS_URL: must be rediss:// (TLS) in production")
    assert "hunter2" not in out.stderr + out.stdout
