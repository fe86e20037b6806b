"""`ops status` and `ops logs` on the lab (production-shaped: SSH to the hosts, Cloudflare's and
BetterStack's fakes, the TLS-only database), on the session's lab: all parts answered after a deploy;
one host cut off (its sshd stopped) named while the rest still answers; the database not answering
(its postmaster stopped with SIGSTOP: new connections hang, as a stuck compute's do) named likewise.
`flock /tmp/autoenroll-testhosts.lock .venv/bin/pytest tests/drills/test_lab_status.py -q`."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.drills.lab import Lab
from tests.drills.test_lab_faults import restart_sshd

pytestmark = pytest.mark.drill

ENV = "production"
PARTS = ("hosts", "traffic", "failover", "database", "backups", "locks", "monitors")


def overview(lab: Lab) -> dict[str, Any]:
    done = lab.ops("status", "--env", ENV, "--json")
    assert done.returncode == 8, done.stderr  # the lab has no verified backup: always something to attend to
    return dict(json.loads(done.stdout))


def logs(lab: Lab, *args: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    done = lab.ops("logs", "--env", ENV, "--json", *args)
    return done.returncode, {h["host"]: h for h in json.loads(done.stdout)["hosts"]}, done.stderr


@contextmanager
def database_not_answering(lab: Lab) -> Iterator[None]:
    pid = int((lab.database.folder / "data" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def since_keeps_only_what_came_after(lab: Lab) -> None:
    """`ops logs --since` as the hosts apply it (docker logs of the live slot): a request made before the
    moment is left out, one made after it is shown, as an ISO time and as a span. A --since converted
    wrongly (ignored, local time for UTC, milliseconds) shows the first or hides the second."""
    def request_id() -> str:
        response = lab.edge_get("/version")  # logged by the app, unlike /health
        assert response.status_code == 200, response.text[:200]
        return response.headers["x-request-id"]

    before = request_id()
    time.sleep(1.5)
    moment = datetime.now(UTC).replace(microsecond=0)  # what a person types: whole seconds, UTC
    time.sleep(1.5)
    after = request_id()
    code, found, err = logs(lab, "--unit", "app", "--host", "primary-host", "-n", "500", "--since",
                            moment.strftime("%Y-%m-%dT%H:%M:%S"))
    seen = " ".join(found["primary-host"]["lines"])
    assert code == 0 and after in seen and before not in seen, (err, seen[-2000:])
    code, found, err = logs(lab, "--unit", "app", "--host", "primary-host", "-n", "500", "--since", "10m")
    seen = " ".join(found["primary-host"]["lines"])
    assert code == 0 and before in seen and after in seen, (err, seen[-2000:])


def test_lab_status_and_logs_answer_with_a_host_cut_off_and_the_database_not_answering(lab: Lab) -> None:
    deployed = lab.ops("deploy", "--env", ENV, "--version", "lab-v1", "--yes", "--json")
    assert deployed.returncode == 0, deployed.stderr

    data = overview(lab)
    assert all(data[p]["answered"] for p in PARTS), data
    assert data["attention"] == [a for a in data["attention"] if a.startswith("backups:")] != [], data["attention"]
    hosts = {h["host"]: h for h in data["hosts"]["hosts"]}
    assert set(hosts) == {"primary-host", "standby-host"}
    for host in hosts.values():
        seen = (host["reachable"], host["version"], host["ready"], host["leftovers"])
        assert seen == (True, "lab-v1", True, []), host
        assert host["caddy_upstreams"] == [host["slot"]], host
    assert data["traffic"] == {**data["traffic"], "records": {"app": "primary", "api": "primary"},
                               "source": "Cloudflare DNS", "split": False}
    assert data["monitors"]["monitors"] == {"app": "up", "api": "up"} and data["monitors"]["source"] == "BetterStack"
    assert data["database"]["up"] is True and data["failover"]["state"] == "idle"

    code, found, err = logs(lab, "--unit", "deploy", "--host", "primary-host", "-n", "200")
    assert code == 0, err
    journal = " ".join(found["primary-host"]["lines"])
    assert "start lab-v1" in journal and "promote 127.0.0.1:" in journal and "promote: done" in journal, journal
    code, found, err = logs(lab, "--unit", "app", "-n", "20")
    assert code == 0 and all(found[h]["lines"] for h in ("primary-host", "standby-host")), err
    since_keeps_only_what_came_after(lab)

    standby = lab.hosts["standby"]
    standby.stop_process("sshd")
    try:
        data = overview(lab)
        code, found, err = logs(lab, "--unit", "app", "-n", "20")
    finally:
        restart_sshd(standby)
    hosts = {h["host"]: h for h in data["hosts"]["hosts"]}
    assert hosts["standby-host"]["reachable"] is False, hosts
    assert f"cannot reach the host {standby.address} over SSH" in hosts["standby-host"]["error"]
    assert hosts["primary-host"]["reachable"] and hosts["primary-host"]["ready"], hosts
    assert all(data[p]["answered"] for p in PARTS), data
    assert any(a.startswith("host standby-host: unreachable") for a in data["attention"]), data["attention"]
    assert code == 7 and found["primary-host"]["lines"] and found["standby-host"]["lines"] == [], err
    assert "cannot reach the host" in found["standby-host"]["error"] and "standby-host" in err

    with database_not_answering(lab):
        data = overview(lab)
    assert data["database"]["up"] is False and "database unreachable" in data["database"]["error"], data["database"]
    assert any(a.startswith("database main: down") for a in data["attention"]), data["attention"]
    assert all(data[p]["answered"] for p in ("hosts", "traffic", "failover", "backups", "locks", "monitors")), data
    assert data["traffic"]["records"] == {"app": "primary", "api": "primary"}
