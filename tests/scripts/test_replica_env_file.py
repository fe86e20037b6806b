"""The host's env file carries the stack's read-replica URL beside its primary URL, and drops it when a
failover points DATABASE_URL at another database (the standby's): the replica follows `main`, so a listing
read there would miss every write made on the standby."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ops.environment import Environment
from ops.wiring import host_env_file

pytestmark = pytest.mark.unit
PRIMARY = "postgresql://autoenroll_app:pw@ep-main-pooler.eu-central-1.aws.neon.tech/autoenroll?sslmode=require"
REPLICA = "postgresql://autoenroll_app:pw@ep-replica-pooler.eu-central-1.aws.neon.tech/autoenroll?sslmode=require"


def _env() -> Environment:
    # Only the fields host_env_file reads.
    return Environment.model_construct(name="production", app_env={
        "DATABASE_URL": SecretStr(PRIMARY), "DATABASE_REPLICA_URL": SecretStr(REPLICA)})


def test_the_replica_url_reaches_the_hosts_env_file_like_the_primary_url() -> None:
    text = host_env_file(_env(), "primary", None)
    assert f"DATABASE_URL={PRIMARY}" in text and f"DATABASE_REPLICA_URL={REPLICA}" in text


def test_a_failover_database_drops_the_replica() -> None:
    standby = "postgresql://autoenroll_app:pw@10.0.1.11:5432/main_failover?sslmode=require"
    text = host_env_file(_env(), "standby", standby)
    assert f"DATABASE_URL={standby}" in text and "DATABASE_REPLICA_URL" not in text and "ep-replica" not in text
