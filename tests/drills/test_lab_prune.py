"""Hosts do not fill up with images: the deploy script prunes the app's old images after each
successful promote, keeping the last three releases (what two rollbacks in a row, or a failover
without the registry, start), and a rollback after pruning still works.
`pytest tests/drills/test_lab_prune.py` (the lab: tests/drills/lab.py), under the lab lock."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.drills.lab import Lab
from tests.lab.docker import DockerEngine
from tests.lab.fixtures import PushedImage

pytestmark = pytest.mark.drill
KEPT = 3  # the deploy script's default (AUTOENROLL_KEEP_RELEASES)


def ops(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=lab.env, capture_output=True, text=True,
                          timeout=600, check=False)


def app_tags(lab: Lab, role: str) -> set[str]:
    """The app image's tags in the host's own engine."""
    host = lab.hosts[role]
    image = (host.role_root / "image").read_text().split("APP_IMAGE=", 1)[1].strip()
    listed = host.docker("image", "ls", image, "--format", "{{.Tag}}").stdout.split()
    return {tag for tag in listed if tag != "<none>"}


def test_lab_old_images_are_pruned_on_deploy_and_a_rollback_still_works(
        lab: Lab, lab_registry: PushedImage, docker_engine: DockerEngine) -> None:
    """Each host starts as one that promoted lab-v3 then lab-v4 before (its `releases`), with those
    images and a release that never became ready (lab-broken, a different image) still on it; CI
    time is saved by pulling them rather than deploying them. Two deploys and a rollback follow."""
    registry = lab_registry.registry
    built = f"{registry.push_address}/{lab_registry.repository}:{lab_registry.tag}"
    for tag in ("lab-v3", "lab-v4"):  # two more releases (the same image under new tags, as CI pushes)
        registry.push(docker_engine, built, lab_registry.repository, tag)
    for host in lab.hosts.values():
        (host.role_root / "releases").write_text("lab-v3\nlab-v4\n")

    first = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert first.returncode == 0, first.stderr
    for role, host in lab.hosts.items():
        image = (host.role_root / "image").read_text().split("APP_IMAGE=", 1)[1].strip()
        for tag in ("lab-v3", "lab-v4", "lab-broken"):  # as the deploy user, logged in by the deploy
            pulled = host.ssh(["docker", "pull", "-q", f"{image}:{tag}"])
            assert pulled.returncode == 0, (role, pulled.stderr)
        assert {"lab-v1", "lab-v3", "lab-v4", "lab-broken"} <= app_tags(lab, role)

    second = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2", "--json")
    assert second.returncode == 0, second.stderr
    # The last three promotes are kept (lab-v3 fell out of the window), everything else is pruned.
    for role, host in lab.hosts.items():
        assert (host.role_root / "releases").read_text().split() == ["lab-v4", "lab-v1", "lab-v2"], role
        assert app_tags(lab, role) == {"lab-v4", "lab-v1", "lab-v2"}, role

    rolled = ops(lab, "rollback", "--env", "staging", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["version"] == "lab-v1"
    for role, host in lab.hosts.items():
        current = host.ssh([str(host.folder / "autoenroll-deploy"), "current"])
        assert current.stdout.split()[0] == "lab-v1", (role, current.stdout, current.stderr)
        tags = app_tags(lab, role)
        assert len(tags) <= KEPT and "lab-v1" in tags, (role, tags)
