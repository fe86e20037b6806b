"""Faults in the middle of a roll-out (issue 31, items 1 and 5), on the use-case: a candidate that
cannot be discarded is named (never "rolled back"), SIGTERM and SIGINT discard the candidate, a
leftover's traffic goes back to the live slot, `--plan` shows a leftover, and each failing host verb
gets the message of its cause. The deploy script's own slot logic is drilled on the lab
(tests/drills/test_lab_faults.py); here the hosts are a model of its slots and Caddy."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from ops.adapters.cloud.ssh_hosts import Ssh, SshHosts, verb_failure
from ops.deploy import usecase
from ops.environment import AppHost
from ops.errors import ExternalError
from ops.ports import Candidate
from tests.scripts.test_backup_units import MemoryStore

pytestmark = pytest.mark.unit

LIVE, OTHER = "127.0.0.1:8000", "127.0.0.1:8001"


class ModelHosts:
    """One host as the deploy script keeps it: containers per slot, `current`, Caddy's upstreams.
    `fail` maps a verb to what happens when it is called (an exception, or a callable run first)."""

    def __init__(self) -> None:
        self.containers = {LIVE: "v1"}
        self.current_address = LIVE
        self.upstreams = [LIVE]
        self.fail: dict[str, Callable[[], None]] = {}
        self.calls: list[str] = []
        self.digests_asked: list[str | None] = []

    def _call(self, verb: str) -> None:
        self.calls.append(verb)
        if verb in self.fail:
            self.fail[verb]()

    def roles(self) -> list[str]:
        return ["primary-host"]

    def current(self, role: str) -> tuple[str, str]:
        self._call("current")
        return self.containers[self.current_address], self.current_address

    def serving(self, role: str) -> list[str]:
        self._call("serving")
        return list(self.upstreams)

    def route(self, role: str, dials: list[str]) -> None:
        self._call("route")
        self.upstreams = list(dials)

    def start_candidate(self, role: str, version: str, digest: str | None = None) -> Candidate:
        self._call("start")
        self.digests_asked.append(digest)
        free = OTHER if self.current_address == LIVE else LIVE
        self.containers[free] = version  # a leftover there is replaced, as the script does
        return Candidate(role, version, free, digest="sha256:x")

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        self._call("ready")
        return None

    def promote(self, candidate: Candidate) -> None:
        self._call("promote")
        self.current_address = candidate.address
        self.containers = {candidate.address: candidate.version}

    def discard(self, candidate: Candidate) -> None:
        self._call("discard")
        self.containers.pop(candidate.address, None)

    def slots(self, role: str) -> list[tuple[str, str, str]]:
        return [(a, "live" if a == self.current_address else "leftover", v) for a, v in sorted(self.containers.items())]


def lost_ssh() -> None:
    raise ExternalError("cannot reach the host 10.0.0.2 over SSH (discard): Connection refused")


def test_a_candidate_that_cannot_be_discarded_is_named_not_called_rolled_back() -> None:
    hosts = ModelHosts()
    hosts.wait_ready = lambda _c, _t: "not ready after 30s (/ready answered 503)"  # type: ignore[method-assign]
    hosts.fail["discard"] = lost_ssh
    with pytest.raises(ExternalError) as raised:
        usecase.roll_out(hosts, "v2")  # type: ignore[arg-type]
    message = raised.value.message
    assert "rolled back," not in message and "still serving" not in message
    assert "NOT rolled back" in message and f"primary-host {OTHER} could not be discarded" in message
    assert "Connection refused" in message and "next `ops deploy`" in (raised.value.hint or "")


def test_a_candidate_that_is_not_ready_is_discarded_and_then_rolled_back_is_said() -> None:
    hosts = ModelHosts()
    hosts.wait_ready = lambda _c, _t: "container exited: boom"  # type: ignore[method-assign]
    with pytest.raises(ExternalError, match="rolled back on primary-host, v1 still serving"):
        usecase.roll_out(hosts, "v2")  # type: ignore[arg-type]
    assert hosts.containers == {LIVE: "v1"} and hosts.upstreams == [LIVE]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("at", ["ready", "route", "promote"])
def test_a_signal_at_each_step_discards_the_candidate_and_the_lock_and_history_say_so(
        signum: int, at: str) -> None:
    hosts = ModelHosts()
    store = MemoryStore()
    hosts.fail[at] = lambda: os.kill(os.getpid(), signum)  # a cancelled CI job (SIGTERM), a Ctrl-C (SIGINT)
    with pytest.raises(KeyboardInterrupt):
        usecase.deploy("production", hosts, store, "v2")  # type: ignore[arg-type]
    assert hosts.containers == {LIVE: "v1"}, "the candidate was left running beside the live container"
    assert hosts.upstreams == [LIVE] and hosts.current_address == LIVE
    assert hosts.calls[-1] == "discard"
    assert "_ops/production/deploy.lock" not in store.objects  # released: the next run is not refused
    history = json.loads(store.objects["_ops/production/deploy.history.json"])
    assert history[-1]["kind"] == "interrupted" and history[-1]["version"] == "v2"
    # The default handlers are back: a signal after the deploy is not turned into our exception.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_second_signal_while_discarding_does_not_cut_the_cleanup_short() -> None:
    hosts = ModelHosts()
    hosts.fail["ready"] = lambda: os.kill(os.getpid(), signal.SIGTERM)
    hosts.fail["discard"] = lambda: os.kill(os.getpid(), signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        usecase.roll_out(hosts, "v2")  # type: ignore[arg-type]
    assert hosts.containers == {LIVE: "v1"}


def test_a_leftover_dialled_first_by_caddy_is_taken_out_of_the_route_before_the_next_start() -> None:
    hosts = ModelHosts()
    hosts.containers[OTHER] = "v2"  # an interrupted deploy's candidate, Caddy dialling it first
    hosts.upstreams = [OTHER, LIVE]
    done = usecase.roll_out(hosts, "v3")  # type: ignore[arg-type]
    assert hosts.calls.index("route") < hosts.calls.index("start")
    assert done[0]["from"] == "v1" and hosts.containers == {OTHER: "v3"} and hosts.upstreams == [OTHER]


def test_plan_shows_an_occupied_slot() -> None:
    hosts = ModelHosts()
    hosts.containers[OTHER] = "v2"
    steps = usecase.plan_hosts(hosts, "v3")  # type: ignore[arg-type]
    assert steps[0]["leftovers"] == [f"{OTHER} (v2)"]
    assert steps[0]["slot"].startswith(f"occupied by a leftover candidate {OTHER} (v2)")


# ------------------------------------------------------------------ item 5: each failure its own message


def test_only_an_ssh_connection_failure_gets_the_firewall_hint() -> None:
    unreachable = verb_failure("10.0.0.2", "start", 255, "ssh: connect to host 10.0.0.2 port 22: Connection timed out")
    engine = verb_failure("10.0.0.2", "start", 2, "autoenroll-deploy: the Docker engine does not answer on this "
                                                  "host: is docker.service running?")
    registry = verb_failure("10.0.0.2", "start", 2, "autoenroll-deploy: registry: could not pull r/app:v2: "
                                                    "dial tcp 10.0.0.9:443: connect: connection refused")
    other = verb_failure("10.0.0.2", "discard", 2, "autoenroll-deploy: discard: 127.0.0.1:8000 is the slot "
                                                   "current names: not discarded")
    messages = [e.message for e in (unreachable, engine, registry, other)]
    assert messages[0].startswith("cannot reach the host 10.0.0.2 over SSH (start)")
    assert messages[1].startswith("10.0.0.2: the Docker engine is down (start)")
    assert messages[2].startswith("10.0.0.2: the image registry is unreachable or refused the pull (start)")
    assert messages[3].startswith("10.0.0.2: the deploy script's discard failed (exit 2)")
    firewall = [e for e in (unreachable, engine, registry, other) if "firewall" in (e.hint or "")]
    assert firewall == [unreachable]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_host_whose_sshd_is_gone_during_ready_is_unreachable_not_not_ready(tmp_path: Path) -> None:
    """Real ssh against a port nothing listens on (a killed sshd): exit 255, reported as such."""
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  Port {_closed_port()}\n  StrictHostKeyChecking no\n"
                      f"  UserKnownHostsFile {tmp_path / 'known_hosts'}\n")
    hosts = SshHosts([AppHost(name="primary-host", role="primary", url="http://127.0.0.1:1", address="127.0.0.1")],
                     Ssh(config_file=str(config)), serving_role=lambda: "primary", env_file=lambda _h: "")
    hosts._set_up.add("primary-host")  # its cloud-init was seen finished earlier in the deploy (SshHosts._address)
    with pytest.raises(ExternalError) as raised:
        hosts.wait_ready(Candidate("primary-host", "v2", OTHER), 5)
    assert raised.value.message.startswith("cannot reach the host 127.0.0.1 over SSH (ready)")
    assert "did not become ready" not in raised.value.message and "firewall" in (raised.value.hint or "")


def test_a_redeploy_of_a_recorded_version_asks_for_the_recorded_digest() -> None:
    """What lets the host start the image it has when the registry is down (item 4): the digest the
    history recorded for that version reaches `start`."""
    hosts = ModelHosts()
    store = MemoryStore()
    store.objects["_ops/production/deploy.history.json"] = json.dumps(
        [{"version": "v1", "kind": "deploy", "digests": {"primary-host": "sha256:aaa"}},
         {"version": "v2", "kind": "deploy", "digests": {"primary-host": "sha256:bbb"}}]).encode()
    usecase.deploy("production", hosts, store, "v1")  # type: ignore[arg-type]
    usecase.deploy("production", hosts, store, "v9")  # type: ignore[arg-type]
    assert hosts.digests_asked == ["sha256:aaa", None]


@pytest.mark.parametrize("answer", [200, 503])
def test_still_serving_is_said_only_when_the_public_url_agrees(answer: int) -> None:
    """The claim is checked through the public URL (item 5): a site answering 503 (a dead engine
    behind the edge) is reported as not serving, whatever the host said."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Edge(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name for the GET handler
            self.send_response(answer)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Edge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hosts = ModelHosts()
        hosts.wait_ready = lambda _c, _t: "container exited: boom"  # type: ignore[method-assign]
        with pytest.raises(ExternalError) as raised:
            usecase.deploy("production", hosts, MemoryStore(), "v2",  # type: ignore[arg-type]
                           public_url=f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert "v1 still serving" in raised.value.message
    assert ("BUT the site is not serving" in raised.value.message) == (answer == 503), raised.value.message
    if answer == 503:
        assert raised.value.message.endswith("/ready answers 503")
