"""The scale phase drilled on the lab (issue 30): `compute.replicas: 3` (tests/drills/lab_scale.py: three
primaries and the standby, HAProxy as Hetzner's load balancer configured from the Hetzner fake, the edge
sending traffic to the load balancer's address), each drill under a bounded request loop through the
edge whose count of failed requests is printed and asserted:

- a rolling `ops deploy` and an `ops rollback`: no request fails;
- a host's app killed mid-deploy (its new version's container, while the deploy waits for it): the
  deploy stops naming the host, the site keeps serving, and rerunning the deploy finishes it;
- a host lost without a deploy (its link cut): the load balancer takes it out (the seconds it took are
  printed beside interval x retries: never asserted, tests do not assert wall-clock times), and no
  request that starts after that fails.

Skipped by a narrower run (several minutes); the whole suite (`bin/test`, tests/parts.py) runs it in its
hosts part. By hand, under the lab lock: `AUTOENROLL_SCALE_LAB=1 flock /tmp/autoenroll-testhosts.lock .venv/bin/pytest
tests/drills/test_lab_scale.py -x -q -s`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from tests.drills.lab import ZONE, Lab
from tests.drills.lab_scale import STACK, ScaleLab, running_scale_lab, stamp
from tests.drills.loadloop import LoadLoop, drill_report
from tests.haproxy_lb import HAPROXY, server_stats, unusual_log_lines

pytestmark = [
    pytest.mark.drill,
    pytest.mark.skipif(os.environ.get("AUTOENROLL_SCALE_LAB") != "1",
                       reason="opt-in (several minutes on the lab): AUTOENROLL_SCALE_LAB=1 runs it"),
    pytest.mark.skipif(not shutil.which(HAPROXY), reason="HAProxy is not installed (apt-get install haproxy)"),
]


@pytest.fixture(scope="module")
def scale(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleLab]:
    """The session's lab with replicas 3, every host on lab-v1 and every target healthy."""
    with running_scale_lab(lab, tmp_path_factory.mktemp("scale-lab")) as scale_lab:
        started = time.monotonic()
        first = scale_lab.ops("deploy", "--env", STACK, "--version", "lab-v1", "--yes", "--json")
        assert first.returncode == 0, first.stderr[-3000:]
        scale_lab.wait_all_healthy()
        took = time.monotonic() - started
        drill_report(f"scale lab: first deploy to 4 hosts and every target healthy in {took:.0f}s")
        yield scale_lab


def report(what: str, loop: LoadLoop) -> None:
    drill_report(f"scale lab: {what}: {len(loop.failures)} of {loop.sent} requests through the edge failed"
                 f"{f' ({sorted(set(loop.errors))})' if loop.errors else ''}")


def one_out_at_a_time(scale: ScaleLab, since: int) -> list[str]:
    """The target actions since `since`, as "out NAME"/"back NAME"; asserts each host went back before
    the next one left (never two primaries out of the rotation at once)."""
    assert scale.lab.hetzner is not None
    name_of = {v: k for k, v in scale.server_ids.items()}
    actions = [("out" if c == "remove_target" else "back") + " " + name_of[s]
               for c, s in scale.lab.hetzner.target_history[since:]]
    out: set[str] = set()
    for action in actions:
        verb, name = action.split()
        out = out | {name} if verb == "out" else out - {name}
        assert len(out) <= 1, f"two hosts out of the rotation at once: {actions}"
    return actions


def test_a_rolling_deploy_and_a_rollback_fail_no_request(scale: ScaleLab) -> None:
    assert scale.lab.hetzner is not None
    mark = len(scale.lab.hetzner.target_history)
    with scale.edge_loop() as loop:
        deployed = scale.ops("deploy", "--env", STACK, "--version", "lab-v2", "--yes", "--json")
    report("rolling deploy lab-v1 -> lab-v2", loop)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert [h["role"] for h in json.loads(deployed.stdout)["hosts"]] == [scale.standby, *scale.primaries]
    assert scale.versions() == dict.fromkeys(scale.hosts, "lab-v2")
    assert one_out_at_a_time(scale, mark) == [f"{verb} {name}" for name in scale.primaries for verb in ("out", "back")]
    assert loop.sent > 100 and loop.failures == [], f"{len(loop.failures)} of {loop.sent} failed: {loop.errors}"

    scale.wait_all_healthy()
    mark = len(scale.lab.hetzner.target_history)
    with scale.edge_loop() as loop:
        rolled = scale.ops("rollback", "--env", STACK, "--yes", "--json")
    report("rollback lab-v2 -> lab-v1", loop)
    assert rolled.returncode == 0, rolled.stderr[-3000:]
    assert scale.versions() == dict.fromkeys(scale.hosts, "lab-v1")
    assert len(one_out_at_a_time(scale, mark)) == 6
    assert loop.sent > 100 and loop.failures == [], f"{len(loop.failures)} of {loop.sent} failed: {loop.errors}"


def kill_new_version_on(scale: ScaleLab, name: str, version: str, stop: threading.Event,
                        killed: list[str]) -> None:
    """Kill every container of `version` on host `name` as soon as it runs, until `stop`: the host's
    new app dies while the deploy waits for it to be ready (killed again if Docker restarts it)."""
    host = scale.hosts[name]
    while not stop.is_set():
        running = host.docker("ps", "-q", "--filter", f"label=autoenroll.version={version}", check=False).stdout.split()
        for container in running:
            host.docker("kill", container, check=False)
            killed.append(container)
        time.sleep(0.1)


def test_a_host_whose_app_is_killed_mid_deploy_stops_the_deploy_and_a_rerun_finishes(scale: ScaleLab) -> None:
    scale.wait_all_healthy()
    victim = scale.primaries[1]
    stop, killed = threading.Event(), list[str]()
    killer = threading.Thread(target=kill_new_version_on, args=(scale, victim, "lab-v2", stop, killed), daemon=True)
    with scale.edge_loop() as loop:
        killer.start()
        try:
            stopped = scale.ops("deploy", "--env", STACK, "--version", "lab-v2", "--yes")
        finally:
            stop.set()
            killer.join(timeout=30)
    report(f"deploy with {victim}'s new app killed", loop)
    assert killed, "the new version never ran on the host"
    assert stopped.returncode != 0, stopped.stdout[-2000:]
    message = " ".join(stopped.stderr.split())
    assert f"the deploy stopped at {victim}" in message, message
    assert f"on lab-v2 already: {scale.standby}, {scale.primaries[0]}" in message, message
    assert f"untouched: {scale.primaries[2]}" in message, message
    assert scale.version_on(victim) == "lab-v1" and scale.version_on(scale.primaries[2]) == "lab-v1"
    assert loop.failures == [], f"{len(loop.failures)} of {loop.sent} failed: {loop.errors}"

    scale.wait_all_healthy()  # the stopped host went back into the rotation with lab-v1
    with scale.edge_loop() as loop:
        rerun = scale.ops("deploy", "--env", STACK, "--version", "lab-v2", "--yes", "--json")
    report("the rerun deploy", loop)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert scale.versions() == dict.fromkeys(scale.hosts, "lab-v2")
    assert loop.failures == [], f"{len(loop.failures)} of {loop.sent} failed: {loop.errors}"


def test_a_host_lost_without_a_deploy_leaves_the_rotation_and_requests_stop_failing(scale: ScaleLab) -> None:
    assert scale.lab.hetzner is not None
    scale.wait_all_healthy()
    lost = scale.primaries[2]
    host = scale.hosts[lost]
    link = f"{host.namespace}h"  # this machine's end of the host's link: down, as a server that lost power
    check = scale.health_check
    server_id = scale.server_ids[lost]
    with scale.edge_loop() as loop:
        time.sleep(3)
        subprocess.run(["ip", "link", "set", link, "down"], check=True)
        try:
            lost_at = time.monotonic()
            left = scale.until(lambda: scale.lb_states().get(lost) == "DOWN", f"{lost} out of the rotation")
            out_at = time.monotonic()
            assert scale.lab.hetzner.health(server_id) == "unhealthy"  # what Hetzner's API would report
            time.sleep(15)  # requests through the edge with the host out of the rotation
        finally:
            subprocess.run(["ip", "link", "set", link, "up"], check=True)
    during = [t for t in loop.failures if lost_at <= t < out_at]
    after = [t for t in loop.failures if t >= out_at]
    drill_report(f"scale lab: {lost} lost (link down): out of the rotation after {left:.1f}s (check every "
                 f"{check['interval']}s, {check['retries']} retries, {check['timeout']}s timeout: interval x retries "
                 f"= {check['interval'] * check['retries']}s); {len(during)} requests failed before that, "
                 f"{len(after)} after, of {loop.sent} through the edge ({sorted(set(loop.errors))})")
    # A request in flight on the host when its link went down fails (a read timeout): that one is the
    # loss's to take; any other failure started before the loss is not.
    in_flight = set(loop.in_flight_at(lost_at))
    early = [t for t in loop.failures if t < lost_at and t not in in_flight]
    assert not early, f"{len(early)} requests that had ended before the host was lost failed"
    assert after == [], f"{len(after)} requests that started after {lost} left the rotation failed"
    assert [t for t, ok in loop.results if t >= out_at and ok], "no request went through after the host left"
    back = scale.until(lambda: scale.lb_states().get(lost) == "UP", f"{lost} back in the rotation")
    drill_report(f"scale lab: {lost} back in the rotation {back:.1f}s after its link came up")


def test_failover_to_the_standby_and_failback_to_the_load_balancer(scale: ScaleLab) -> None:
    """`ops failover --db none` with three primaries: the records move from the load balancer to the
    standby; `ops failback` redeploys the three primaries and moves them back to the load balancer (not
    to one primary's own address), which serves through all three again."""
    scale.wait_all_healthy()

    def contents() -> set[str]:
        return {str(r["content"]) for r in scale.lab.cloudflare.records[ZONE]}

    assert contents() == {scale.lb_address}
    with scale.edge_loop() as loop:
        # Not --json: the progress lines (each step, each host) go to stderr, stamped by ops_timed.
        over, over_lines = scale.ops_timed("failover", "--env", STACK, "--db", "none", "--watch-seconds", "2", "--yes")
        assert over.returncode == 0, over.stderr[-3000:]
        assert contents() == {scale.hosts[scale.standby].address}
        back, back_lines = scale.ops_timed("failback", "--env", STACK, "--yes")
    report("failover to the standby and failback", loop)
    assert back.returncode == 0, back.stderr[-3000:]
    assert contents() == {scale.lb_address}
    # When a request fails, the message says when (the loop's clock) beside what each command said when.
    timeline = "\n".join(["failover:", *over_lines, "failback:", *back_lines])
    failed_at = [stamp(t) for t in loop.failures]
    lb_log = "\n".join(["the load balancer's log, lines other than a normal end:",
                        *unusual_log_lines(scale.stats_socket.parent)])
    assert loop.failures == [], (f"{len(loop.failures)} of {loop.sent} failed at {failed_at}: {loop.errors}\n"
                                 f"{timeline}\n{lb_log}")
    before = {n: int(f["stot"]) for n, f in server_stats(scale.stats_socket).items()}
    with scale.edge_loop(max_seconds=5) as loop:
        time.sleep(3)
    after = {n: int(f["stot"]) for n, f in server_stats(scale.stats_socket).items()}
    assert all(after[n] > before[n] for n in scale.primaries), (before, after)  # round robin over all three
    assert loop.sent > 10 and loop.failures == []
