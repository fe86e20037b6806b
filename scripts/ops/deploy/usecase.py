"""`ops deploy` and `ops rollback`: rolling, zero-downtime, self-rolling-back, one algorithm
for every environment (the sandbox's processes and Hetzner's containers are both `Hosts`).

Per host (the serving host last): start the new version beside the old, wait for /ready,
move that host's traffic to it (its Caddy's upstream, swapped atomically by Caddy), drain,
then stop the old gracefully (in-flight requests finish). Without the drain a fresh-clone
CI run saw one of 638 requests fail: one routed under the old upstream just as the old
process stopped. If the new version doesn't become ready, it is discarded and the old one
keeps serving: nothing changed on that host, and the command says so.

Behind a load balancer (replicas > 1, a `Rotation`), a host also leaves the rotation before its
switch: one host at a time, each taken out only while another target is healthy (the serving set
is never empty), drained, switched as above, put back, and only once the load balancer calls it
healthy again does the next host start. A host that fails stops the deploy there, named, and goes
back into the rotation with what it was left running; rerunning the deploy finishes the rest.

The history lives beside the lock in the object store, so every runner (a laptop, CI) sees
the same one; `ops rollback` reads it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ops import failpoints, store_keys
from ops.deploy.interrupt import cleaning_up, interruptible
from ops.errors import ConfigError, ExternalError, NotFoundError
from ops.locks import LEASE, hosts_lock
from ops.ports import NOTHING_DEPLOYED, Candidate, Hosts, ObjectStore, Rotation

READY_TIMEOUT = 30.0
DRAIN_SECONDS = 2.0
# Behind a load balancer: how long a host taken out of rotation keeps its open connections before
# its switch (Hetzner's TCP service has no drain of its own), and how long it may take to be called
# healthy again (its check: 10 s interval, 3 retries, 5 s timeout: stacks/compute.py).
LB_DRAIN_SECONDS = 10.0
LB_HEALTHY_TIMEOUT = 90.0
LB_POLL_SECONDS = 2.0
HISTORY_KEPT = 50
VERSION_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass
class DeployReport:
    version: str
    hosts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def validate_version(version: str) -> None:
    if not version or not set(version) <= VERSION_CHARS or len(version) > 64:
        raise ConfigError(f"--version: {version!r} is not a version (letters, digits, '.', '_', '-')")


def read_history(store: ObjectStore, env_name: str) -> list[dict[str, Any]]:
    raw = store.get_bytes(store_keys.deploy_history(env_name))
    return list(json.loads(raw)) if raw else []


def _append_history(store: ObjectStore, env_name: str, entry: dict[str, Any]) -> None:
    history = [*read_history(store, env_name), {**entry, "at": datetime.now(UTC).isoformat()}]
    store.put_bytes(store_keys.deploy_history(env_name), json.dumps(history[-HISTORY_KEPT:]).encode())


def not_ready_hint(role: str, env_name: str | None) -> str:
    """What to do about a candidate that never became ready. A 503 from /ready is most often a
    database the release's migrations have not reached (a first bring-up's empty one, or a release
    deployed without `ops db migrate`): the host verb reports only the status, so the hint names
    the command that shows the revision and the one that fixes it."""
    logs = f"see the app's log on {role} for why (sandbox: `ops sandbox logs app-{role}`)"
    if env_name is None:
        return logs
    return (f"a 503 from /ready means a dependency is down or the database is not at this release's schema "
            f"head: `ops db migrate --env {env_name} --plan` shows its revision; if it is behind, run "
            f"`ops db migrate --env {env_name}` and deploy again; otherwise {logs}")


def _undo(hosts: Hosts, candidate: Candidate, old_version: str, old_address: str) -> str:
    """Take a started candidate away again; what the host is left with, in words. Raises when the
    candidate could not be discarded (the caller names the host and port left running)."""
    role = candidate.role
    with cleaning_up():
        now_version, now_address = hosts.current(role)
        if now_address == candidate.address:  # the promote finished just before the interruption
            if old_address in hosts.serving(role):
                hosts.route(role, [candidate.address])
            return f"{now_version} was already promoted on {role} and is serving"
        serving = hosts.serving(role) if old_version != NOTHING_DEPLOYED else []
        if candidate.address in serving:  # traffic had moved to it: back to the live one first
            hosts.route(role, [old_address])
        hosts.discard(candidate)
    return f"rolled back on {role}, {old_version} still serving" if old_version != NOTHING_DEPLOYED else \
        f"its candidate on {role} was discarded"


def _discard_leftovers(hosts: Hosts, role: str, version: str) -> str:
    with cleaning_up():
        try:
            left = [address for address, state, _v in hosts.slots(role) if state == "leftover"]
            for address in left:
                hosts.discard(Candidate(role, version, address))
        except Exception as exc:  # said, and the host's next `start` discards it
            return f"interrupted on {role} during start; a candidate may be left ({exc}): the next deploy discards it"
    return f"interrupted on {role} during start; " + (f"discarded {', '.join(left)}" if left else "nothing was left")


def _left_running(candidate: Candidate, old_version: str, why: BaseException) -> str:
    return (f"NOT rolled back: the {candidate.version} candidate on {candidate.role} {candidate.address} could not "
            f"be discarded ({why}) and may still be running beside {old_version}")


LEFT_RUNNING_HINT = ("the next `ops deploy` or `ops rollback` discards it first (`ops deploy --plan` shows it as a "
                     "leftover); see runbooks/deploy-and-rollback.md, \"could not be discarded\"")


def recorded_digests(history: list[dict[str, Any]], version: str) -> dict[str, str]:
    """Per host, the digest the last recorded deploy of `version` started (empty if none recorded)."""
    for entry in reversed(history):
        if entry.get("version") == version and entry.get("digests"):
            return {str(k): str(v) for k, v in entry["digests"].items()}
    return {}


def _out_of_rotation(rotation: Rotation, role: str, progress: Callable[[str], None]) -> bool:
    """Take `role` out of the load balancer's rotation if it is a target; whether it was. Refuses
    (raises, nothing changed) when it serves and no other target is healthy: the serving set is never
    emptied. A target that is not healthy serves nothing, so it leaves even then (a stack's first
    deploy: no target healthy yet, and none would ever be if the first could not leave)."""
    members = rotation.members()
    if role not in members:
        return False
    others = [r for r in members if r != role and rotation.healthy(r)]
    if not others and rotation.healthy(role):
        unhealthy = [r for r in members if r != role]
        why = f"{', '.join(unhealthy)} unhealthy" if unhealthy else "it is the only one"
        raise ExternalError(
            f"not taking {role} out of the load balancer: no other target is healthy ({why}); "
            f"nothing changed on {role}",
            hint="`ops health` shows each target's state; bring one back first, or deploy with one host")
    rotation.take_out(role)
    serving = f"{', '.join(others)} serving" if others else "no target is healthy yet"
    progress(f"{role}: out of the load balancer's rotation ({serving}); draining {LB_DRAIN_SECONDS:g}s")
    try:
        time.sleep(LB_DRAIN_SECONDS)
    except BaseException:  # a signal while draining: nothing changed on the host, so back it goes
        _put_back_after_failure(rotation, role, progress)
        raise
    return True


def _back_in_rotation(rotation: Rotation, role: str, progress: Callable[[str], None]) -> None:
    """Put `role` back and wait until the load balancer calls it healthy (raises, naming it, if not:
    the deploy stops there, so no second host leaves while this one does not serve)."""
    with cleaning_up():
        rotation.put_back(role)
    deadline = time.monotonic() + LB_HEALTHY_TIMEOUT
    while not rotation.healthy(role):
        if time.monotonic() > deadline:
            raise ExternalError(
                f"{role} is back in the load balancer's rotation but not healthy after {LB_HEALTHY_TIMEOUT:g}s; "
                "the deploy stopped there, the hosts after it untouched",
                hint=f"its health check asks /ready through its Caddy: `ops health` and the app's log on {role}; "
                     "rerunning the deploy continues")
        time.sleep(LB_POLL_SECONDS)
    progress(f"{role}: back in the load balancer's rotation, healthy")


def roll_out(hosts: Hosts, version: str, *, progress: Callable[[str], None] = lambda _m: None,
             roles: list[str] | None = None, env_name: str | None = None,
             digests: dict[str, str] | None = None, rotation: Rotation | None = None) -> list[dict[str, Any]]:
    """Put `version` on each host in turn (the serving host last); the caller holds the lock.

    With a `rotation` (a load balancer), each host that is one of its targets leaves it for its
    switch and is healthy in it again before the next host starts (module docstring).

    A candidate that started is promoted or discarded before this returns or raises, also when
    SIGTERM or SIGINT arrives (ops.deploy.interrupt); one that could not be discarded (the host
    lost SSH) is named, and the host's next `start` discards it, since only `current`'s slot is live."""
    done: list[dict[str, Any]] = []
    order = roles if roles is not None else hosts.roles()
    with interruptible():
        if rotation is not None:
            _restore_rotation(rotation, progress)
            order = _unhealthy_targets_first(rotation, order)
        for role in order:
            try:
                out = rotation is not None and _out_of_rotation(rotation, role, progress)
                try:
                    report = _roll_out_host(hosts, role, version, progress, env_name, digests)
                except BaseException:
                    if out:
                        assert rotation is not None
                        # The host runs what it was left with (the old version, or the new one
                        # promoted): back in, and the load balancer's check decides if it serves.
                        _put_back_after_failure(rotation, role, progress)
                    raise
                if out:
                    assert rotation is not None
                    _back_in_rotation(rotation, role, progress)
            except ExternalError as exc:
                if len(order) < 2:
                    raise
                # Which host stopped it and where the others are, so a rerun is the obvious next step.
                finished = [d["role"] for d in done]
                untouched = order[order.index(role) + 1:]
                raise ExternalError(
                    f"{exc.message} (the deploy stopped at {role}; on {version} already: "
                    f"{', '.join(finished) or 'none'}; untouched: {', '.join(untouched) or 'none'})",
                    hint=exc.hint) from None
            done.append(report)
    return done


def _unhealthy_targets_first(rotation: Rotation, order: list[str]) -> list[str]:
    """`order` with the load balancer's targets that it does not call healthy moved to the front
    (otherwise kept: the hosts that are no target, the standby, where they were).

    Why: a target that is not healthy serves nothing, so switching it first costs no traffic, and it
    gives the healthy ones a healthy peer to leave behind. When `replicas` goes from 1 to 3 the two
    new servers are targets that fail their check until their first deploy (no certificate, no app):
    in the hosts' own order app-1 came first and could not leave (no other target healthy), so the
    scale phase's first deploy was refused every time."""
    members = rotation.members()
    unhealthy = [r for r in order if r in members and not rotation.healthy(r)]
    return unhealthy + [r for r in order if r not in unhealthy]


def _restore_rotation(rotation: Rotation, progress: Callable[[str], None]) -> None:
    """Hosts an interrupted deploy left out of the rotation (a killed CI job between take_out and
    put_back) go back first, so this deploy never has two out at once."""
    members = rotation.members()
    for role in rotation.expected():
        if role not in members:
            with cleaning_up():
                rotation.put_back(role)
            progress(f"{role}: back in the load balancer's rotation (an interrupted deploy had left it out)")


def _put_back_after_failure(rotation: Rotation, role: str, progress: Callable[[str], None]) -> None:
    """Put a failed host back in the rotation without waiting on it; a failure to do so is said,
    never raised over the host's own failure."""
    try:
        with cleaning_up():
            rotation.put_back(role)
    except Exception as exc:
        progress(f"{role}: could NOT put it back in the load balancer's rotation ({exc}): `ops health` shows it")
    else:
        progress(f"{role}: back in the load balancer's rotation (its health check decides if it serves)")


def _roll_out_host(hosts: Hosts, role: str, version: str, progress: Callable[[str], None],
                   env_name: str | None, digests: dict[str, str] | None) -> dict[str, Any]:
    """One host's blue/green switch (module docstring)."""
    old_version, old_address = hosts.current(role)
    if old_version != NOTHING_DEPLOYED:
        serving = hosts.serving(role)
        if old_address in serving and serving != [old_address]:
            # An interrupted deploy left this Caddy dialling its candidate first: the live one
            # alone again, before the host's `start` discards that leftover.
            hosts.route(role, [old_address])
            progress(f"{role}: traffic back on {old_address} alone (an interrupted deploy's leftover)")
    progress(f"{role}: starting {version} beside {old_version}")
    try:
        candidate = hosts.start_candidate(role, version, (digests or {}).get(role))
    except KeyboardInterrupt:  # mid-`start`: whatever it left is a leftover, discarded now if we can
        progress(_discard_leftovers(hosts, role, version))
        raise
    moving = False
    try:
        # Inside the try: a signal landing as soon as `start` returned still discards the candidate.
        for note in candidate.notes:
            progress(f"{role}: {note}")
        failpoints.hit("deploy.after.start")
        problem = hosts.wait_ready(candidate, READY_TIMEOUT)
        if problem is None:
            moving = old_address in hosts.serving(role)
            if moving:
                # New first, old kept in the list: with lb_policy first all new requests go to the
                # new version, while requests still being routed under Caddy's previous config
                # (a config change is a graceful reload) find their upstream still known.
                hosts.route(role, [candidate.address, old_address])
                progress(f"{role}: traffic moved to {version}; draining {old_version}")
                time.sleep(DRAIN_SECONDS)
            hosts.promote(candidate)
    except BaseException as exc:
        try:
            outcome = _undo(hosts, candidate, old_version, old_address)
        except Exception as undo_exc:  # reported with the first failure, never dropped
            left = _left_running(candidate, old_version, undo_exc)
            if isinstance(exc, KeyboardInterrupt):
                progress(left)
                raise
            message = exc.message if isinstance(exc, ExternalError) else str(exc)
            raise ExternalError(f"{message}; {left}", hint=LEFT_RUNNING_HINT) from None
        if isinstance(exc, KeyboardInterrupt):
            progress(f"interrupted on {role}: {outcome}")
            raise
        if isinstance(exc, ExternalError):
            raise ExternalError(f"{exc.message}; {outcome}", hint=exc.hint) from None
        raise
    if problem is not None:
        try:
            outcome = _undo(hosts, candidate, old_version, old_address)
        except ExternalError as undo_exc:
            raise ExternalError(f"{version} did not become ready on {role}: {problem}; "
                                f"{_left_running(candidate, old_version, undo_exc)}",
                                hint=LEFT_RUNNING_HINT) from None
        raise ExternalError(f"{version} did not become ready on {role}: {problem}; {outcome}",
                            hint=not_ready_hint(role, env_name))
    if moving:
        hosts.route(role, [candidate.address])
    # A container's digest is what ran, whatever the tag points at later: rollbacks and audits use it.
    return {"role": role, "from": old_version, "to": version, "address": candidate.address,
            **({"digest": candidate.digest} if candidate.digest else {})}


def public_check(public_url: str) -> str | None:
    """None when the public URL's /ready answers 200; else what it answered."""
    try:
        response = httpx.get(f"{public_url}/ready", timeout=5)
    except httpx.HTTPError as exc:
        return f"{public_url}/ready gave no answer ({exc.__class__.__name__})"
    return None if response.status_code == 200 else f"{public_url}/ready answers {response.status_code}"


def _checked_claim(exc: ExternalError, public_url: str | None) -> ExternalError:
    """A failure that says the old version is "still serving" says so only if the public URL agrees."""
    if public_url is None or "still serving" not in exc.message:
        return exc
    problem = public_check(public_url)
    if problem is None:
        return exc
    return ExternalError(f"{exc.message}; BUT the site is not serving: {problem}",
                         hint=f"{exc.hint + '; ' if exc.hint else ''}see `ops health` and `ops failover status`")


def deploy(env_name: str, hosts: Hosts, store: ObjectStore, version: str, *,
           record: dict[str, str] | None = None, before: Callable[[], None] = lambda: None,
           progress: Callable[[str], None] = lambda _m: None, public_url: str | None = None,
           rotation: Rotation | None = None) -> DeployReport:
    """Deploy `version` to every host under the environment's deploy lock, and record it (with a
    `rotation`, one host out of the load balancer at a time: `roll_out`).

    `before` runs under the lock before any host changes (the cloud writes each host's env
    file there, so a secret rotation is a deploy)."""
    validate_version(version)
    t0 = time.monotonic()
    report = DeployReport(version)
    # A lease renewed while the deploy runs: a killed run's lock frees within minutes.
    with hosts_lock(store, env_name, ttl=LEASE, purpose=f"deploy to {env_name}", renew=True):
        if not read_history(store, env_name):
            found = hosts.current(hosts.roles()[-1])[0]
            if found != NOTHING_DEPLOYED:  # the first deploy also remembers what it replaced, to roll back to
                _append_history(store, env_name, {"version": found, "kind": "found"})
        before()
        try:
            report.hosts = roll_out(hosts, version, progress=progress, env_name=env_name,
                                    digests=recorded_digests(read_history(store, env_name), version),
                                    rotation=rotation)
        except ExternalError as exc:
            _append_history(store, env_name, {"version": version, "kind": "failed"})
            checked = _checked_claim(exc, public_url)
            if checked is exc:
                raise
            raise checked from None
        except KeyboardInterrupt:  # not a verdict on the version: rollback_target does not count it
            _append_history(store, env_name, {"version": version, "kind": "interrupted"})
            raise
        digests = {h["role"]: h["digest"] for h in report.hosts if "digest" in h}
        entry = {"version": version, "kind": "deploy", **({"digests": digests} if digests else {})}
        _append_history(store, env_name, {**entry, **(record or {})})
    report.seconds = round(time.monotonic() - t0, 2)
    return report


def rollback_target(history: list[dict[str, Any]]) -> tuple[str, str]:
    """(current, target): the last version that was good before the current one.

    A version once rolled back from is not good: rolling back twice goes further back
    (v3 -> v2 -> v1), never bouncing to the version just left (v2 -> v1 -> v2).
    """
    served = [e for e in history if e.get("kind") in ("found", "deploy", "rollback")]
    if not served:
        raise NotFoundError("no deploy history for this environment", hint="ops deploy --version V deploys one")
    current = served[-1]["version"]
    bad = {e["from"] for e in history if e.get("kind") == "rollback"} | {current}
    bad |= {e["version"] for e in history if e.get("kind") == "failed"}
    for entry in reversed(served):
        if entry["version"] not in bad:
            return current, str(entry["version"])
    raise NotFoundError(f"no good version before {current} to roll back to",
                        hint="ops deploy --version V deploys a given one")


def rollback(env_name: str, hosts: Hosts, store: ObjectStore, *, before: Callable[[], None] = lambda: None,
             progress: Callable[[str], None] = lambda _m: None, public_url: str | None = None,
             rotation: Rotation | None = None) -> DeployReport:
    current, target = rollback_target(read_history(store, env_name))
    progress(f"rolling back {current} -> {target}")
    # The entry names what it left, so that version is never a rollback target again.
    return deploy(env_name, hosts, store, target, record={"kind": "rollback", "from": current}, before=before,
                  progress=progress, public_url=public_url, rotation=rotation)


# --------------------------------------------------------------------------- plan mode (reads, never writes)


def _held_lock(store: ObjectStore, env_name: str, name: str) -> dict[str, Any] | None:
    from ops.locks import list_locks

    return next((h for h in list_locks(store, env_name) if h["name"] == name), None)


def plan_hosts(hosts: Hosts, version: str) -> list[dict[str, Any]]:
    """What a roll-out of `version` would do on each host, in the order it would (the serving host
    last): reads each host's current version and its traffic, starts and moves nothing."""
    steps = []
    for role in hosts.roles():
        current, address = hosts.current(role)
        # A fresh host (nothing deployed) serves nothing, and its Caddy may not run yet (it starts
        # once the first deploy writes its certificate): nothing to ask it.
        caddy_down = None
        try:
            serving = current != NOTHING_DEPLOYED and address in hosts.serving(role)
        except ExternalError as exc:
            # A deployed host whose Caddy does not answer (a certificate removed, a crash loop): the
            # deploy's `tls` step rewrites the certificate and restarts Caddy before any switch, so
            # the plan says so rather than failing where the deploy itself would repair the host.
            serving, caddy_down = False, str(exc)
        leftovers = [f"{a} ({v})" for a, state, v in hosts.slots(role) if state == "leftover"]
        # Blue/green: the candidate takes the host's free slot (a container on the other port,
        # a new process locally) and the old one keeps serving until the new one is ready.
        slot = f"the free slot beside {address}" if current != NOTHING_DEPLOYED else "a first slot"
        if leftovers:
            slot = (f"occupied by a leftover candidate {', '.join(leftovers)} (an interrupted deploy's): "
                    f"discarded first, then {slot}")
        steps.append({
            "role": role, "from": current, "to": version, "address": address, "slot": slot,
            "leftovers": leftovers,
            "traffic": (f"this host's traffic moves {address} -> the {version} candidate once /ready, "
                        f"then {current} drains and stops") if serving else
                       (f"unknown: this host's Caddy does not answer ({caddy_down}); the deploy restarts it "
                        f"before any switch") if caddy_down else "none (this host is not serving)",
            "same_version": current == version,
        })
    return steps


def plan_deploy(env_name: str, hosts: Hosts, store: ObjectStore, version: str) -> dict[str, Any]:
    """`ops deploy --plan`: per host, current version -> target, the slot and the traffic switch."""
    validate_version(version)
    return {"action": "deploy", "environment": env_name, "version": version, "hosts": plan_hosts(hosts, version),
            "lock_held": _held_lock(store, env_name, "hosts"), "changes": "none (plan mode)"}


def plan_rollback(env_name: str, hosts: Hosts, store: ObjectStore) -> dict[str, Any]:
    """`ops rollback --plan`: which version it would go back to, and the same per-host plan."""
    current, target = rollback_target(read_history(store, env_name))
    return {"action": "rollback", "environment": env_name, "from": current, "version": target,
            "hosts": plan_hosts(hosts, target), "lock_held": _held_lock(store, env_name, "hosts"),
            "changes": "none (plan mode)"}
