"""The ports use-cases depend on (typing.Protocol); adapters in `ops.adapters.local` (the
sandbox's stand-ins) and `ops.adapters.cloud` implement them, and `ops.wiring` picks which.

Use-cases never import boto3, httpx or psycopg directly for these concerns: they receive an
object with this shape, so the same use-case runs against R2 or SeaweedFS, BetterStack or
the sandbox's recorder, Hetzner hosts over SSH or the sandbox's processes. This module
imports no adapter (tests/scripts/test_wiring.py checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class ObjectStore(Protocol):
    """An S3-compatible bucket."""

    bucket: str

    def put_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> bool: ...
    def get_bytes(self, key: str) -> bytes | None: ...
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def size(self, key: str) -> int | None: ...
    def start_multipart(self, key: str) -> str: ...
    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str: ...
    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None: ...
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
    def list_multipart(self, prefix: str) -> list[dict[str, Any]]: ...
    def stream(self, key: str, chunk_size: int = ...) -> Iterator[bytes]: ...


class Heartbeat(Protocol):
    """Where a job reports success (BetterStack heartbeat; the sandbox's recorder)."""

    def ping(self) -> None: ...


class BranchStore(Protocol):
    """Where database branches live: Neon, or databases of the sandbox's PostgreSQL."""

    def url(self, name: str) -> str: ...
    def exists(self, name: str) -> bool: ...
    # With masking_key, a store that can mask in the copy stream does so and marks the copy masked;
    # the refresh's mask step then finds the marker (otherwise it masks the copy in place).
    def copy(self, source: str, name: str, *, masking_key: str | None = None) -> None: ...
    def replace(self, target: str, scratch: str, preserve_as: str) -> None: ...
    def drop(self, name: str) -> None: ...
    def preserved(self, target: str) -> list[str]: ...


NOTHING_DEPLOYED = "none"  # the version `Hosts.current` reports for a host no deploy has reached yet


@dataclass(frozen=True)
class Candidate:
    """A new version started beside the old one on a host, not yet serving."""

    role: str
    version: str
    address: str  # host:port the candidate answers on, as that host's Caddy dials it
    handle: Any = None  # the adapter's own reference (a process, a container name)
    digest: str | None = None  # the image digest a container was started from (None: not a container)
    notes: tuple[str, ...] = ()  # what the host said beside starting it (a leftover discarded, a pull skipped)


class Hosts(Protocol):
    """Where app versions run, and each host's own traffic (its Caddy's upstreams).

    The sandbox: local processes behind one Caddy. Hetzner (and the lab): containers on each
    host, started and switched by the host role's deploy script, reached over SSH.
    """

    def roles(self) -> list[str]: ...  # the serving host last
    def current(self, role: str) -> tuple[str, str]: ...  # (version, address)
    # `digest`: the one the deploy history recorded for this version; with it, an image already on
    # the host is enough when the registry cannot be reached.
    def start_candidate(self, role: str, version: str, digest: str | None = None) -> Candidate: ...
    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None: ...  # None = ready, else why not
    def serving(self, role: str) -> list[str]: ...  # the upstreams this host's traffic goes to now
    def route(self, role: str, dials: list[str]) -> None: ...  # replace them atomically
    def promote(self, candidate: Candidate) -> None: ...  # record it as current, stop the old one gracefully
    def discard(self, candidate: Candidate) -> None: ...  # raises if it could not
    # [(address, "live" | "leftover" | "free", version)]: a leftover is a candidate an interrupted deploy left
    def slots(self, role: str) -> list[tuple[str, str, str]]: ...


class Rotation(Protocol):
    """The load balancer's rotation (Hetzner's, replicas > 1): which hosts it sends traffic to.

    Absent with one host (its own Caddy is the whole serving set). `ops deploy` takes one host out,
    switches it, puts it back and waits for the load balancer to call it healthy before the next."""

    def expected(self) -> list[str]: ...  # hosts that belong in it (the stack's primaries)
    def members(self) -> list[str]: ...  # hosts that are targets now (healthy or not)
    def healthy(self, role: str) -> bool: ...  # a target whose health check passes (it gets traffic)
    def take_out(self, role: str) -> None: ...  # no new connections to it; those open may finish
    def put_back(self, role: str) -> None: ...  # a target again (traffic once its health check passes)


class Upstreams(Protocol):
    """One Caddy's reverse-proxy upstreams (the sandbox's edge; a host's Caddy through a tunnel)."""

    def current_upstreams(self) -> list[str]: ...
    def set_upstreams(self, dials: list[str]) -> None: ...


class TrafficSwitch(Protocol):
    """Which host the public names send traffic to: Cloudflare DNS records, or the sandbox's Caddy."""

    def serving(self) -> str: ...  # the role traffic goes to now
    def records(self) -> dict[str, str]: ...  # every record (or name) it moves -> the role it points at
    # What was changed, for the report; `on_edit` hears of each record edit before and after it.
    def move_to(self, role: str, on_edit: Callable[[dict[str, Any]], None] = ...) -> str: ...


class LiveDatabase(Protocol):
    """Recorded state: which database the app serves from (it changes at a failover).

    Backup, refresh, migrate, failover and the checklist read it rather than assuming the
    environment's branch; it lives in the object store so every runner sees the same answer.
    """

    def get(self) -> dict[str, Any]: ...  # {"database": name, "kind": "branch" | "standby", "since": iso}
    def set(self, database: str, kind: str) -> None: ...


class FailoverSite(Protocol):
    """What the failover and failback steps act through; the wiring builds it per environment."""

    public_url: str
    home_database: str  # the database the app serves from when nothing has failed

    # -> {"database", "kind": "branch" | "standby", "point": iso time restored to, ...}
    def restore_database(self, mode: str, moment: str | None) -> dict[str, Any]: ...
    def set_database(self, role: str, database: str) -> str: ...
    def redeploy(self, role: str) -> str: ...  # the role's hosts, current version, on the live database
    def describe_hosts(self, role: str) -> list[dict[str, str]]: ...  # [{"host", "version", "address"}], read only
    def late_writes(self, point: datetime, database: str) -> dict[str, int] | str: ...
