"""The failover drill's recovery time and data-loss window, beside the seed's targets.

    .venv/bin/python benchmarks/failover.py

In its own sandbox (`.sandbox-bench-failover/`): seed data, take and verify a backup, write
once more, start a bounded request loop through Caddy, kill -9 the primary app, run
`ops failover --db latest-backup`, and report what the drill measured. Prints; never fails on time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ops.paths import REPO_ROOT
from ops.sandbox import manager
from ops.sandbox.state import load_state
from tests.drills.loadloop import LoadLoop, kill_primary
from tests.seed import clear, seed

TARGETS = {"database restore": 3600, "full recovery": 4 * 3600, "data loss (RPO)": 24 * 3600}


def main() -> None:
    root = REPO_ROOT / ".sandbox-bench-failover"
    env = {**os.environ, "OPS_SANDBOX_DIR": str(root)}
    manager.up(root)
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


if __name__ == "__main__":
    main()
