"""Endpoint checks with latency, against their targets (/health < 100 ms, API p95 < 500 ms)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from ops.ports import Hosts

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
