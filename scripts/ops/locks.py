"""Locks held in the object store: an owner, an expiry, and a conditional write.

The lock is an object created with `If-None-Match: *`, so two runs (two CI jobs, two
engineers) can't both take it. It names its owner and expires, so a run that was cancelled
(a lost SSH session, a killed CI job) blocks others only until its expiry; then the next
run takes it over and says so.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from ops import store_keys
from ops.errors import ConfigError, LockHeldError, NotFoundError
from ops.ports import ObjectStore


def _stale_local_owner(record: dict[str, str]) -> bool:
    """A lock taken on this host by a process that no longer exists (a killed run)."""
    if record.get("host") != socket.gethostname() or not str(record.get("pid", "")).isdigit():
        return False
    try:
        os.kill(int(record["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _owner() -> str:
    who = os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    run = os.environ.get("GITHUB_RUN_ID")
    return f"{who}@{socket.gethostname()}" + (f" (CI run {run})" if run else "") + f" pid {os.getpid()}"


def _now() -> datetime:
    return datetime.now(UTC)


# A renewed lock's lease: while its run lives the expiry moves forward every third of it, so a
# run that died (a closed laptop, a killed CI job on another machine) blocks others minutes, not hours.
LEASE = timedelta(minutes=5)


class _Renewal:
    """Moves a held lock's expiry forward from a daemon thread until stopped (threading, not a
    library: one timer loop). It writes only while the stored record still carries our token,
    so a lock someone broke is not brought back (a break in the instant between the read and
    the write is the one window left)."""

    def __init__(self, store: ObjectStore, key: str, record: dict[str, str], lease: timedelta) -> None:
        self.store, self.key, self.record, self.lease = store, key, record, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lock-renewal {key}")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease.total_seconds() / 3):
            try:
                current = self.store.get_bytes(self.key)
                if not current or json.loads(current).get("token") != self.record["token"]:
                    return
                self.record["expires_at"] = (_now() + self.lease).isoformat()
                self.store.put_bytes(self.key, json.dumps(self.record).encode())
            except Exception:  # noqa: S112 - a store hiccup: the next beat tries again before expiry
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@contextmanager
def object_lock(store: ObjectStore, key: str, *, ttl: timedelta, purpose: str,
                renew: bool = False, name: str = "NAME", env_name: str = "ENV") -> Iterator[dict[str, str]]:
    """Hold the lock at `key` for the block; raise LockHeldError if someone else holds it.
    With `renew`, `ttl` is a lease renewed while the block runs (see _Renewal). `name` and
    `env_name` (the lock's name in `ops lock list`) make the refusal's hint a command to copy."""
    token = uuid.uuid4().hex
    record = {"token": token, "owner": _owner(), "purpose": purpose, "host": socket.gethostname(),
              "pid": str(os.getpid()),
              "acquired_at": _now().isoformat(), "expires_at": (_now() + ttl).isoformat()}
    if renew:  # said by `ops lock list`: a renewed lease expires minutes after its run died
        record["lease_seconds"] = str(int(ttl.total_seconds()))
    body = json.dumps(record).encode()
    if not store.put_bytes(key, body, if_absent=True):
        existing_raw = store.get_bytes(key)
        existing = json.loads(existing_raw) if existing_raw else {}
        expires = datetime.fromisoformat(existing.get("expires_at", "1970-01-01T00:00:00+00:00"))
        if expires > _now() and not _stale_local_owner(existing):
            theirs = existing.get("purpose")
            raise LockHeldError(
                f"{purpose} is locked by {existing.get('owner', '?')}"
                f"{f' ({theirs})' if theirs and theirs != purpose else ''} since {existing.get('acquired_at', '?')}",
                hint=f"it expires at {existing.get('expires_at')}; if that run is dead, wait for the expiry "
                     f"or break it: ops lock list --env {env_name}, then ops lock release {name} --env {env_name}")
        record["took_over_from"] = str(existing.get("owner", "?"))
        store.delete(key)  # stale: its owner is gone
        if not store.put_bytes(key, json.dumps(record).encode(), if_absent=True):
            raise LockHeldError(f"{purpose}: another run took the expired lock first")
    renewal = _Renewal(store, key, record, ttl) if renew else None
    try:
        yield record
    finally:
        if renewal is not None:
            renewal.stop()
        current = store.get_bytes(key)
        if current and json.loads(current).get("token") == token:
            store.delete(key)


HOSTS_LOCK = "hosts"
# Names `ops lock release` also takes, for the lock's earlier name (runbooks and habits said `deploy`).
LOCK_ALIASES = {"deploy": HOSTS_LOCK}
# What each lock guards, in the words `ops lock list` and `ops failover status` use.
GUARDS = {
    "backup": "the backup lock (backup create, verify, restore)",
    HOSTS_LOCK: "the hosts lock (taken by deploy, rollback, failover and failback: one of them at a time "
                "starts containers on the hosts)",
    "failover": "the failover lock (one failover or failback at a time)",
    "refresh-staging": "the staging refresh lock",
    "refresh-development": "the development refresh lock",
}


@contextmanager
def hosts_lock(store: ObjectStore, env_name: str, *, purpose: str, ttl: timedelta, wait: float = 0.0,
               poll: float = 2.0, renew: bool = False,
               waiting: Callable[[str], None] = lambda _m: None) -> Iterator[dict[str, str]]:
    """Hold the hosts lock for the block. With `wait`, a held lock is asked again every `poll`
    seconds for up to `wait` seconds (a failover meeting a deploy that is about to finish), then
    LockHeldError names the holder and since when."""
    deadline = time.monotonic() + wait
    while True:
        stack = ExitStack()
        try:
            record = stack.enter_context(object_lock(store, store_keys.hosts_lock(env_name), ttl=ttl, purpose=purpose,
                                                     renew=renew, name=HOSTS_LOCK, env_name=env_name))
        except LockHeldError as exc:
            if time.monotonic() + poll > deadline:
                if wait > 0:
                    exc.message = f"{exc.message} (waited {wait:g} s)"
                raise
            waiting(f"{exc.message}: waiting up to {wait:g} s for it")
            time.sleep(poll)
            continue
        with stack:
            yield record
        return


def lock_keys(env_name: str) -> dict[str, str]:
    """Short name -> key of every lock an environment's operations take (what `ops lock` knows)."""
    return {"backup": store_keys.backup_lock(env_name), HOSTS_LOCK: store_keys.hosts_lock(env_name),
            "failover": store_keys.failover_lock(env_name),
            **{f"refresh-{t}": store_keys.refresh_lock(env_name, t) for t in ("staging", "development")}}


def _describe(key: str, record: dict[str, str]) -> dict[str, Any]:
    expires = datetime.fromisoformat(record.get("expires_at", "1970-01-01T00:00:00+00:00"))
    return {"key": key, "purpose": record.get("purpose", "?"), "owner": record.get("owner", "?"),
            "acquired_at": record.get("acquired_at"), "expires_at": record.get("expires_at"),
            "lease_seconds": int(record["lease_seconds"]) if str(record.get("lease_seconds", "")).isdigit() else None,
            "expired": expires <= _now(), "owner_gone": _stale_local_owner(record)}


def list_locks(store: ObjectStore, env_name: str) -> list[dict[str, Any]]:
    """The locks held now (or left by a dead run), with owner and expiry; the `name` is what release takes."""
    found = []
    for name, key in lock_keys(env_name).items():
        raw = store.get_bytes(key)
        if raw is not None:
            found.append({"name": name, "guards": GUARDS.get(name, name), **_describe(key, json.loads(raw))})
    return found


def release_command(name: str, env_name: str) -> str:
    """The command that breaks a held lock (it asks for the typed environment name; CI, with no
    terminal to ask, adds --yes)."""
    return f"ops lock release {name} --env {env_name}"


def release_lock(store: ObjectStore, env_name: str, name: str) -> dict[str, Any]:
    """Break one lock; the record of who broke which lock (and whose it was) stays in the store."""
    keys = lock_keys(env_name)
    name = LOCK_ALIASES.get(name, name)
    key = keys.get(name, name)
    if key not in keys.values():
        raise ConfigError(f"unknown lock {name!r}", hint=f"one of: {', '.join(keys)} (see: ops lock list)")
    raw = store.get_bytes(key)
    if raw is None:
        raise NotFoundError(f"no lock {name!r} is held in {env_name}", hint=f"see: ops lock list --env {env_name}")
    broken = {**_describe(key, json.loads(raw)), "broken_by": _owner(), "broken_at": _now().isoformat()}
    store.delete(key)
    stamp = _now().strftime("%Y%m%dT%H%M%S%fZ")
    store.put_bytes(store_keys.broken_lock(env_name, stamp), json.dumps(broken, indent=2).encode())
    return broken


def broken_locks(store: ObjectStore, env_name: str) -> list[dict[str, Any]]:
    """Every recorded lock break, oldest first."""
    keys = sorted(store.list_keys(store_keys.broken_locks_prefix(env_name)))
    return [json.loads(raw) for raw in (store.get_bytes(k) for k in keys) if raw is not None]
