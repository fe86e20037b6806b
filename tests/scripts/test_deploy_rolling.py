"""`ops deploy` across N hosts behind a load balancer (issue 30, item 2), on the use-case: one host out
of the rotation at a time, drained before its switch, healthy again before the next, the serving set
never empty; a host that fails stops the deploy naming it and a rerun finishes; rollback the same.

The hosts are a model of each host's slots and Caddy (as tests/scripts/test_deploy_faults.py), the
load balancer a model of Hetzner's targets and health check (a target is healthy once it is back and
its app answers, after a few checks); every call checks the invariants."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from ops.deploy import usecase
from ops.errors import ExternalError
from ops.ports import Candidate
from tests.scripts.test_backup_units import MemoryStore

pytestmark = pytest.mark.unit

BLUE, GREEN = "127.0.0.1:8000", "127.0.0.1:8001"


class Fleet:
    """N hosts (each: containers per slot, `current`, Caddy's upstreams) and the load balancer over
    the primaries (the standby is no target). `events` is the order things happened in."""

    CHECKS_TO_HEALTHY = 2  # a target put back answers its checks a few times before it gets traffic

    def __init__(self, primaries: int, version: str = "v1", standby: bool = True) -> None:
        self.primaries = [f"app-{i + 1}" for i in range(primaries)]
        names = [*self.primaries, *(["standby"] if standby else [])]
        self.containers = {n: {BLUE: version} for n in names}
        self.current_address = dict.fromkeys(names, BLUE)
        self.upstreams = {n: [BLUE] for n in names}
        self.in_rotation = set(self.primaries)
        self.checks_passed = dict.fromkeys(self.primaries, self.CHECKS_TO_HEALTHY)
        self.fail: dict[tuple[str, str], Callable[[], None]] = {}
        self.events: list[str] = []
        self.max_out = 0

    # -- invariants, checked on every call
    def _serving(self) -> list[str]:
        return [r for r in self.primaries if self._healthy_now(r)]

    def _healthy_now(self, role: str) -> bool:
        live = self.upstreams[role][0]
        return (role in self.in_rotation and self.checks_passed[role] >= self.CHECKS_TO_HEALTHY
                and live in self.containers[role])

    def _event(self, what: str, role: str) -> None:
        self.events.append(f"{what} {role}")
        out = [r for r in self.primaries if r not in self.in_rotation]
        self.max_out = max(self.max_out, len(out))
        assert len(out) <= 1, f"two hosts out of the rotation at once: {out} ({self.events[-6:]})"
        assert self._serving(), f"no healthy target serving after {self.events[-6:]}"
        if (what, role) in self.fail:
            self.fail[(what, role)]()

    # -- Hosts
    def roles(self) -> list[str]:
        return list(self.containers)  # the standby (not serving) last here is irrelevant: no target

    def current(self, role: str) -> tuple[str, str]:
        address = self.current_address[role]
        return self.containers[role][address], address

    def serving(self, role: str) -> list[str]:
        return list(self.upstreams[role])

    def route(self, role: str, dials: list[str]) -> None:
        self._event("route", role)
        self.upstreams[role] = list(dials)

    def start_candidate(self, role: str, version: str, digest: str | None = None) -> Candidate:
        self._event("start", role)
        free = GREEN if self.current_address[role] == BLUE else BLUE
        self.containers[role][free] = version
        return Candidate(role, version, free)

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        self._event("ready", candidate.role)
        return None

    def promote(self, candidate: Candidate) -> None:
        self._event("promote", candidate.role)
        self.current_address[candidate.role] = candidate.address
        self.containers[candidate.role] = {candidate.address: candidate.version}

    def discard(self, candidate: Candidate) -> None:
        self._event("discard", candidate.role)
        self.containers[candidate.role].pop(candidate.address, None)

    def slots(self, role: str) -> list[tuple[str, str, str]]:
        return [(a, "live" if a == self.current_address[role] else "leftover", v)
                for a, v in sorted(self.containers[role].items())]

    # -- Rotation (the load balancer)
    def expected(self) -> list[str]:
        return list(self.primaries)

    def members(self) -> list[str]:
        return sorted(self.in_rotation)

    def healthy(self, role: str) -> bool:
        if role in self.in_rotation and self.checks_passed[role] < self.CHECKS_TO_HEALTHY:
            self.checks_passed[role] += 1  # one more health check passed while the deploy waited
        return self._healthy_now(role)

    def take_out(self, role: str) -> None:
        self.in_rotation.discard(role)
        self._event("out", role)

    def put_back(self, role: str) -> None:
        self.in_rotation.add(role)
        self.checks_passed[role] = 0
        self._event("back", role)

    def versions(self) -> dict[str, str]:
        return {r: self.current(r)[0] for r in self.containers}


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRAIN_SECONDS", "LB_DRAIN_SECONDS", "LB_POLL_SECONDS"):
        monkeypatch.setattr(usecase, name, 0.0)


def _per_host(events: list[str], role: str) -> list[str]:
    return [e.split()[0] for e in events if e.endswith(f" {role}")]


def test_a_rolling_deploy_takes_one_host_out_at_a_time_and_never_empties_the_serving_set() -> None:
    fleet = Fleet(3)
    notes: list[str] = []
    report = usecase.deploy("production", fleet, MemoryStore(), "v2", rotation=fleet,  # type: ignore[arg-type]
                            progress=notes.append)
    assert fleet.versions() == dict.fromkeys(["app-1", "app-2", "app-3", "standby"], "v2")
    assert [h["role"] for h in report.hosts] == ["app-1", "app-2", "app-3", "standby"]
    assert fleet.max_out == 1 and fleet.in_rotation == {"app-1", "app-2", "app-3"}
    # Each primary: out (drained) before its switch, back after it; the standby is no target.
    for role in ("app-1", "app-2", "app-3"):
        assert _per_host(fleet.events, role) == ["out", "start", "ready", "route", "promote", "route", "back"]
    assert "out" not in _per_host(fleet.events, "standby")
    # The next host leaves only once the one before is healthy again.
    for before, after in (("app-1", "app-2"), ("app-2", "app-3")):
        assert fleet.events.index(f"back {before}") < fleet.events.index(f"out {after}")
    healthy_notes = [n for n in notes if "back in the load balancer's rotation, healthy" in n]
    assert [n.split(":")[0] for n in healthy_notes] == ["app-1", "app-2", "app-3"]


def test_a_host_failing_mid_deploy_stops_it_naming_the_host_and_a_rerun_finishes() -> None:
    fleet = Fleet(3)
    store = MemoryStore()

    def lost() -> None:
        raise ExternalError("cannot reach the host 10.0.1.11 over SSH (start): Connection refused")

    fleet.fail[("start", "app-2")] = lost
    with pytest.raises(ExternalError) as raised:
        usecase.deploy("production", fleet, store, "v2", rotation=fleet)  # type: ignore[arg-type]
    message = raised.value.message
    assert "Connection refused" in message and "the deploy stopped at app-2" in message
    assert "on v2 already: app-1" in message and "untouched: app-3, standby" in message
    assert fleet.versions() == {"app-1": "v2", "app-2": "v1", "app-3": "v1", "standby": "v1"}
    assert fleet.in_rotation == {"app-1", "app-2", "app-3"}  # the failed host went back in
    assert "out app-3" not in fleet.events
    assert json.loads(store.objects["_ops/production/deploy.history.json"])[-1]["kind"] == "failed"

    del fleet.fail[("start", "app-2")]
    usecase.deploy("production", fleet, store, "v2", rotation=fleet)  # type: ignore[arg-type]
    assert set(fleet.versions().values()) == {"v2"} and fleet.max_out == 1
    assert json.loads(store.objects["_ops/production/deploy.history.json"])[-1]["kind"] == "deploy"


def test_a_rollback_rolls_the_same_way() -> None:
    fleet = Fleet(3)
    store = MemoryStore()
    usecase.deploy("production", fleet, store, "v2", rotation=fleet)  # type: ignore[arg-type]
    fleet.events.clear()
    report = usecase.rollback("production", fleet, store, rotation=fleet)  # type: ignore[arg-type]
    assert report.version == "v1" and set(fleet.versions().values()) == {"v1"}
    assert fleet.max_out == 1
    for role in ("app-1", "app-2", "app-3"):
        assert _per_host(fleet.events, role)[0] == "out" and _per_host(fleet.events, role)[-1] == "back"


def test_a_host_is_not_taken_out_when_no_other_target_is_healthy() -> None:
    fleet = Fleet(2, standby=False)
    fleet.in_rotation.discard("app-2")  # the load balancer already lost app-2
    # app-1 alone (a deploy of all would switch the unhealthy app-2 first: test_fresh_targets_...).
    with pytest.raises(ExternalError, match="not taking app-1 out of the load balancer: no other target is healthy"):
        usecase.roll_out(fleet, "v2", rotation=fleet, roles=["app-1"])  # type: ignore[arg-type]
    assert fleet.versions() == {"app-1": "v1", "app-2": "v1"} and "app-1" in fleet.in_rotation


def test_a_host_that_does_not_come_back_healthy_stops_the_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet(3, standby=False)
    fleet.CHECKS_TO_HEALTHY = 10**9  # type: ignore[misc]  # app-1's check never passes again
    fleet.checks_passed = dict.fromkeys(fleet.primaries, 10**9)
    monkeypatch.setattr(usecase, "LB_HEALTHY_TIMEOUT", 0.0)
    with pytest.raises(ExternalError, match="app-1 is back in the load balancer's rotation but not healthy") as raised:
        usecase.roll_out(fleet, "v2", rotation=fleet)  # type: ignore[arg-type]
    assert "untouched: app-2, app-3" in raised.value.message
    assert "out app-2" not in fleet.events  # no second host left while app-1 does not serve


def test_a_host_an_interrupted_deploy_left_out_goes_back_before_another_leaves() -> None:
    fleet = Fleet(3, standby=False)
    fleet.in_rotation.discard("app-3")  # a killed run took app-3 out and never put it back
    usecase.roll_out(fleet, "v2", rotation=fleet)  # type: ignore[arg-type]
    assert fleet.events[0] == "back app-3" and fleet.max_out == 1
    assert set(fleet.versions().values()) == {"v2"} and fleet.in_rotation == {"app-1", "app-2", "app-3"}


def test_a_signal_while_draining_puts_the_host_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = Fleet(3, standby=False)

    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(usecase.time, "sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        usecase.roll_out(fleet, "v2", rotation=fleet)  # type: ignore[arg-type]
    assert fleet.events == ["out app-1", "back app-1"] and fleet.versions()["app-1"] == "v1"


def test_fresh_targets_are_deployed_before_the_healthy_one_leaves() -> None:
    """`replicas` from 1 to 3: the two new servers are targets whose check fails (nothing deployed, so
    their Caddy has no certificate and no app), app-1 alone serves. Taking app-1 out first is refused
    (no other target healthy), so the first deploy of the scale phase could never run; the hosts that
    serve nothing go first, and app-1 leaves only once they are healthy."""
    fleet = Fleet(3)
    for role in ("app-2", "app-3"):
        fleet.containers[role] = {}  # a fresh server: nothing deployed
        fleet.current_address[role] = ""
        fleet.checks_passed[role] = 0
    fleet.current = lambda role: ((fleet.containers[role][fleet.current_address[role]], fleet.current_address[role])  # type: ignore[method-assign]
                                  if fleet.containers[role] else (usecase.NOTHING_DEPLOYED, ""))
    report = usecase.deploy("production", fleet, MemoryStore(), "v2", rotation=fleet)  # type: ignore[arg-type]
    assert [h["role"] for h in report.hosts] == ["app-2", "app-3", "app-1", "standby"]
    assert set(fleet.versions().values()) == {"v2"} and fleet.max_out == 1
    assert fleet.in_rotation == {"app-1", "app-2", "app-3"}


def test_a_first_deploy_onto_fresh_targets_only_runs() -> None:
    """A stack brought up with replicas 3: no target healthy, nothing serving. Taking one out empties
    nothing, so it is not refused (it was: 'no other target is healthy', and no deploy could ever run)."""
    fleet = Fleet(3, standby=False)
    for role in fleet.primaries:
        fleet.containers[role] = {}
        fleet.current_address[role] = ""
        fleet.checks_passed[role] = 0

    def event(what: str, role: str) -> None:  # the model's invariants less "something serves": nothing does yet
        fleet.events.append(f"{what} {role}")
        assert len([r for r in fleet.primaries if r not in fleet.in_rotation]) <= 1, fleet.events

    fleet._event = event  # type: ignore[method-assign]
    fleet.current = lambda role: ((fleet.containers[role][fleet.current_address[role]], fleet.current_address[role])  # type: ignore[method-assign]
                                  if fleet.containers[role] else (usecase.NOTHING_DEPLOYED, ""))
    usecase.roll_out(fleet, "v1", rotation=fleet)  # type: ignore[arg-type]
    assert set(fleet.versions().values()) == {"v1"} and fleet.in_rotation == {"app-1", "app-2", "app-3"}
    assert all(fleet._healthy_now(r) for r in fleet.primaries)
