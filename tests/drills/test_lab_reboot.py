"""A host reboots for its updates and the site stays up (issue 29, host hygiene): unattended-upgrades
has installed a libc on the serving host (its reboot-required flag, as the role's apt hook writes it);
`ops hosts reboot --env staging` plans, moves traffic to the standby, reboots the primary, waits for it
to be ready and moves traffic back, while a bounded request loop through the edge sees no failure. The
standby, which no update asked to reboot, is left alone. `pytest tests/drills/test_lab_reboot.py`.

What a reboot is here. A lab host is a network namespace on this machine, not a VM: it shares this
machine's kernel and init, so nothing can really boot. `systemctl` on a lab host is the lab's
recorder (tests/lab/host.py); when `autoenroll-deploy reboot` calls `systemctl reboot`, this test does
to the host what a reboot does to a server, in order:
- shutdown: Caddy stops, sshd stops, dockerd stops (it stops the app container with SIGTERM, as
  docker.service's stop does), the role's nftables table goes (its drop-in's ExecStop), and every
  process left in the namespace is killed (SSH sessions included), as the shutdown's final SIGKILL;
- /run is tmpfs: the reboot-required flag and its package list are gone;
- boot, in the units' order: nftables (the role's ruleset from its file), docker (the same data root:
  the app container comes back by its restart policy, `unless-stopped`, with no `ops` involved), sshd
  (its config file as written), Caddy (as Debian's unit with the role's drop-in starts it: the
  Caddyfile and the live slot the deploy recorded, tests/lab/caddy_unit.py).
Exercised: the command's order and traffic moves over the real DNS fake and edge, the flag honoured
(set, read over SSH, cleared only by the "boot"), the host unreachable over SSH and then back, the app
and Caddy coming back from what is on disk. Not exercised: a kernel or firmware really restarting,
the time a VM takes to boot, systemd's own unit ordering, Docker's iptables chains being rebuilt from
nothing (they are kept in the namespace), and Vector (the lab has none).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.drills.lab import Lab
from tests.drills.loadloop import LoadLoop
from tests.lab.host import LabHost

pytestmark = pytest.mark.drill

ENV = "staging"


def _flag(host: LabHost, packages: list[str]) -> None:
    """What unattended-upgrades leaves after installing them (REBOOT_REQUIRED_FILE on a lab host)."""
    (host.folder / "reboot-required").write_text("")
    (host.folder / "reboot-required.pkgs").write_text("".join(f"{p}\n" for p in packages))


def simulate_reboot(host: LabHost) -> None:
    """What `systemctl reboot` does to a server, done to a lab host (module docstring)."""
    assert host.engine is not None and host.engine.process is not None
    host.stop_process("caddy")
    host.stop_process("sshd")
    host.engine.process.terminate()  # dockerd's own shutdown stops its containers gracefully
    host.engine.process.wait(timeout=60)
    host.run_as_root(["nft", "delete", "table", "inet", "host_firewall"])
    for pid in host.run_as_root(["ip", "netns", "pids", host.namespace]).stdout.split():
        host.run_as_root(["kill", "-9", pid])
    for name in ("reboot-required", "reboot-required.pkgs"):  # /run is tmpfs
        (host.folder / name).unlink(missing_ok=True)
    host.load_firewall((host.folder / "nftables.conf").read_text())
    host.engine.start()
    host._start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(host.sshd_config)], {})
    host._wait_listening(22)
    host.start_caddy()


@contextmanager
def rebooting_on_request(lab: Lab) -> Iterator[list[tuple[str, dict[str, str]]]]:
    """Watch each host's systemctl recorder; a `reboot` call reboots that host (simulate_reboot). Yields
    the reboots done, each with where DNS pointed at that moment."""
    done: list[tuple[str, dict[str, str]]] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    seen = {role: host.systemctl_calls().count("reboot") for role, host in lab.hosts.items()}

    def watch() -> None:
        while not stop.wait(0.2):
            for role, host in lab.hosts.items():
                if host.systemctl_calls().count("reboot") > seen[role]:
                    seen[role] += 1
                    done.append((role, lab.record_contents()))
                    try:
                        simulate_reboot(host)
                    except BaseException as exc:  # reported by the test, not lost in the thread
                        errors.append(exc)
                        return

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield done
    finally:
        stop.set()
        thread.join(timeout=120)
    if errors:
        raise errors[0]


def _app(host: LabHost) -> str:
    """The running app container the deploy started (its live slot's)."""
    names = host.docker("ps", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}").stdout.split()
    assert len(names) == 1, f"{host.namespace}: app containers running: {names}"
    return names[0]


def _serving_alone(host: LabHost) -> bool:
    """The host's live slot answers ready and no other app container runs beside it (what the drill needs;
    the session's lab often has it from an earlier module, which saves a deploy's 40 s)."""
    script = str(host.folder / "autoenroll-deploy")
    slots = host.ssh([script, "slots"]).stdout.split("\n")
    live = [line.split()[0] for line in slots if line.split()[1:2] == ["live"]]
    running = host.docker("ps", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}").stdout.split()
    return (len(live) == 1 and len(running) == 1 and not any("leftover" in line for line in slots)
            and host.ssh([script, "ready", live[0], "10"]).returncode == 0)


def _started_at(host: LabHost) -> str:
    return host.docker("inspect", "--format", "{{.State.StartedAt}}", _app(host)).stdout.strip()


def test_lab_the_serving_host_reboots_for_a_libc_update_and_the_edge_keeps_serving(lab: Lab) -> None:
    if not all(_serving_alone(host) for host in lab.hosts.values()):  # CI: an earlier module's deploy serves
        deployed = lab.ops("deploy", "--env", ENV, "--yes", "--version", "lab-v1", "--json")
        assert deployed.returncode == 0, deployed.stderr
    primary, standby = lab.hosts["primary"], lab.hosts["standby"]
    _flag(primary, ["libc6"])
    # On-call sees it: `ops status` names the host and the package (and says so in its attention list).
    assert _reboot_column(lab) == {"primary": (True, ["libc6"]), "standby": (False, [])}

    planned = lab.ops("hosts", "reboot", "--env", ENV, "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    plan = {h["host"]: h for h in json.loads(planned.stdout)["hosts"]}
    assert [(h["role"], h["required"], h["packages"]) for h in plan.values()] == \
        [("standby", False, []), ("primary", True, ["libc6"])]
    assert (primary.folder / "reboot-required").exists()  # the plan changed nothing

    before = _started_at(primary)
    standby_before = _started_at(standby)
    with rebooting_on_request(lab) as reboots, \
            LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls(), max_seconds=300) as loop:
        done = lab.ops("hosts", "reboot", "--env", ENV, "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    outcome = {h["role"]: h for h in json.loads(done.stdout)["hosts"]}
    assert outcome["standby"]["outcome"] == "no reboot required"
    assert outcome["primary"]["outcome"] == "rebooted, ready"

    # Only the host whose update asked for it rebooted, and while it did, DNS sent traffic to the other.
    assert [role for role, _dns in reboots] == ["primary"]
    assert set(reboots[0][1].values()) == {standby.address}
    assert "reboot" not in standby.systemctl_calls() and _started_at(standby) == standby_before
    # It really went down and came back: the container restarted by its policy, the flag cleared by the boot.
    assert _started_at(primary) != before
    assert not (primary.folder / "reboot-required").exists()
    # Traffic is home again, and the site never failed a request (bounded loop, through the edge).
    assert set(lab.record_contents().values()) == {primary.address}
    assert loop.sent > 50, f"the loop sent only {loop.sent} requests"
    assert not loop.failures, f"{len(loop.failures)} of {loop.sent} requests failed during the reboot: " \
                              f"{sorted(set(loop.errors))}"
    assert lab.edge_get("/ready").status_code == 200
    assert _reboot_column(lab) == {"primary": (False, []), "standby": (False, [])}


def _reboot_column(lab: Lab) -> dict[str, tuple[bool | None, list[str]]]:
    done = lab.ops("status", "--env", ENV, "--json")
    assert done.returncode in (0, 8), done.stderr
    found = json.loads(done.stdout)["hosts"]
    assert found["answered"], found
    return {h["role"]: (h["reboot_required"], h["reboot_packages"]) for h in found["hosts"]}
