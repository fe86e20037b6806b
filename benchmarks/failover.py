"""The failover drill's recovery time and data-loss window, beside the seed's targets: the
sandbox's path and the cloud path (the lab), side by side.

    .venv/bin/python benchmarks/failover.py            # sandbox, then the lab (needs root, Docker)
    .venv/bin/python benchmarks/failover.py --sandbox  # the sandbox only

Sandbox, in its own sandbox (`.sandbox-bench-failover/`): seed data, take and verify a backup,
start a bounded request loop through Caddy, kill -9 the primary app, run
`ops failover --db latest-backup`. Cloud path: the same sandbox's data services behind two lab
hosts (tests/drills/lab.py: SSH, Docker, Caddy, Cloudflare and Neon faked at the HTTP level),
a request loop through the fake edge, the primary host stopped, `ops failover --env production
--db neon-pitr@T`. Prints; never fails on time.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ops.paths import REPO_ROOT
from ops.sandbox import manager
from ops.sandbox.state import load_state
from tests.drills.loadloop import LoadLoop, kill_primary
from tests.seed import clear, seed

TARGETS = {"database restore": 3600, "full recovery": 4 * 3600, "data loss (RPO)": 24 * 3600}


def cloud_drill(root: Path) -> dict[str, Any]:
    """The lab's failover: recovery time, data-loss window and failed requests on the cloud path."""
    from datetime import UTC, datetime

    from tests.drills.lab import running_lab
    from tests.drills.test_lab import stop_primary_host
    from tests.lab.docker import DockerEngine
    from tests.lab.images import APP_REPOSITORY, build_app_image
    from tests.lab.registry import LocalRegistry

    engine = DockerEngine().start()
    registry = LocalRegistry().start()
    try:
        registry.push(engine, build_app_image(engine).reference, APP_REPOSITORY, "bench-v1")
        with tempfile.TemporaryDirectory(prefix="bench-lab-") as folder, \
                running_lab(root, registry, Path(folder), "production") as lab:
            run = functools.partial(subprocess.run, capture_output=True, text=True, env=lab.env, check=True)
            run([sys.executable, "-m", "ops", "deploy", "--env", "production", "--version", "bench-v1"])
            moment = datetime.now(UTC)
            lab.neon.snapshot("main", moment)
            with LoadLoop(f"{lab.edge_url}/ready") as loop:
                time.sleep(1)
                stopped = stop_primary_host(lab)
                out = run([sys.executable, "-m", "ops", "failover", "--env", "production", "--db",
                           f"neon-pitr@{moment.isoformat()}", "--yes",
                           "--watch-seconds", "5", "--json"])
                done = time.monotonic()
                time.sleep(1)
            report: dict[str, Any] = json.loads(out.stdout)
            report["_loop"] = (loop.sent, len(loop.failures), done - stopped)
            return report
    finally:
        registry.stop()
        engine.stop()


def main() -> None:
    root = REPO_ROOT / ".sandbox-bench-failover"
    env = {**os.environ, "OPS_SANDBOX_DIR": str(root)}
    manager.up(root)
    cloud: dict[str, Any] | None = None
    try:
        state = load_state(root)
        if state.caddy.active_app != "primary":
            subprocess.run([sys.executable, "-m", "ops", "failback"], env=env, check=True, capture_output=True)
        url = state.database_url("main", admin=True)
        clear(url)
        seed(url, tenants=50, employees_per_run=200, tag="bench")
        for args in (["backup", "create"], ["backup", "verify", "--latest"]):
            subprocess.run([sys.executable, "-m", "ops", *args], env=env, check=True, capture_output=True)
        with LoadLoop(state.public_url() + "/ready") as loop:
            time.sleep(1)
            killed = kill_primary(root)
            out = subprocess.run([sys.executable, "-m", "ops", "failover", "--db", "latest-backup", "--yes",
                                 "--watch-seconds", "5", "--json"], env=env,
                                 capture_output=True, text=True, check=True)
            done = time.monotonic()
            time.sleep(1)
        report = json.loads(out.stdout)
        subprocess.run([sys.executable, "-m", "ops", "failback"], env=env, check=True, capture_output=True)
        if "--sandbox" not in sys.argv:
            cloud = cloud_drill(root)
    finally:
        manager.down(root)
    failed = loop.failures
    outage = (max(failed) - min(failed)) if failed else 0.0
    print(f"drill: {loop.sent} requests through Caddy, {len(failed)} failed over {outage:.2f} s")
    print(f"  kill -> failover command done        {done - killed:8.2f} s")
    print(f"  failover start -> endpoints healthy  {report['recovery_seconds']:8.2f} s   "
          f"(target: full recovery < {TARGETS['full recovery']} s, restore < {TARGETS['database restore']} s)")
    print(f"  data-loss window                     {report['data_loss_window_seconds']:8.1f} s   "
          f"(target RPO < {TARGETS['data loss (RPO)']} s; here the backup was minutes old, nightly in production)")
    print(f"  writes after the restored point      {report['writes_after_point']}")
    restore_s = report["timings_s"]["restore-database"]
    print(f"  of which the database restore        {restore_s:8.2f} s   (target < {TARGETS['database restore']} s)")
    print(f"  ratios: recovery/target {report['recovery_seconds'] / TARGETS['full recovery']:.6f}, "
          f"restore/target {restore_s / TARGETS['database restore']:.6f}")

    if cloud is not None:
        sent, failed_cloud, window = cloud["_loop"]
        print("side by side             sandbox (Caddy, latest-backup)   cloud path (DNS, neon-pitr, SSH+Docker)")
        print(f"  recovery seconds       {report['recovery_seconds']:10.2f}                       "
              f"{cloud['recovery_seconds']:10.2f}")
        print(f"  data-loss window s     {report['data_loss_window_seconds']:10.1f}                       "
              f"{cloud['data_loss_window_seconds']:10.1f}")
        print(f"  failed requests        {len(failed):6d} of {loop.sent:<6d}                  "
              f"{failed_cloud:6d} of {sent}")
        print(f"  stop -> command done   {done - killed:10.2f}                       {window:10.2f}")
        print(f"  ratio cloud/sandbox recovery {cloud['recovery_seconds'] / max(report['recovery_seconds'], 0.01):.2f}")


if __name__ == "__main__":
    main()

