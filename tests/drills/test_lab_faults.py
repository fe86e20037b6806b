"""Faults in the middle of `ops deploy` and `ops failover`, injected on the lab (issue 31): a host that
loses SSH after its candidate started, SIGTERM and SIGINT to a deploy after a host's `start`, a deploy
and a failover started together in both orders. Each drill records the requests that failed through
the edge, and ends with the state a correct tool leaves: every host with one container (its live
slot), both DNS records, the journal and `ops failover status`, and `ops lock list` empty. Also a
failover with the registry down (the image on the standby) and Cloudflare failing the api record; and
a failover lost on another machine (its own hostname in a UTS namespace) between the DNS records,
resumed here through the locks status names, then it and its failback stopped by SIGTERM and SIGINT
inside their steps (the failpoints send the signal at a named spot), each stop's state asserted.
`flock /tmp/autoenroll-testhosts.lock .venv/bin/pytest tests/drills/test_lab_faults.py -q`."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.drills.lab import API_RECORD, APP_RECORD, ZONE, Lab
from tests.drills.loadloop import LoadLoop
from tests.infra.testhost import terminate
from tests.lab.host import LabHost
from tests.lab.registry import CADDY_BINARY

pytestmark = pytest.mark.drill

ENV = "production"


def containers(lab: Lab, role: str) -> list[str]:
    """NAME STATE VERSION of each app container on a host, running or not."""
    out = lab.hosts[role].docker("ps", "-a", "--filter", "label=autoenroll.app=1", "--format",
                                 '{{.Names}} {{.State}} {{.Label "autoenroll.version"}}')
    return sorted(out.stdout.splitlines())


def final_state(lab: Lab) -> dict[str, Any]:
    status = lab.ops("failover", "status", "--env", ENV, "--json")
    locks = lab.ops("lock", "list", "--env", ENV, "--json")
    assert status.returncode == 0 and locks.returncode == 0, status.stderr + locks.stderr
    return {"hosts": {role: containers(lab, role) for role in lab.hosts}, "dns": lab.record_contents(),
            "status": json.loads(status.stdout), "locks": json.loads(locks.stdout)}


def assert_clean(lab: Lab, version: str, serving: str = "primary") -> dict[str, Any]:
    """What a correct tool leaves: one running container per host, of `version`; DNS whole on one host;
    no journal, no lock."""
    state = final_state(lab)
    for role, found in state["hosts"].items():
        assert len(found) == 1 and found[0].endswith(f" running {version}"), f"{role}: {found}"
    address = lab.hosts[serving].address
    assert state["dns"] == {"app": address, "api": address}, state["dns"]
    assert state["status"]["in_progress"] is None and state["locks"] == [], state
    return state


def start_ops(lab: Lab, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "ops", *args], env=lab.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_candidate(lab: Lab, role: str, running: subprocess.Popen[str], timeout: float = 300) -> None:
    """Until a second app container exists on the host: the deploy's `start` on it has run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(containers(lab, role)) >= 2:
            return
        if running.poll() is not None:
            raise AssertionError(f"ops ended (exit {running.returncode}) before a candidate started on {role}: "
                                 f"{running.stderr.read() if running.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError(f"no candidate started on {role} within {timeout} s")


def restart_sshd(host: LabHost) -> None:
    """sshd again with the config the lab wrote (its SetEnv lines included), as after a reboot."""
    host._start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(host.sshd_config)], {})
    host._wait_listening(22)


def deploy_v1(lab: Lab) -> None:
    done = lab.ops("deploy", "--env", ENV, "--yes", "--version", "lab-v1", "--json")
    assert done.returncode == 0, done.stderr
    assert_clean(lab, "lab-v1")


def test_lab_a_host_that_loses_ssh_after_its_candidate_started_is_named_and_the_next_deploy_recovers(
        lab: Lab) -> None:
    deploy_v1(lab)
    standby = lab.hosts["standby"]
    with LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls(), max_seconds=900) as loop:
        running = start_ops(lab, "deploy", "--env", ENV, "--yes", "--version", "lab-v2")
        try:
            wait_for_candidate(lab, "standby", running)
            standby.stop_process("sshd")  # the session running `ready` lives on; every new one is refused
            _out, err = running.communicate(timeout=600)
        finally:
            restart_sshd(standby)
        assert running.returncode == 7, err
        flat = " ".join(err.split())
        assert "NOT rolled back" in flat and f"cannot reach the host {standby.address} over SSH" in flat, err
        named = re.search(r"the lab-v2 candidate on standby-host (127\.0\.0\.1:800[01]) could not be discarded", flat)
        assert named, err  # the host and the port left running
        assert "still serving" not in flat, err
        assert len(containers(lab, "standby")) == 2  # what it said: the candidate is still there

        plan = lab.ops("deploy", "--env", ENV, "--version", "lab-v2", "--plan", "--json")
        assert plan.returncode == 0, plan.stderr
        slots = {h["role"]: h for h in json.loads(plan.stdout)["hosts"]}
        assert slots["standby-host"]["leftovers"] == [f"{named.group(1)} (lab-v2)"], slots
        assert slots["standby-host"]["slot"].startswith("occupied by a leftover candidate"), slots
        assert slots["primary-host"]["leftovers"] == []

        again = lab.ops("deploy", "--env", ENV, "--yes", "--version", "lab-v2", "--json")
        assert again.returncode == 0, again.stderr
    state = assert_clean(lab, "lab-v2")
    assert loop.sent > 50 and loop.failures == [], (len(loop.failures), loop.sent, loop.errors, state)


@pytest.mark.parametrize(("signum", "role"), [(signal.SIGTERM, "standby"), (signal.SIGINT, "primary")],
                         ids=["SIGTERM-at-standby", "SIGINT-at-primary"])
def test_lab_a_signal_after_start_discards_the_candidate_and_the_next_deploy_runs(
        lab: Lab, signum: int, role: str) -> None:
    deploy_v1(lab)
    with LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls(), max_seconds=900) as loop:
        running = start_ops(lab, "deploy", "--env", ENV, "--yes", "--version", "lab-v2")
        wait_for_candidate(lab, role, running)
        running.send_signal(signum)  # a cancelled CI job; a Ctrl-C
        _out, err = running.communicate(timeout=300)
        assert running.returncode == 130, err
        flat = " ".join(err.split())
        # The signal lands in `ready` (the candidate is rolled back) or at the end of `start` (what it
        # left is discarded): either way said, and done.
        assert f"interrupted on {role}-host: rolled back on {role}-host, lab-v1 still serving" in flat or \
            f"interrupted on {role}-host during start; discarded 127.0.0.1:" in flat, err
        interrupted = final_state(lab)
        # No host with two slots; a host done before the interruption keeps the new version.
        assert all(len(found) == 1 for found in interrupted["hosts"].values()), interrupted
        assert interrupted["hosts"][role][0].endswith(" running lab-v1"), interrupted
        assert interrupted["locks"] == [], interrupted  # released: the next run is not refused
        again = lab.ops("deploy", "--env", ENV, "--yes", "--version", "lab-v2", "--json")
        assert again.returncode == 0, again.stderr
    assert_clean(lab, "lab-v2")
    assert loop.failures == [], (len(loop.failures), loop.sent, loop.errors)


def wait_for_lock(lab: Lab, purpose: str, running: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = json.loads(lab.ops("lock", "list", "--env", ENV, "--json").stdout)
        if any(h["purpose"] == purpose for h in held):
            return
        assert running.poll() is None, f"ops ended (exit {running.returncode}) before taking its lock"
        time.sleep(0.2)
    raise AssertionError(f"nobody took the lock for {purpose!r}")


def test_lab_a_failover_started_during_a_deploy_moves_nothing_and_names_the_deploy(lab: Lab) -> None:
    deploy_v1(lab)
    running = start_ops(lab, "deploy", "--env", ENV, "--yes", "--version", "lab-v2")
    wait_for_candidate(lab, "standby", running)
    met = lab.ops("failover", "--env", ENV, "--yes", "--db", "none", "--wait-for-hosts", "1", "--watch-seconds", "3")
    assert met.returncode == 6, met.stderr
    flat = " ".join(met.stderr.split())
    assert f"failover of {ENV} is locked by" in flat and f"(deploy to {ENV}) since" in flat, met.stderr
    assert lab.record_contents() == {"app": lab.hosts["primary"].address, "api": lab.hosts["primary"].address}
    _out, err = running.communicate(timeout=600)
    assert running.returncode == 0, err
    assert_clean(lab, "lab-v2")


def test_lab_a_deploy_started_during_a_failover_is_refused_naming_it(lab: Lab) -> None:
    deploy_v1(lab)
    running = start_ops(lab, "failover", "--env", ENV, "--yes", "--db", "none", "--watch-seconds", "5")
    wait_for_lock(lab, f"failover of {ENV}", running)
    refused = lab.ops("deploy", "--env", ENV, "--yes", "--version", "lab-v2")
    assert refused.returncode == 6, refused.stderr
    flat = " ".join(refused.stderr.split())
    assert f"deploy to {ENV} is locked by" in flat and f"(failover of {ENV}) since" in flat, refused.stderr
    _out, err = running.communicate(timeout=600)
    assert running.returncode == 0, err
    assert_clean(lab, "lab-v1", serving="standby")
    back = lab.ops("failback", "--env", ENV, "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert_clean(lab, "lab-v1")


@contextmanager
def registry_down(lab: Lab) -> Iterator[None]:
    """The image registry stops answering (its front, which every pull and login goes through)."""
    registry = lab.registry
    terminate(registry.processes.pop("caddy"))
    try:
        yield
    finally:
        home = str(registry.folder / "caddy")
        argv = [CADDY_BINARY, "run", "--config", str(registry.folder / "Caddyfile"), "--adapter", "caddyfile"]
        registry._start("caddy", argv, {"HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home})
        registry._wait_answering()


def test_lab_a_failover_finishes_with_the_registry_down_when_the_image_is_on_the_standby(lab: Lab) -> None:
    from tests.drills.test_lab import start_primary_host_again, stop_primary_host

    deploy_v1(lab)  # records each host's digest of lab-v1
    with LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls(), max_seconds=900) as loop:
        stopped_at = stop_primary_host(lab)
        with registry_down(lab):
            result = lab.ops("failover", "--env", ENV, "--yes", "--db", "none", "--watch-seconds", "3", "--json")
            assert result.returncode == 0, result.stderr
            flat = " ".join(result.stderr.split())
            assert "warning: registry: could not pull" in flat and "as the deploy history recorded" in flat, flat
            state = final_state(lab)
        back_at = time.monotonic()
    assert state["dns"] == {"app": lab.hosts["standby"].address, "api": lab.hosts["standby"].address}, state
    assert state["hosts"]["standby"][0].endswith(" running lab-v1") and len(state["hosts"]["standby"]) == 1, state
    assert state["status"]["state"] == "failed-over" and state["locks"] == [], state
    late = [round(t - stopped_at, 1) for t in loop.failures if t > back_at]
    assert late == [], f"requests failed after the failover finished: {late}"
    start_primary_host_again(lab)
    back = lab.ops("failback", "--env", ENV, "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert_clean(lab, "lab-v1")


def test_lab_cloudflare_failing_the_api_record_leaves_dns_whole_and_the_rerun_finishes(lab: Lab) -> None:
    deploy_v1(lab)
    api = next(r["id"] for r in lab.cloudflare.records[ZONE] if r["name"] == API_RECORD)
    lab.cloudflare.failing[api] = (503, None)  # every try, past the SDK's retries
    try:
        failed = lab.ops("failover", "--env", ENV, "--yes", "--db", "none", "--watch-seconds", "3")
    finally:
        lab.cloudflare.failing.clear()
    assert failed.returncode == 7, failed.stderr
    flat = " ".join(failed.stderr.split())
    assert f"{APP_RECORD} put back to {lab.hosts['primary'].address}: nothing moved" in flat, flat
    state = final_state(lab)
    primary = lab.hosts["primary"].address
    assert state["dns"] == {"app": primary, "api": primary} and not state["status"]["split"], state
    assert state["status"]["state"] == "in-progress" and state["locks"] == [], state
    assert state["status"]["resume"] == f"ops failover --env {ENV} --db none"
    assert state["status"]["in_progress"]["records"]["api"]["state"] == "editing"
    resumed = lab.ops("failover", "--env", ENV, "--yes", "--db", "none", "--watch-seconds", "3", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_clean(lab, "lab-v1", serving="standby")
    back = lab.ops("failback", "--env", ENV, "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert_clean(lab, "lab-v1")


# ------------------------------------------------------------------ `ops failover` stopped in the middle

FAILOVER = ("failover", "--env", ENV, "--db", "none", "--watch-seconds", "2", "--yes")  # production: no terminal
FAILBACK = ("failback", "--env", ENV, "--yes")
RESUME_FAILOVER = f"ops failover --env {ENV} --db none"
RESUME_FAILBACK = f"ops failback --env {ENV}"


def is_clean(lab: Lab, version: str) -> bool:
    """Every host one running container of `version`, DNS whole on the primary, nothing in progress or locked."""
    state = final_state(lab)
    primary = lab.hosts["primary"].address
    return (all(len(found) == 1 and found[0].endswith(f" running {version}") for found in state["hosts"].values())
            and state["dns"] == {"app": primary, "api": primary} and state["status"]["in_progress"] is None
            and state["locks"] == [])


def assert_resumable(lab: Lab, where: str, resume: str, *, locks_released: bool = True) -> dict[str, Any]:
    """What a correct tool leaves after a stop: no host with two slots running, the journal in progress
    naming `resume`, DNS whole or split and reported with `resume` as the finishing command, and the
    locks released (a signal) or named with the commands that break them (a lost run)."""
    state = final_state(lab)
    for role, found in state["hosts"].items():
        assert len(found) == 1 and " running " in found[0], (where, role, found)
    status = state["status"]
    assert status["state"] == "in-progress" and status["resume"] == resume, (where, status)
    if len(set(state["dns"].values())) > 1:
        assert status["split"] and status["finish"] == resume, (where, state["dns"], status)
        assert status["summary"].startswith("SPLIT DNS: ") and f"finish it with: {resume}" in status["summary"]
    else:
        assert not status["split"], (where, status)
    if locks_released:
        assert state["locks"] == [] and "locks_held" not in status, (where, state["locks"])
    return state


def stopped_at(lab: Lab, args: tuple[str, ...], spot: str, signum: int, resume: str) -> dict[str, Any]:
    """Run `ops args` with the signal sent at `spot` (ops.failpoints); assert what it leaves, and return it."""
    where = f"{signal.Signals(signum).name} at {spot}"
    env = {**lab.env, "OPS_FAILPOINT": spot, "OPS_FAILPOINT_SIGNAL": signal.Signals(signum).name}
    run = subprocess.run([sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True,
                         timeout=600, check=False)
    assert run.returncode == 130, (where, run.returncode, run.stderr)
    flat = " ".join(run.stderr.split())
    assert "interrupted:" in flat and "its locks released" in flat and f"resume with: {resume}" in flat, (where, flat)
    if spot == "deploy.after.start":  # the candidate the redeploy had started is discarded first
        assert re.search(r"interrupted on (standby|primary)-host: rolled back on \S+, lab-v1 still serving", flat), flat
    return assert_resumable(lab, where, resume)


@pytest.mark.timeout(900)  # the lab may be built in this test's setup
def test_lab_a_failover_lost_elsewhere_then_stopped_by_signals_mid_step_resumes_to_a_whole_state(lab: Lab) -> None:
    """One failover and one failback, stopped in the middle of their two long steps (between the DNS
    records; a candidate started by the redeploy): first by a lost machine (SIGKILL, its own hostname,
    so its locks hold here), then by SIGTERM and SIGINT (ops.failpoints sends them at the named spot).
    Each stop's state is asserted, and the command it names resumes. A stop after each step is drilled
    on the use-case for every step and both signals (tests/scripts/test_failover_signals.py); here the
    stops inside steps, on real hosts, DNS and locks (one chain: CI time)."""
    if not is_clean(lab, "lab-v1"):
        deploy_v1(lab)
    with LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls(), max_seconds=900) as loop:
        # A laptop (another hostname in the lock) is lost between the two records: SIGKILL, no cleanup,
        # its leases no longer renewed but not expired. Resumed from here:
        elsewhere = "ops-laptop-elsewhere"
        lost = subprocess.run(["unshare", "--uts", "sh", "-c", f'hostname {elsewhere} && exec "$@"', "sh",
                               sys.executable, "-m", "ops", *FAILOVER],
                              env={**lab.env, "OPS_FAILPOINT": "failover.edited.app"},
                              capture_output=True, text=True, timeout=600, check=False)
        assert lost.returncode == -signal.SIGKILL, lost.stderr
        refused = lab.ops(*FAILOVER)
        assert refused.returncode == 6, refused.stderr
        flat = " ".join(refused.stderr.split())
        assert "failover is locked by" in flat and f"@{elsewhere} pid" in flat, flat
        assert f"ops lock release failover --env {ENV}" in flat, flat
        state = assert_resumable(lab, "lost elsewhere", RESUME_FAILOVER, locks_released=False)
        assert state["dns"] == {"app": lab.hosts["standby"].address, "api": lab.hosts["primary"].address}
        assert sorted(h["name"] for h in state["locks"]) == ["failover", "hosts"], state["locks"]
        assert all(f"@{elsewhere} pid" in h["owner"] and h["lease_seconds"] == 300 for h in state["locks"]), state
        breaks = state["status"]["break_locks"]
        assert sorted(breaks) == [f"ops lock release failover --env {ENV}", f"ops lock release hosts --env {ENV}"]
        said = " ".join(lab.ops("failover", "status", "--env", ENV).stderr.split())
        for words in ("SPLIT DNS: app -> standby, api -> primary", "the hosts lock (taken by deploy, rollback, "
                      "failover and failback", f"@{elsewhere} pid", f"then resume: {RESUME_FAILOVER}"):
            assert words in said, (words, said)
        for command in breaks:  # as status and the runbook say; no terminal here, so --yes
            broken = lab.ops(*command.split()[1:], "--yes")
            assert broken.returncode == 0, (command, broken.stderr)

        stopped_at(lab, FAILOVER, "deploy.after.start", signal.SIGTERM, RESUME_FAILOVER)  # a cancelled CI job
        finished = lab.ops(*FAILOVER, "--json")
        assert finished.returncode == 0, finished.stderr
        assert json.loads(finished.stdout)["resumed_after"] == "set-environment"
        assert_clean(lab, "lab-v1", serving="standby")

        stopped_at(lab, FAILBACK, "deploy.after.start", signal.SIGINT, RESUME_FAILBACK)
        split = stopped_at(lab, FAILBACK, "failback.edited.app", signal.SIGTERM, RESUME_FAILBACK)
        assert split["dns"] == {"app": lab.hosts["primary"].address, "api": lab.hosts["standby"].address}, split
        back = lab.ops("failback", "--env", ENV, "--yes", "--json")
        assert back.returncode == 0, back.stderr
    assert_clean(lab, "lab-v1")
    assert loop.sent > 50 and loop.failures == [], (len(loop.failures), loop.sent, loop.errors)
