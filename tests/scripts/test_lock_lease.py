"""Resume from anywhere (issue 31, item 6): the failover's and deploy's locks are short leases renewed
while their run lives, so a run that died on another machine blocks a resume for minutes, not the old
2 hours; `ops failover status` names a held lock and how to break it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ops.errors import LockHeldError
from ops.failover import usecase
from ops.locks import LEASE, object_lock
from tests.scripts.test_failover_split import Store
from tests.scripts.test_hosts_lock import Live, Traffic

pytestmark = pytest.mark.unit


def lease_of(store: Store, key: str) -> timedelta:
    record = json.loads(store.objects[key])
    return datetime.fromisoformat(record["expires_at"]) - datetime.fromisoformat(record["acquired_at"])


def test_a_renewed_lock_moves_its_expiry_while_held_and_is_gone_after() -> None:
    store = Store()
    with object_lock(store, "k", ttl=timedelta(seconds=0.6), purpose="p", renew=True) as record:
        first = record["expires_at"]
        deadline = time.monotonic() + 5
        while json.loads(store.objects["k"])["expires_at"] == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(store.objects["k"])["expires_at"] > first
    assert "k" not in store.objects


def test_a_dead_runs_lock_from_another_machine_is_taken_over_once_its_lease_ran_out() -> None:
    store = Store()
    store.objects["k"] = json.dumps({
        "token": "t", "owner": "alice@laptop pid 9", "purpose": "failover", "host": "laptop", "pid": "9",
        "acquired_at": (datetime.now(UTC) - LEASE).isoformat(),
        "expires_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}).encode()
    with object_lock(store, "k", ttl=LEASE, purpose="failover", renew=True) as record:
        assert record["took_over_from"] == "alice@laptop pid 9"


class LeaseWatchingTraffic(Traffic):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store
        self.leases: dict[str, timedelta] = {}

    def move_to(self, role: str, on_edit: Any = None) -> str:
        for key in ("_ops/production/failover.lock", "_ops/production/deploy.lock"):
            self.leases[key] = lease_of(self.store, key)
        raise LockHeldError("stop here")  # the rest of the run is not this test's


def test_the_failover_holds_leases_of_minutes_not_hours() -> None:
    store = Store()
    traffic = LeaseWatchingTraffic(store)
    with pytest.raises(LockHeldError, match="stop here"):
        usecase.failover("production", object(), traffic, Live(), store, db_mode="none",  # type: ignore[arg-type]
                         watch_seconds=1, hosts_wait=0)
    # Both locks it holds: minutes (LEASE, renewed while it runs), where they were 2 hours.
    assert len(traffic.leases) == 2 and all(lease < timedelta(minutes=10) for lease in traffic.leases.values()), \
        traffic.leases


def test_status_names_a_held_lock_and_how_to_break_it() -> None:
    store = Store()
    store.objects["_ops/production/failover.journal.json"] = json.dumps(
        {"direction": "failover", "db_mode": "none", "started_at": "2026-12-06T22:00:00+00:00", "done": [],
         "results": {}}).encode()
    store.objects["_ops/production/failover.lock"] = json.dumps({
        "token": "t", "owner": "alice@laptop pid 9", "purpose": "failover", "host": "laptop", "pid": "9",
        "acquired_at": "2026-12-06T22:00:00+00:00",
        "expires_at": (datetime.now(UTC) + timedelta(minutes=4)).isoformat()}).encode()
    seen = usecase.status("production", store, Live(), home_database="main", serving=lambda: "primary",
                          serving_source="Cloudflare DNS")
    assert seen["state"] == "in-progress" and seen["locks_held"][0]["owner"] == "alice@laptop pid 9"
    assert "the failover lock (one failover or failback at a time) is held by alice@laptop pid 9 (failover) " \
           "since 2026-12-06T22:00:00+00:00" in seen["locks_note"]
    # The command to copy, with the lock's own name, and then the one that resumes.
    assert seen["break_locks"] == ["ops lock release failover --env production"]
    assert "break it: ops lock release failover --env production (--yes without a terminal); then resume: " \
           "ops failover --env production --db none" in seen["locks_note"]
