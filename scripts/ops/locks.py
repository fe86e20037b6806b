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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from ops.errors import LockHeldError
from ops.interfaces import ObjectStore


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


@contextmanager
def object_lock(store: ObjectStore, key: str, *, ttl: timedelta, purpose: str) -> Iterator[dict[str, str]]:
    """Hold the lock at `key` for the block; raise LockHeldError if someone else holds it."""
    token = uuid.uuid4().hex
    record = {"token": token, "owner": _owner(), "purpose": purpose, "host": socket.gethostname(),
              "pid": str(os.getpid()),
              "acquired_at": _now().isoformat(), "expires_at": (_now() + ttl).isoformat()}
    body = json.dumps(record).encode()
    if not store.put_bytes(key, body, if_absent=True):
        existing_raw = store.get_bytes(key)
        existing = json.loads(existing_raw) if existing_raw else {}
        expires = datetime.fromisoformat(existing.get("expires_at", "1970-01-01T00:00:00+00:00"))
        if expires > _now() and not _stale_local_owner(existing):
            raise LockHeldError(
                f"{purpose} is locked by {existing.get('owner', '?')} since {existing.get('acquired_at', '?')}",
                hint=f"it expires at {existing.get('expires_at')}; if that run is dead, wait for the expiry "
                     f"or delete the lock object {key!r}")
        record["took_over_from"] = str(existing.get("owner", "?"))
        store.delete(key)  # stale: its owner is gone
        if not store.put_bytes(key, json.dumps(record).encode(), if_absent=True):
            raise LockHeldError(f"{purpose}: another run took the expired lock first")
    try:
        yield record
    finally:
        current = store.get_bytes(key)
        if current and json.loads(current).get("token") == token:
            store.delete(key)
