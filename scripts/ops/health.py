"""Endpoint checks with latency, against the seed's targets (/health < 100 ms, API p95 < 500 ms)."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import httpx

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
