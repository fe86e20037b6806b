"""`ops deploy` and `ops rollback`: rolling, zero-downtime, self-rolling-back.

Per host (the serving host last): start the new version beside the old, wait for /ready,
move traffic to it (Caddy's upstream, swapped atomically by Caddy), drain, then stop the old
gracefully (in-flight requests finish). Without the drain a fresh-clone CI run saw one of
638 requests fail: one routed under the old upstream just as the old process stopped. If the
new version doesn't become ready, it is stopped and the old one keeps serving: nothing
changed, and the command says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from ops.deploy.hosts import Hosts
from ops.errors import ConfigError, ExternalError, NotFoundError
from ops.interfaces import ObjectStore
from ops.locks import object_lock

READY_TIMEOUT = 30.0
DRAIN_SECONDS = 2.0
VERSION_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class TrafficSwitch(Protocol):
    def current_upstreams(self) -> list[str]: ...
    def set_upstreams(self, dials: list[str]) -> None: ...


@dataclass
class DeployReport:
    version: str
    hosts: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def validate_version(version: str) -> None:
    if not version or not set(version) <= VERSION_CHARS or len(version) > 64:
        raise ConfigError(f"--version: {version!r} is not a version (letters, digits, '.', '_', '-')")


def deploy(env_name: str, hosts: Hosts, traffic: TrafficSwitch, locks: ObjectStore, version: str, *,
           history: Callable[[str], None], progress: Callable[[str], None] = lambda _m: None) -> DeployReport:
    validate_version(version)
    t0 = time.monotonic()
    report = DeployReport(version)
    with object_lock(locks, f"_ops/{env_name}/deploy.lock", ttl=timedelta(minutes=30),
                     purpose=f"deploy to {env_name}"):
        serving = set(traffic.current_upstreams())
        for role in hosts.roles():
            old_version, old_address = hosts.current(role)
            progress(f"{role}: starting {version} beside {old_version}")
            candidate = hosts.start_candidate(role, version)
            problem = hosts.wait_ready(candidate, READY_TIMEOUT)
            if problem is not None:
                hosts.discard(candidate)
                raise ExternalError(
                    f"{version} did not become ready on {role}: {problem}; rolled back, {old_version} still serving",
                    hint="see `ops sandbox logs app-" + role + "` (or the host's journal) for why")
            moving = old_address in serving
            if moving:
                # New first, old kept in the list: with lb_policy first all new requests go to the
                # new version, while requests still being routed under Caddy's previous config
                # (a config change is a graceful reload) find their upstream still known.
                traffic.set_upstreams([candidate.address, old_address])
                progress(f"{role}: traffic moved to {version}; draining {old_version}")
                time.sleep(DRAIN_SECONDS)
            hosts.promote(candidate)
            if moving:
                traffic.set_upstreams([candidate.address])
            report.hosts.append({"role": role, "from": old_version, "to": version, "address": candidate.address})
        history(version)
    report.seconds = round(time.monotonic() - t0, 2)
    return report


def previous_version(history: list[str], current: str) -> str:
    """The version deployed before `current` (for `ops rollback`)."""
    earlier = [v for v in history if v != current]
    if not earlier:
        raise NotFoundError("no earlier version to roll back to", hint="ops deploy --version V deploys a given one")
    return earlier[-1]
