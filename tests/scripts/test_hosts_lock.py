"""One lock for the hosts (issue 31, item 2): deploy, rollback, and the redeploys of failover and
failback exclude each other; the loser names the holder, what it is doing and since when (exit 6),
and a failover that meets a deploy changes nothing (DNS not moved) after its bounded wait."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from ops.deploy import usecase as deploy_usecase
from ops.errors import LockHeldError
from ops.failover import usecase as failover_usecase
from ops.locks import hosts_lock, list_locks
from tests.scripts.test_backup_units import MemoryStore

pytestmark = pytest.mark.unit


class Traffic:
    def __init__(self) -> None:
        self.moves: list[str] = []

    def serving(self) -> str:
        return "primary"

    def move_to(self, role: str) -> str:
        self.moves.append(role)
        return f"app, api -> {role}"


class Live:
    def get(self) -> dict[str, Any]:
        return {"database": "main", "kind": "branch", "since": None}

    def set(self, database: str, kind: str) -> None:
        raise AssertionError("the database must not change")


class Untouched:
    """Hosts and a failover site that must not be reached."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} was called while another run held the hosts")


class Store(MemoryStore):
    def list_keys(self, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]


def test_a_failover_that_meets_a_deploy_moves_nothing_and_names_it() -> None:
    store, traffic = Store(), Traffic()
    with hosts_lock(store, "production", purpose="deploy to production", ttl=timedelta(minutes=30)), \
            pytest.raises(LockHeldError) as raised:
        failover_usecase.failover("production", Untouched(), traffic, Live(), store,  # type: ignore[arg-type]
                                  db_mode="none", watch_seconds=1, hosts_wait=0.2)
    assert raised.value.exit_code == 6
    assert "failover of production is locked by" in raised.value.message
    assert "(deploy to production) since 20" in raised.value.message and "(waited 0.2 s)" in raised.value.message
    assert traffic.moves == [] and failover_usecase.read_journal(store, "production") is None
    assert list_locks(store, "production") == []  # its own failover lock was let go too


def test_a_deploy_or_rollback_during_a_failover_is_refused_naming_the_failover() -> None:
    store = Store()
    with hosts_lock(store, "production", purpose="failover of production", ttl=timedelta(hours=2)):
        with pytest.raises(LockHeldError, match=r"deploy to production is locked by .* \(failover of production\)"):
            deploy_usecase.deploy("production", Untouched(), store, "v2")  # type: ignore[arg-type]
        store.objects["_ops/production/deploy.history.json"] = \
            b'[{"version": "v1", "kind": "deploy"}, {"version": "v2", "kind": "deploy"}]'
        with pytest.raises(LockHeldError, match=r"\(failover of production\)"):
            deploy_usecase.rollback("production", Untouched(), store)  # type: ignore[arg-type]


def test_a_failback_waits_for_a_deploy_that_finishes_within_the_bound() -> None:
    store = Store()
    held = threading.Event()
    release = threading.Event()

    def deploy_holding_the_hosts() -> None:
        with hosts_lock(store, "production", purpose="deploy to production", ttl=timedelta(minutes=30)):
            held.set()
            release.wait(10)

    runner = threading.Thread(target=deploy_holding_the_hosts)
    runner.start()
    held.wait(5)
    seen: list[str] = []

    def waiting(message: str) -> None:
        seen.append(message)
        release.set()  # the deploy finishes while the failback waits

    with hosts_lock(store, "production", purpose="failback of production", ttl=timedelta(hours=2), wait=30,
                    poll=0.05, waiting=waiting) as record:
        assert record["purpose"] == "failback of production"
    runner.join(5)
    assert seen and "(deploy to production)" in seen[0]
