"""The cloud path, drilled on the lab (tests/drills/lab.py): `ops deploy --env staging` over SSH
to two hosts with Docker and Caddy, under a bounded request loop; a broken version discarded by
itself; rollback; a concurrent deploy refused with exit 6. `pytest tests/drills -k lab`."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.drills.lab import Lab, running_lab
from tests.drills.loadloop import LoadLoop
from tests.infra.testhost import SITE_NAME
from tests.lab.docker import DockerEngine
from tests.lab.fixtures import PushedImage
from tests.lab.images import APP_REPOSITORY

pytestmark = pytest.mark.drill


def ops(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=lab.env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def lab(drill_root: Path, lab_registry: PushedImage, docker_engine: DockerEngine,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    registry = lab_registry.registry
    built = f"{registry.push_address}/{APP_REPOSITORY}:{lab_registry.tag}"
    for tag in ("lab-v1", "lab-v2"):
        registry.push(docker_engine, built, APP_REPOSITORY, tag)  # the same image under release tags, as CI pushes
    context = tmp_path_factory.mktemp("broken-image")
    # A release that cannot start: the image's command exits at once (a bad build, a missing module).
    (context / "Dockerfile").write_text(f"FROM {built}\n"
                                        'CMD ["sh", "-c", "echo broken release >&2; exit 3"]\n')
    docker_engine.docker("build", "--tag", "autoenroll-broken:lab", str(context), timeout=300)
    registry.push(docker_engine, "autoenroll-broken:lab", APP_REPOSITORY, "lab-broken")
    with running_lab(drill_root, registry, tmp_path_factory.mktemp("lab"), "staging") as running:
        yield running


def version_on(lab: Lab, role: str) -> str:
    host = lab.hosts[role]
    with httpx.Client(verify=str(host.ca_file), timeout=10, headers={"Host": SITE_NAME}) as client:
        response = client.get(f"{lab.site(role)}/version", extensions={"sni_hostname": SITE_NAME})
    return str(response.json()["version"])


def test_lab_deploy_rollback_and_lock_on_the_cloud_path(lab: Lab) -> None:
    first = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert first.returncode == 0, first.stderr
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"

    # The app's secrets are on each host, 0600 and the deploy user's; a rotation would be a deploy.
    for host in lab.hosts.values():
        env_file = host.folder / "etc-autoenroll" / "app.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert "AUTH_SECRET=lab-" in env_file.read_text()

    primary = lab.hosts["primary"]
    with LoadLoop(f"{lab.site('primary')}/health", interval=0.005, verify=str(primary.ca_file), sni=SITE_NAME) as loop:
        second = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2", "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert [h["role"] for h in report["hosts"]] == ["standby-host", "primary-host"]  # the serving host last
    assert loop.sent > 100 and loop.failures == [], (
        f"{len(loop.failures)} of {loop.sent} requests failed ({loop.errors or 'non-200 answers'})")
    assert version_on(lab, "primary") == "lab-v2"
    assert len(lab.containers("primary")) == 1  # the old container is gone, not left running

    with LoadLoop(f"{lab.site('primary')}/health", interval=0.005, verify=str(primary.ca_file), sni=SITE_NAME) as loop:
        broken = ops(lab, "deploy", "--env", "staging", "--version", "lab-broken")
    assert broken.returncode == 7, broken.stderr
    assert "did not become ready" in broken.stderr and "lab-v2 still serving" in broken.stderr
    assert loop.failures == [] and version_on(lab, "standby") == "lab-v2"
    assert len(lab.containers("standby")) == 1  # the broken candidate was discarded

    rolled = ops(lab, "rollback", "--env", "staging", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"
    again = ops(lab, "rollback", "--env", "staging")
    assert again.returncode == 5 and "no good version before lab-v1" in again.stderr  # never back to lab-v2


def test_lab_a_second_deploy_while_one_runs_gets_exit_6(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from ops.adapters.s3_store import S3ObjectStore
    from ops.environment import from_outputs
    from ops.locks import object_lock

    for name in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, lab.env[name])
    env = from_outputs("staging", json.loads(lab.outputs_file.read_text()))
    with object_lock(S3ObjectStore(env.storage, "backups"), "_ops/staging/deploy.lock", ttl=timedelta(minutes=5),
                     purpose="deploy to staging"):
        blocked = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2")
    assert blocked.returncode == 6 and "deploy to staging is locked by" in blocked.stderr
