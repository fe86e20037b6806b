"""Requests per second and p95 for /health and an authenticated API call, beside a bare ASGI
hello-world on the same server settings (the ceiling), in one run. Needs `ops sandbox up` and wrk.

    .venv/bin/python benchmarks/app/run.py [--seconds 10] [--connections 64]

Prints; never passes or fails on time. Seed targets: 1,000 req/s per instance, /health < 100 ms,
API p95 < 500 ms. Issue goal: >= 2,000 req/s on /health and within 80% of the ceiling.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ops.paths import APP_DIR, sandbox_dir
from ops.processes import start_process, stop_process
from ops.sandbox import components as c
from ops.sandbox import manager
from ops.sandbox.state import load_state
from ops.tcp_ports import free_port

HERE = Path(__file__).parent


def wait(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} never answered")


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / "p95.lua")]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"RESULT rps=([\d.]+) p50=([\d.]+) p95=([\d.]+) p99=([\d.]+) errors=(\d+)", out)
    assert match, out
    return dict(zip(("rps", "p50", "p95", "p99", "errors"), map(float, match.groups()), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    root = sandbox_dir()
    manager.up(root)
    state = load_state(root)
    app_port, hello_port = free_port(), free_port()
    env = {**c.app_env(state, "standby", "bench"), "PORT": str(app_port), "RATE_LIMIT_PER_MINUTE": "100000",
           "LOG_LEVEL": "WARNING"}
    app = start_process(c.app_argv(), log_file=root / "logs" / "bench-app.log", env=env, cwd=APP_DIR)
    hello = start_process([sys.executable, "-m", "uvicorn", "hello:app", "--host", "127.0.0.1", "--port",
                           str(hello_port), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                           "--log-level", "warning"], log_file=root / "logs" / "bench-hello.log",
                          env={**os.environ}, cwd=HERE)
    try:
        wait(f"http://127.0.0.1:{app_port}/ready")
        wait(f"http://127.0.0.1:{hello_port}/")
        with httpx.Client(base_url=f"http://127.0.0.1:{app_port}") as client:
            email = f"bench-{os.getpid()}@example.ie"
            client.post("/api/signup", json={"company": "Bench Ltd", "email": email, "full_name": "Bench",
                                             "password": "benchmark password"})
            login = client.post("/api/auth/login", json={"email": email, "password": "benchmark password"})
            token = login.json()["token"]
        rows = {
            "ceiling: bare ASGI hello-world": wrk(f"http://127.0.0.1:{hello_port}/", args.seconds, args.connections),
            "app: /health": wrk(f"http://127.0.0.1:{app_port}/health", args.seconds, args.connections),
            "app: GET /api/me (token, session, cache)": wrk(f"http://127.0.0.1:{app_port}/api/me", args.seconds,
                                                             args.connections, {"Authorization": f"Bearer {token}"}),
        }
    finally:
        stop_process(app)
        stop_process(hello)
    print(f"wrk -t2 -c{args.connections} -d{args.seconds}s on loopback, {os.cpu_count()} cores (wrk shares them)")
    for label, r in rows.items():
        print(f"  {label:<42} {r['rps']:9.0f} req/s   p50 {r['p50']:6.2f} ms   p95 {r['p95']:6.2f} ms"
              f"   errors {int(r['errors'])}")
    ceiling = rows["ceiling: bare ASGI hello-world"]["rps"]
    health = rows["app: /health"]["rps"]
    api = rows["app: GET /api/me (token, session, cache)"]
    print(f"\n/health: {health / ceiling:.0%} of the ceiling (goal >= 80%), {health:.0f} req/s (goal >= 2,000; "
          f"seed 1,000)")
    print(f"API: {api['rps']:.0f} req/s, p95 {api['p95']:.1f} ms (seed: p95 < 500 ms)")


if __name__ == "__main__":
    main()
