"""A sandbox of the drills' own (failover and deploys move traffic and databases around), and the
lab built on it: ONE lab per session for every lab test (test_lab.py, test_lab_status_and_plans.py,
test_runbooks_lab.py); each module gets it reset (Lab.reset), so a module may change what it likes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT
from ops.sandbox import manager
from tests.drills.lab import Lab, running_lab
from tests.lab.docker import DockerEngine
from tests.lab.fixtures import PushedImage
from tests.lab.images import APP_REPOSITORY
from tests.parts import sandbox_suffix

DRILL_SANDBOX = REPO_ROOT / f".sandbox-test-drill{sandbox_suffix()}"


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


@pytest.fixture(scope="session")
def lab_session(drill_root: Path, lab_registry: PushedImage, docker_engine: DockerEngine,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The lab, built once: two hosts, the registry with the release tags lab-v1, lab-v2 (the same
    image, as CI pushes) and lab-broken (a release that cannot start), the providers' fakes."""
    registry = lab_registry.registry
    built = f"{registry.push_address}/{APP_REPOSITORY}:{lab_registry.tag}"
    for tag in ("lab-v1", "lab-v2"):
        registry.push(docker_engine, built, APP_REPOSITORY, tag)
    context = tmp_path_factory.mktemp("broken-image")
    # A release that cannot start: the image's command exits at once (a bad build, a missing module).
    (context / "Dockerfile").write_text(f"FROM {built}\n"
                                        'CMD ["sh", "-c", "echo broken release >&2; exit 3"]\n')
    docker_engine.docker("build", "--tag", "autoenroll-broken:lab", str(context), timeout=300)
    registry.push(docker_engine, "autoenroll-broken:lab", APP_REPOSITORY, "lab-broken")
    with running_lab(drill_root, registry, tmp_path_factory.mktemp("lab"), "staging") as running:
        yield running


@pytest.fixture(scope="module")
def lab(lab_session: Lab) -> Lab:
    """The session's lab as `running_lab` left it (hosts up, DNS at the primary, nothing recorded)."""
    lab_session.reset()
    return lab_session


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The drills' measurements (tests/drills/loadloop.py drill_report), passing or not."""
    from tests.drills.loadloop import REPORTS

    if REPORTS:
        terminalreporter.section("what the drills measured")
        for line in REPORTS:
            terminalreporter.write_line(line)
