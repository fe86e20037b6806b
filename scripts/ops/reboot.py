"""`ops hosts reboot`: the hosts whose installed updates (a kernel, libc, OpenSSL) ask for a reboot,
rebooted one at a time, never the serving host and its standby down together.

Why a rolling `ops` command and not unattended-upgrades' `Automatic-Reboot` at staggered times per
role: DNS sends all traffic to one host (the standby serves only after a switch), so a timed reboot
of the serving host is an outage however the times are staggered, and a timer cannot see that the
other host is down already (mid-deploy, mid-failover, or not back from its own reboot). This command
plans first, takes the hosts lock (no deploy or failover meanwhile), and per host that asks for it
(`/var/run/reboot-required`, which unattended-upgrades' kernel hook and the role's apt hook write):

- the non-serving hosts first, each only while the serving host answers ready;
- then the serving host: traffic moves to a host that has answered ready (the DNS switch a failover
  uses), the host reboots, and traffic moves back once it is ready again;
- "back" means SSH answers, the flag is gone (it lives on tmpfs: only a boot clears it) and the live
  app's /ready answers 200. A host that does not come back stops the command with traffic on the
  other host, so the next host is never touched.

A host that no update asked to reboot is left alone (the plan says so).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ops.errors import ExternalError, RefusedError
from ops.locks import LEASE, hosts_lock
from ops.ports import ObjectStore, TrafficSwitch

# A Hetzner VM reboots in well under a minute; Docker, the app's restart and its /ready need a little more.
BOOT_TIMEOUT = 600.0
READY_CHECK = 20.0  # how long a host that should be serving gets to answer /ready


class RebootableHosts(Protocol):
    """The hosts as this command sees them (the cloud's: the deploy script's verbs over SSH)."""

    def names(self) -> list[str]: ...  # every host, the one serving traffic last
    def role(self, name: str) -> str: ...  # primary | standby: what the traffic switch moves between
    def pending(self, name: str) -> list[str] | None: ...  # None: no reboot required; else the packages asking
    def reboot(self, name: str) -> str: ...  # what the host said ("rebooting", "not required", "session ended")
    def ready(self, name: str, timeout: float) -> str | None: ...  # None: its live app answers /ready 200


def _ready(hosts: RebootableHosts, name: str, timeout: float) -> str | None:
    """`hosts.ready`, with a host SSH cannot reach counted as not ready (named), not as a failed command."""
    try:
        return hosts.ready(name, timeout)
    except ExternalError as exc:
        return f"unreachable ({exc.message})"


def plan_reboot(env_name: str, hosts: RebootableHosts, switch: TrafficSwitch) -> dict[str, Any]:
    """Per host, in the order it would go: does an update ask for a reboot, and what happens to traffic."""
    serving = switch.serving()
    steps = []
    names = hosts.names()
    for name in names:
        role = hosts.role(name)
        pending = hosts.pending(name)
        others = [n for n in names if n != name]
        if pending is None:
            action = "no reboot required: left alone"
        elif role == serving:
            action = (f"move traffic to {' or '.join(others) or 'another host (none exists)'}, reboot, wait until "
                      "ready, move traffic back")
        else:
            action = "reboot while the serving host answers ready, wait until ready (this host serves no traffic)"
        steps.append({"host": name, "role": role, "serving": role == serving, "required": pending is not None,
                      "packages": pending or [], "action": action})
    return {"action": "reboot hosts", "environment": env_name, "serving": serving, "hosts": steps,
            "changes": "none (plan mode)"}


def _wait_back(hosts: RebootableHosts, name: str, timeout: float, poll: float) -> str | None:
    """None once the host has booted (its flag gone) and its live app is ready; else the last thing seen."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            pending = hosts.pending(name)
        except ExternalError as exc:  # down, or sshd not up yet: what a reboot looks like from here
            last = f"unreachable ({exc.message})"
        else:
            if pending is not None:
                last = "still up, not rebooted yet (its reboot-required flag is still there)"
            else:
                problem = _ready(hosts, name, min(READY_CHECK, max(1.0, deadline - time.monotonic())))
                if problem is None:
                    return None
                last = f"booted, its app not ready: {problem}"
        time.sleep(poll)
    return last


def reboot_hosts(env_name: str, hosts: RebootableHosts, switch: TrafficSwitch, store: ObjectStore, *,
                 progress: Callable[[str], None] = lambda _m: None, timeout: float = BOOT_TIMEOUT,
                 poll: float = 2.0) -> list[dict[str, Any]]:
    """Reboot every host that asks for it (module docstring); what each host went through, in order."""
    done: list[dict[str, Any]] = []
    with hosts_lock(store, env_name, ttl=LEASE, purpose=f"reboot hosts in {env_name}", renew=True):
        plan = plan_reboot(env_name, hosts, switch)  # again under the lock: what the plan showed may have moved
        names = [step["host"] for step in plan["hosts"]]
        for step in plan["hosts"]:
            name, role = step["host"], step["role"]
            if not step["required"]:
                done.append({"host": name, "role": role, "outcome": "no reboot required"})
                continue
            others = [n for n in names if n != name]
            serving = switch.serving()
            moved_to = None
            if role == serving:
                moved_to = next((n for n in others if _ready(hosts, n, READY_CHECK) is None), None)
                if moved_to is None:
                    raise RefusedError(f"{name} serves {env_name}'s traffic and no other host answers ready to take "
                                       "it: not rebooted, nothing changed on it",
                                       hint=f"`ops status --env {env_name}` shows the hosts; deploy or fix the "
                                            "standby first")
                progress(f"{name}: moving traffic to {moved_to} before its reboot")
                switch.move_to(hosts.role(moved_to))
            else:
                at = next((n for n in others if hosts.role(n) == serving), None)
                problem = "no host has the serving role" if at is None else _ready(hosts, at, READY_CHECK)
                if problem is not None:
                    raise RefusedError(f"{name}: the serving host {at or serving} is not ready ({problem}): rebooting "
                                       f"{name} now could leave no host up; not rebooted",
                                       hint=f"`ops status --env {env_name}`; see runbooks/incident-response.md")
            progress(f"{name}: rebooting ({', '.join(step['packages']) or 'an update asked for it'})")
            said = hosts.reboot(name)
            if said == "not required":  # the flag went between the plan and now (rebooted by hand)
                outcome = "no reboot required any more"
            else:
                problem = _wait_back(hosts, name, timeout, poll)
                if problem is not None:
                    where = f"traffic stays on {moved_to}" if moved_to else f"traffic is still on {serving}"
                    raise ExternalError(f"{name} is not back within {timeout:g}s of its reboot: {problem}; {where}; "
                                        "no other host was rebooted",
                                        hint=f"the provider's console shows the server; `ops logs --env {env_name} "
                                             f"--host {name}` once it answers")
                outcome = "rebooted, ready"
            if moved_to is not None:
                switch.move_to(role)
                progress(f"{name}: ready again; traffic back on it")
            done.append({"host": name, "role": role, "outcome": outcome, "packages": step["packages"],
                         **({"traffic_moved_to": moved_to} if moved_to else {})})
    return done
