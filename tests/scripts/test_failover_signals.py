"""SIGTERM and SIGINT landing at each step of `ops failover` (issue 31): the run stops with its locks
released (a resume from any machine is not refused), a switch cut between the two records is journaled
and named SPLIT by `status` with the command that finishes it, a started candidate is discarded, and
the same command finishes. The signal is sent by the failpoints (ops.failpoints, OPS_FAILPOINT_SIGNAL)
at a named spot, so each step is hit deterministically. Cloudflare faked at the HTTP transport; the
hosts are test_deploy_faults' model of the deploy script's slots. Drilled on the lab in
tests/drills/test_lab_faults.py. Also `ops lock list` naming the hosts lock for what it is."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from types import FrameType, SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from ops import failpoints, locks, output, store_keys
from ops.deploy import usecase as deploy_usecase
from ops.failover import usecase
from ops.ports import Candidate
from tests.scripts.test_cloud_failover_units import PRIMARY, STANDBY
from tests.scripts.test_deploy_faults import LIVE, ModelHosts
from tests.scripts.test_failover_split import Store, cloudflare, contents, status
from tests.scripts.test_hosts_lock import Live

pytestmark = pytest.mark.unit


class Site:
    """The standby's redeploy is a real roll-out onto the model host (so a signal in it meets the
    deploy's own cleanup); the endpoint checks answer at once."""

    public_url = "https://app.example.invalid"
    home_database = "main"

    def __init__(self) -> None:
        self.hosts = ModelHosts()
        self.redeploys = 0

    def restore_database(self, _mode: str, _moment: str | None) -> dict[str, Any]:
        return {"database": None}

    def set_database(self, role: str, database: str) -> str:
        return f"{role} -> {database}"

    def redeploy(self, _role: str) -> str:
        self.redeploys += 1
        done = deploy_usecase.roll_out(self.hosts, "v1")  # type: ignore[arg-type]
        return ", ".join(d["address"] for d in done)


class Unhandled(Exception):
    """A SIGTERM that reached the test's stand-in for Python's default handler (which would have
    ended the process there, with no `finally`: no lock released, nothing said)."""


def _unhandled(signum: int, _frame: FrameType | None) -> None:
    raise Unhandled(signal.Signals(signum).name)


@pytest.fixture()
def guarded() -> Iterator[None]:
    """SIGTERM's default would end pytest itself: a handler that fails the test instead, which only
    ops's own handler (installed for the run) replaces."""
    previous = signal.signal(signal.SIGTERM, _unhandled)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usecase, "endpoints_answer", lambda _url: {"/ready": 200})
    monkeypatch.setattr(usecase, "watch_errors", lambda _url, _s: {"requests": 1, "failed": 0})
    monkeypatch.setattr(failpoints, "_counts", {})
    monkeypatch.setattr(deploy_usecase, "DRAIN_SECONDS", 0)  # nothing is in flight on the model host


# Each spot a failover can be stopped at: inside the switch (app moved, api not), after each step,
# and inside the deploy (a candidate started on the standby).
SPOTS = ["failover.edited.app", "failover.after.switch-traffic", "failover.after.restore-database",
         "failover.after.set-environment", "deploy.after.start", "failover.after.deploy",
         "failover.after.check-endpoints", "failover.after.watch-errors"]


def run(store: Store, dns: Any, site: Site) -> dict[str, Any]:
    return usecase.failover("production", site, dns, Live(), store, db_mode="none",  # type: ignore[arg-type]
                            watch_seconds=1, hosts_wait=0)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("spot", SPOTS)
def test_a_signal_at_each_step_releases_the_locks_reports_the_state_and_the_same_command_finishes(
        guarded: None, monkeypatch: pytest.MonkeyPatch, spot: str, signame: str) -> None:
    fake, dns = cloudflare()
    store, site = Store(), Site()
    monkeypatch.setenv("OPS_FAILPOINT", spot)
    monkeypatch.setenv("OPS_FAILPOINT_SIGNAL", signame)
    with pytest.raises(KeyboardInterrupt):
        run(store, dns, site)
    held = [k for k in store.objects if k.endswith(".lock")]
    assert held == [], f"locks left after {signame} at {spot}: {held}"
    # One container, the live slot's: a candidate started is discarded (or already promoted).
    assert site.hosts.containers == {site.hosts.current_address: "v1"}, "a candidate left beside the live one"
    seen = status(store, dns)
    assert seen["state"] == "in-progress" and seen["resume"] == "ops failover --env production --db none", seen
    assert "locks_held" not in seen
    if spot == "failover.edited.app":  # cut between the records: said, with the command that finishes it
        assert contents(fake) == {"app": STANDBY, "api": PRIMARY}
        assert seen["split"] and seen["finish"] == "ops failover --env production --db none"
        assert seen["summary"].startswith("SPLIT DNS: app -> standby, api -> primary")
    else:
        assert contents(fake) == {"app": STANDBY, "api": STANDBY} and not seen["split"]

    monkeypatch.delenv("OPS_FAILPOINT")
    report = run(store, dns, site)
    assert report["steps"] == list(usecase.STEPS)
    assert contents(fake) == {"app": STANDBY, "api": STANDBY}
    assert usecase.read_journal(store, "production") is None and not [k for k in store.objects if k.endswith(".lock")]
    assert site.hosts.containers == {site.hosts.current_address: "v1"}
    # The redeploy ran once more only if the signal landed before its step was journaled.
    assert site.redeploys == (2 if spot == "deploy.after.start" else 1)
    assert signal.getsignal(signal.SIGTERM) is _unhandled  # the run's handler is gone again


def test_a_signal_as_soon_as_start_returned_discards_the_candidate(guarded: None) -> None:
    """The window between `start` returning and the roll-out's cleanup taking over (its notes were
    printed there): a signal in it left the candidate running."""
    hosts = ModelHosts()
    real_start = hosts.start_candidate

    def start_with_a_note(role: str, version: str, digest: str | None = None) -> Candidate:
        started = real_start(role, version, digest)
        return Candidate(started.role, started.version, started.address, digest=started.digest,
                         notes=("pulled by digest",))

    hosts.start_candidate = start_with_a_note  # type: ignore[method-assign]

    def progress(message: str) -> None:
        if "pulled by digest" in message:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(KeyboardInterrupt):
        deploy_usecase.roll_out(hosts, "v2", progress=progress)  # type: ignore[arg-type]
    assert hosts.containers == {LIVE: "v1"}, "the candidate was left running beside the live container"


def test_a_failpoint_signal_that_is_not_one_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_FAILPOINT", "x")
    monkeypatch.setenv("OPS_FAILPOINT_SIGNAL", "SIGNOPE")
    with pytest.raises(ValueError, match="OPS_FAILPOINT_SIGNAL: 'SIGNOPE' is not a signal name"):
        failpoints.hit("x")


# ------------------------------------------------------------------ `ops lock list` names the hosts lock


def test_lock_list_names_the_hosts_lock_its_takers_holder_since_and_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    from ops.cli import app
    from ops.cli import lock as lock_cli

    store = Store()
    monkeypatch.setattr(lock_cli, "resolve", lambda _name: SimpleNamespace(name="production", storage=None,
                                                                        is_production=True))
    monkeypatch.setattr(lock_cli, "objects", lambda _env: store)
    monkeypatch.setattr(output.stdout, "width", 400)  # a wide terminal: each cell on one line
    runner = CliRunner()
    with locks.hosts_lock(store, "production", purpose="failover of production", ttl=timedelta(minutes=5),
                          renew=True) as record:
        listed = runner.invoke(app, ["lock", "list", "--env", "production", "--json"])
        shown = runner.invoke(app, ["lock", "list", "--env", "production"])
    assert listed.exit_code == 0, listed.output
    [held] = json.loads(listed.stdout)
    assert held["name"] == "hosts" and held["purpose"] == "failover of production"
    assert held["guards"].startswith("the hosts lock (taken by deploy, rollback, failover and failback")
    assert (held["owner"], held["acquired_at"], held["lease_seconds"]) == (record["owner"], record["acquired_at"],
                                                                           300)
    flat = " ".join(shown.output.split())
    for said in ("the hosts lock", "deploy, rollback, failover and failback", "failover of production",
                 record["acquired_at"], "5-minute lease renewed while the run lives",
                 "ops lock release hosts --env production"):
        assert said in flat, (said, shown.output)
    # `deploy`, the lock's earlier name, still breaks it.
    store.put_bytes(store_keys.hosts_lock("production"), json.dumps(record).encode())
    broken = runner.invoke(app, ["lock", "release", "deploy", "--env", "production", "--yes", "--json"])
    assert broken.exit_code == 0, broken.output
    assert store.get_bytes(store_keys.hosts_lock("production")) is None


def test_a_failover_refused_by_a_held_failover_lock_names_the_command_that_breaks_it() -> None:
    from ops.errors import LockHeldError

    fake, dns = cloudflare()
    store = Store()
    store.objects["_ops/production/failover.lock"] = json.dumps({
        "token": "t", "owner": "alice@laptop pid 9", "purpose": "failover", "host": "laptop", "pid": "9",
        "acquired_at": "2026-12-06T22:00:00+00:00", "expires_at": "2999-01-01T00:00:00+00:00"}).encode()
    with pytest.raises(LockHeldError) as raised:
        run(store, dns, Site())
    assert "failover is locked by alice@laptop pid 9" in raised.value.message
    assert "ops lock release failover --env production" in (raised.value.hint or "")
    assert contents(fake) == {"app": PRIMARY, "api": PRIMARY}
