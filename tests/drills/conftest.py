"""A sandbox of the drills' own: failover and deploys move traffic and databases around."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT
from ops.sandbox import manager

DRILL_SANDBOX = REPO_ROOT / ".sandbox-test-drill"


@pytest.fixture(scope="session")
def drill_root() -> Iterator[Path]:
    manager.up(DRILL_SANDBOX)
    try:
        yield DRILL_SANDBOX
    finally:
        manager.down(DRILL_SANDBOX)


@pytest.fixture()
def drill_env(drill_root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for `ops` subprocesses pointed at the drill sandbox, healthy and serving from the primary."""
    import subprocess
    import sys

    monkeypatch.setenv("OPS_SANDBOX_DIR", str(drill_root))
    env = {**os.environ, "OPS_SANDBOX_DIR": str(drill_root)}
    manager.up(drill_root)
    from ops.sandbox.state import load_state

    if load_state(drill_root).caddy.active_app != "primary":
        subprocess.run([sys.executable, "-m", "ops", "failback", "--env", "local"], env=env, check=True,
                       capture_output=True)
    return env
