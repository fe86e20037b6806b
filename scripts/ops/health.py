"""Endpoint checks with latency, against their targets (/health < 100 ms, API p95 < 500 ms); behind a
load balancer, the scale shape too: every target healthy, every host on one version."""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from ops.ports import NOTHING_DEPLOYED

if TYPE_CHECKING:
    from ops.ports import Hosts, Rotation

TARGETS_MS = {"/health": 100.0, "/ready": 500.0, "/version": 500.0}


@dataclass(frozen=True)
class Check:
    endpoint: str
    ok: bool
    status: int | None
    p50_ms: float | None
    p95_ms: float | None
    target_ms: float
    detail: str


def check_endpoints(base_url: str, *, requests: int = 20, timeout: float = 5.0) -> list[Check]:
    results = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for endpoint, target in TARGETS_MS.items():
            samples: list[float] = []
            status: int | None = None
            detail = ""
            for _ in range(requests if endpoint != "/ready" else max(3, requests // 5)):
                started = time.perf_counter()
                try:
                    response = client.get(endpoint)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    detail, status = exc.__class__.__name__, None
                    break
                samples.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    detail = response.text[:200]
                    break
            p50 = round(statistics.median(samples), 1) if samples else None
            p95 = round(sorted(samples)[max(0, int(len(samples) * 0.95) - 1)], 1) if samples else None
            ok = status == 200 and p95 is not None and p95 < target
            if status == 200 and not ok:
                detail = f"p95 {p95} ms over the {target:g} ms target"
            results.append(Check(endpoint, ok, status, p50, p95, target, detail))
    return results


def judge_rotation(rotation: Rotation) -> tuple[bool, str]:
    """Every host that belongs in the load balancer's rotation is a target and healthy there."""
    expected, members = rotation.expected(), rotation.members()
    missing = [r for r in expected if r not in members]
    unhealthy = [r for r in members if not rotation.healthy(r)]
    healthy = len(members) - len(unhealthy)
    detail = f"{healthy}/{len(expected)} load balancer targets healthy"
    if missing:
        detail += f"; not targets (out of rotation): {', '.join(missing)}"
    if unhealthy:
        detail += f"; unhealthy (their /ready through Caddy fails): {', '.join(unhealthy)}"
    return (bool(expected) and not missing and not unhealthy), detail


def judge_versions(versions: Mapping[str, str]) -> tuple[bool, str]:
    """Every host runs the same version (a rolling deploy stopped half-way leaves two)."""
    by_version: dict[str, list[str]] = {}
    for host, version in sorted(versions.items()):
        by_version.setdefault(version, []).append(host)
    detail = "; ".join(f"{v}: {', '.join(hosts)}" for v, hosts in sorted(by_version.items()))
    ok = len(by_version) == 1 and NOTHING_DEPLOYED not in by_version
    return ok, (f"one version on every host ({detail})" if ok else f"hosts differ: {detail}")


def scale_checks(rotation: Rotation, versions_seen: list[str]) -> list[Check]:
    """`ops health` behind a load balancer: the targets (Hetzner's API) and the versions the public
    URL answered with (/version through the load balancer, round robin over the targets)."""
    targets_ok, targets_detail = judge_rotation(rotation)
    counts = {v: versions_seen.count(v) for v in sorted(set(versions_seen))}
    versions_ok = len(counts) == 1
    versions_detail = ", ".join(f"{v} in {n} of {len(versions_seen)} answers" for v, n in counts.items()) \
        + ("" if versions_ok else ": hosts differ (a rolling deploy stopped half-way?)")
    return [Check("load balancer targets", targets_ok, None, None, None, 0.0, targets_detail),
            Check("versions", versions_ok, None, None, None, 0.0, versions_detail)]


def versions_through(base_url: str, requests: int, timeout: float = 5.0) -> list[str]:
    """What /version answered, `requests` times (a failed answer as what failed). Through a
    round-robin load balancer with N targets, N requests or more reach each of them."""
    seen: list[str] = []
    with httpx.Client(base_url=base_url, timeout=timeout) as client:
        for _ in range(requests):
            try:
                response = client.get("/version")
                seen.append(str(response.json().get("version")) if response.status_code == 200
                            else f"HTTP {response.status_code}")
            except (httpx.HTTPError, ValueError) as exc:
                seen.append(exc.__class__.__name__)
    return seen


def remote_ready(public_url: str) -> str:
    """The running app answers /ready (after a refresh its connection string is unchanged)."""
    from ops.errors import ExternalError

    response = httpx.get(public_url + "/ready", timeout=10)
    if response.status_code != 200:
        raise ExternalError(f"smoke check: {public_url}/ready answered {response.status_code}")
    return f"{public_url}/ready answered 200"


def sandbox_app_ready(owner_url: str, hosts: Hosts) -> str:
    """An app process of the sandbox started on `owner_url`'s database answers /ready, as the
    sandbox's hosts (ops.wiring's) judge a candidate."""
    from urllib.parse import urlsplit

    from ops.errors import ExternalError
    from ops.paths import APP_DIR, sandbox_dir
    from ops.ports import Candidate
    from ops.processes import start_process, stop_process
    from ops.sandbox.components import app_argv, app_env
    from ops.sandbox.state import load_state
    from ops.tcp_ports import free_port

    state = load_state(sandbox_dir())
    port = free_port()
    database = urlsplit(owner_url).path.lstrip("/")
    child_env = {**app_env(state, "standby", "smoke"), "PORT": str(port),
                 "DATABASE_URL": state.database_url(database)}
    proc = start_process(app_argv(), log_file=sandbox_dir() / "logs" / "app-smoke.log", env=child_env, cwd=APP_DIR)
    candidate = Candidate("smoke", "smoke", f"127.0.0.1:{port}", proc)
    try:
        problem = hosts.wait_ready(candidate, 30)
    finally:
        stop_process(proc)
    if problem is not None:
        raise ExternalError(f"smoke check: the app did not become ready on {database}: {problem}")
    return f"app on {database}: /ready 200"
