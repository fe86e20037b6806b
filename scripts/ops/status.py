"""`ops status`: one overview of an environment, each part answering on its own.

The parts (hosts, traffic, failover, database, backups, locks, monitors) each depend on
something different (SSH, the DNS provider, the object store, the database, BetterStack), so
each runs alone: a part whose dependency is down says which dependency and why, and the others
still answer. What "needs attention" is collected into one list; the command's exit code
(8, the verification code) says whether it is empty. The use-case takes ports (`StatusPorts`,
built by ops.wiring) and reuses what the other commands read: deploy slots and `current`,
`ops failover status`, the backup listing, the lock listing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.errors import OpsError, describe, is_dependency_error
from ops.ports import NOTHING_DEPLOYED, Hosts, LiveDatabase, ObjectStore


@dataclass(frozen=True)
class HostRef:
    key: str  # what the `Hosts` port calls it (the sandbox: its role; the cloud: the server's name)
    name: str
    role: str
    address: str


@dataclass(frozen=True)
class StatusPorts:
    """What `ops status` reads, built per environment by ops.wiring.status_ports."""

    env_name: str
    home_database: str
    hosts: Callable[[], Hosts]
    host_refs: tuple[HostRef, ...]
    app_ready: Callable[[HostRef, str], str | None]  # None when the app at that address answers /ready
    objects: ObjectStore
    live: LiveDatabase
    serving: Callable[[], str] | None  # the traffic switch, or None (no DNS token: the recorded state)
    serving_source: str
    records: Callable[[], dict[str, str]] | None
    database_ping: Callable[[dict[str, Any] | None], str]  # the live record (or None) -> what answered
    monitors: Callable[[], dict[str, str]]  # monitor -> "up" | "down" | "paused" | ...
    monitors_source: str
    dependencies: dict[str, str]  # part -> the dependency it needs, in words
    # Each host has a Caddy of its own (the cloud); the sandbox's one Caddy is the traffic switch instead.
    host_caddy: bool = True
    # The packages whose update waits for a reboot (None: none does), from the deploy script's
    # `reboot-required` verb; None for the sandbox, whose hosts are processes and never reboot.
    reboot_pending: Callable[[HostRef], list[str] | None] | None = None


def _failed(exc: BaseException) -> str:
    return exc.message if isinstance(exc, OpsError) else f"{exc.__class__.__name__}: {describe(exc)}"


def _run(name: str, ports: StatusPorts, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One part; a dependency's failure becomes the part's answer (which dependency, what it said)."""
    try:
        return {"answered": True, **read()}
    except Exception as exc:
        if not is_dependency_error(exc) and not isinstance(exc, OSError):
            raise  # a bug: the command says so (exit 1), rather than a wrong overview
        depends = ports.dependencies.get(name, "its dependency")
        why = _failed(exc)
        return {"answered": False, "depends_on": depends, "error": why,
                "attention": [f"{name}: not answered, {depends} failed: {why}"]}


def _host(ports: StatusPorts, hosts: Hosts, ref: HostRef) -> dict[str, Any]:
    out: dict[str, Any] = {"host": ref.name, "role": ref.role, "address": ref.address}
    try:
        version, address = hosts.current(ref.key)
        slots = hosts.slots(ref.key)
        upstreams = hosts.serving(ref.key) if version != NOTHING_DEPLOYED and ports.host_caddy else []
        ready = ports.app_ready(ref, address) if version != NOTHING_DEPLOYED else "nothing deployed"
    except Exception as exc:
        if not is_dependency_error(exc):
            raise
        out.update(reachable=False, error=_failed(exc),
                   attention=[f"host {ref.name}: unreachable ({_failed(exc)})"])
        return out
    attention = []
    leftovers = [f"{a} ({v})" for a, state, v in slots if state == "leftover"]
    if leftovers:
        attention.append(f"host {ref.name}: leftover candidate {', '.join(leftovers)} (the next deploy discards it)")
    if ports.host_caddy and version != NOTHING_DEPLOYED and address not in upstreams:
        attention.append(f"host {ref.name}: its Caddy dials {upstreams or 'nothing'}, not the live slot {address}")
    if ready is not None:
        attention.append(f"host {ref.name}: the app is not ready ({ready})")
    out.update(reachable=True, version=version, slot=address, caddy_upstreams=upstreams, leftovers=leftovers,
               ready=ready is None, not_ready=ready, attention=attention)
    if ports.reboot_pending is not None:
        reboot = _reboot(ports, ref)
        attention.extend(reboot.pop("attention", []))
        out.update(reboot)
    return out


def _reboot(ports: StatusPorts, ref: HostRef) -> dict[str, Any]:
    """Does an installed update wait for a reboot (the role never reboots by itself: `ops hosts reboot`
    moves traffic first). Not knowing is said, and does not make a reachable host look down."""
    assert ports.reboot_pending is not None
    try:
        packages = ports.reboot_pending(ref)
    except Exception as exc:
        if not is_dependency_error(exc):
            raise
        return {"reboot_required": None,
                "attention": [f"host {ref.name}: whether a reboot is pending is unknown ({_failed(exc)})"]}
    if packages is None:
        return {"reboot_required": False, "reboot_packages": []}
    named = ", ".join(packages) or "no package named"
    return {"reboot_required": True, "reboot_packages": packages,
            "attention": [f"host {ref.name}: an update waits for a reboot ({named}): "
                          f"`ops hosts reboot --env {ports.env_name}` moves its traffic first"]}


def hosts_part(ports: StatusPorts) -> dict[str, Any]:
    hosts = ports.hosts()
    found = [_host(ports, hosts, ref) for ref in ports.host_refs]
    versions = {h["version"] for h in found if h.get("reachable") and h["version"] != NOTHING_DEPLOYED}
    attention = [a for h in found for a in h.pop("attention")]
    if len(versions) > 1:
        attention.append(f"hosts run different versions ({', '.join(sorted(versions))}): a deploy did not finish")
    return {"hosts": found, "attention": attention}


def traffic_part(ports: StatusPorts) -> dict[str, Any]:
    """Where DNS (the sandbox: its Caddy) sends each record the switch moves; a split named."""
    if ports.serving is None:
        return {"source": ports.serving_source, "records": None,
                "attention": [], "note": "not asked: the failover part reports the recorded state"}
    records = ports.records() if ports.records is not None else {"traffic": ports.serving()}
    roles = set(records.values())
    attention = []
    if len(roles) > 1:
        attention.append("DNS is split (" + ", ".join(f"{k} -> {v}" for k, v in records.items())
                         + f"): finish the switch, see `ops failover status --env {ports.env_name}`")
    elif roles and roles != {"primary"}:
        attention.append(f"traffic is on the {next(iter(roles))}, not the primary")
    return {"source": ports.serving_source, "records": records, "split": len(roles) > 1,
            "serving": next(iter(roles)) if len(roles) == 1 else None, "attention": attention}


def failover_part(ports: StatusPorts) -> dict[str, Any]:
    from ops.failover import usecase

    data = usecase.status(ports.env_name, ports.objects, ports.live, home_database=ports.home_database,
                          serving=ports.serving, serving_source=ports.serving_source, records=ports.records)
    attention = [] if data["state"] == "idle" else [data["summary"]]
    if data["state"] == "idle" and data["live_database"]["database"] != ports.home_database:
        attention.append(data["summary"])
    return {"state": data["state"], "summary": data["summary"], "live_database": data["live_database"],
            "resume": data.get("resume"), "attention": attention}


def database_part(ports: StatusPorts) -> dict[str, Any]:
    """The live database answers a query. Which one is live is the recorded state (object store):
    when that cannot be read, the home branch is asked, and the answer says so."""
    note = None
    try:
        record: dict[str, Any] | None = ports.live.get()
    except Exception as exc:
        if not is_dependency_error(exc):
            raise
        record, note = None, (f"the live-database record could not be read ({_failed(exc)}): asked the home "
                              f"database {ports.home_database}")
    database = (record or {}).get("database", ports.home_database)
    try:
        answered = ports.database_ping(record)
    except Exception as exc:
        if not is_dependency_error(exc):
            raise
        return {"database": database, "record": record, "up": False, "error": _failed(exc), "note": note,
                "attention": [f"database {database}: down ({_failed(exc)})"]}
    return {"database": database, "record": record, "up": True, "answered": answered, "note": note,
            "attention": []}


def backups_part(ports: StatusPorts, now: datetime | None = None) -> dict[str, Any]:
    from ops.backup.usecase import list_backups
    from ops.checklist import MAX_BACKUP_AGE  # the checklist's limit: the nightly job plus two hours of slack

    backups = list_backups(ports.env_name, ports.objects)
    verified = [(mf, v) for mf, v in backups if v is not None and v.ok]
    newest = backups[0][0] if backups else None
    if not verified:
        return {"count": len(backups), "newest": newest.id if newest else None, "verified": None,
                "attention": [f"backups: {len(backups)} complete, none verified "
                              f"(ops backup verify --latest --env {ports.env_name})"]}
    manifest, check = verified[0]
    age = (now or datetime.now(UTC)) - manifest.finished_at
    hours = round(age.total_seconds() / 3600, 1)
    attention = [] if age < MAX_BACKUP_AGE else [
        f"backups: the newest verified backup {manifest.id} is {hours} h old (limit "
        f"{MAX_BACKUP_AGE.total_seconds() / 3600:g} h): did the nightly job run?"]
    assert check is not None
    return {"count": len(backups), "newest": newest.id if newest else None, "verified": manifest.id,
            "finished_at": manifest.finished_at.isoformat(), "verified_at": check.verified_at.isoformat(),
            "age_hours": hours, "limit_hours": MAX_BACKUP_AGE.total_seconds() / 3600, "attention": attention}


def locks_part(ports: StatusPorts) -> dict[str, Any]:
    from ops.locks import list_locks

    held = list_locks(ports.objects, ports.env_name)
    # A lock a live run holds is an operation in progress, shown; one whose run is gone needs a person.
    stale = [h for h in held if h["expired"] or h["owner_gone"]]
    return {"held": held, "attention": [
        f"lock {h['name']}: left by {h['owner']} since {h['acquired_at']} "
        f"({'expired' if h['expired'] else 'its process is gone'}): ops lock release {h['name']} "
        f"--env {ports.env_name} if that run is dead" for h in stale]}


def monitors_part(ports: StatusPorts) -> dict[str, Any]:
    states = ports.monitors()
    bad = {k: v for k, v in states.items() if v != "up"}
    attention = [f"monitors: {', '.join(f'{k} {v}' for k, v in bad.items())}"] if bad else []
    if not states:
        attention = ["monitors: none known (stack output monitor_ids is empty)"]
    return {"source": ports.monitors_source, "monitors": states, "attention": attention}


def _bound(read: Callable[[StatusPorts], dict[str, Any]], ports: StatusPorts) -> Callable[[], dict[str, Any]]:
    return lambda: read(ports)


PARTS: tuple[tuple[str, Callable[[StatusPorts], dict[str, Any]]], ...] = (
    ("hosts", hosts_part), ("traffic", traffic_part), ("failover", failover_part), ("database", database_part),
    ("backups", backups_part), ("locks", locks_part), ("monitors", monitors_part))


def overview(ports: StatusPorts) -> dict[str, Any]:
    """Every part, and what needs attention across them (empty: all well)."""
    parts = {name: _run(name, ports, _bound(read, ports)) for name, read in PARTS}
    attention = [item for part in parts.values() for item in part.get("attention", [])]
    return {"environment": ports.env_name, "checked_at": datetime.now(UTC).isoformat(), **parts,
            "attention": attention, "ok": not attention}
