"""A hand-started engine that outlives its test run (the run was killed) is removed by the next run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ops.paths import REPO_ROOT
from tests.lab.docker import DockerEngine, _process_start_time, sweep_stale_engines

# Starts an engine and dies without stopping it, as a killed pytest would.
ORPHAN = ("import os; from tests.lab.docker import DockerEngine; "
          "print(DockerEngine().start().folder, flush=True); os._exit(0)")


def test_an_engine_whose_run_was_killed_is_swept(docker_engine: DockerEngine) -> None:
    out = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, check=True, timeout=120,
                         cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    folder = Path(out.stdout.strip().splitlines()[-1])
    pid = int((folder / "dockerd.pid").read_text())
    assert _process_start_time(pid) is not None, "the orphaned dockerd should still be running"

    removed = sweep_stale_engines()

    assert folder.name in removed
    assert _process_start_time(pid) is None or Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    assert not folder.exists()
    # This session's own engine (its owner is alive) is left alone.
    assert docker_engine.folder.exists()


def test_a_killed_engine_leaves_mounts_that_unmount_under_removes(tmp_path: Path) -> None:
    """The sandbox's own dockerd (components.DOCKER), killed with SIGKILL, leaves its exec-root's
    nsfs mount behind; stopping the component unmounts it with unmount_under."""
    import shutil
    import signal
    import time

    from ops.sandbox.engine import _mounts_under, dockerd_argv, unmount_under

    folder = tmp_path / "docker"
    folder.mkdir()
    proc = subprocess.Popen(dockerd_argv(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _mounts_under(folder) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _mounts_under(folder), "dockerd should have mounted something under its exec-root"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert _mounts_under(folder), "a killed dockerd leaves its mounts (the case being fixed)"

    unmount_under(folder)

    assert _mounts_under(folder) == []
    shutil.rmtree(folder)  # and now the folder can go
