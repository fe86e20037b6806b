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
    registry = lab_registry.registry
    built = f"{registry.push_address}/{lab_registry.repository}:{lab_registry.tag}"
    for tag in ("lab-v3", "lab-v4"):  # two more releases (the same image under new tags, as CI pushes)
        registry.push(docker_engine, built, lab_registry.repository, tag)

    for version in ("lab-v1", "lab-v2"):
        done = ops(lab, "deploy", "--env", "staging", "--version", version, "--json")
        assert done.returncode == 0, done.stderr
    # A release that never becomes ready leaves its (different) image on the host it reached ...
    broken = ops(lab, "deploy", "--env", "staging", "--version", "lab-broken")
    assert broken.returncode != 0
    reached = [role for role in lab.hosts if "lab-broken" in app_tags(lab, role)]
    assert reached, "the broken release was never pulled: nothing here would test its pruning"
    for version in ("lab-v3", "lab-v4"):
        done = ops(lab, "deploy", "--env", "staging", "--version", version, "--json")
        assert done.returncode == 0, done.stderr

    # ... and the next successful promotes prune it with the releases older than the last three.
    for role in lab.hosts:
        assert app_tags(lab, role) == {"lab-v2", "lab-v3", "lab-v4"}, role
        releases = (lab.hosts[role].role_root / "releases").read_text().split()
        assert releases == ["lab-v2", "lab-v3", "lab-v4"]

    rolled = ops(lab, "rollback", "--env", "staging", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["version"] == "lab-v3"
    for role in lab.hosts:
        current = lab.hosts[role].ssh([str(lab.hosts[role].folder / "autoenroll-deploy"), "current"])
        assert current.stdout.split()[0] == "lab-v3", (role, current.stdout, current.stderr)
        tags = app_tags(lab, role)
        assert len(tags) <= KEPT and "lab-v3" in tags, (role, tags)
