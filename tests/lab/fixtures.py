"""Session fixtures for tests that need containers: an engine, the app image, a registry, a lab host.

tests/conftest.py imports them, so any test can ask for them:
- `docker_engine`: a hand-started engine on this machine (no bridge: containers use the host network);
- `app_image`: app/Dockerfile built in that engine (offline base images; cached stand-ins);
- `lab_registry`: a local registry holding the app image, with its tag and manifest digest;
- `lab_host`: a test host with sshd, its own Docker engine and Debian's Caddy, allowed to pull from
  `lab_registry` (nothing runs in it until a test calls `run_app`, e.g. with `lab_registry.by_digest(host)`).
They skip (not fail) off root, and fail with the missing package named when a tool is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.lab.docker import DockerEngine
from tests.lab.host import LabHost, running_lab_host
from tests.lab.images import APP_REPOSITORY, BuiltImage, build_app_image, missing_lab_tools
from tests.lab.registry import LocalRegistry
from tests.parts import require_hosts_part

TEST_TAG = "0.0.0-lab"


def require_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("the container lab needs root (dockerd, network namespaces)")
    missing = missing_lab_tools()
    if missing:
        pytest.fail(f"the container lab needs {missing}: run bin/setup (docker.io, mmdebstrap, "
                    "docker-registry, busybox-static, util-linux)")


@dataclass(frozen=True)
class PushedImage:
    registry: LocalRegistry
    repository: str
    tag: str
    digest: str

    def by_digest(self, host: LabHost) -> str:
        return f"{host.registry_address}/{self.repository}@{self.digest}"

    def by_tag(self, host: LabHost) -> str:
        return f"{host.registry_address}/{self.repository}:{self.tag}"


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    require_lab()
    require_hosts_part("a Docker engine")
    engine = DockerEngine().start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def app_image(docker_engine: DockerEngine) -> BuiltImage:
    image = build_app_image(docker_engine)
    print(f"\napp image {image.reference}: {image.size_bytes / 1e6:.0f} MB, user {image.user}")
    return image


@pytest.fixture(scope="session")
def lab_registry(docker_engine: DockerEngine, app_image: BuiltImage) -> Iterator[PushedImage]:
    registry = LocalRegistry().start()
    try:
        digest = registry.push(docker_engine, app_image.reference, APP_REPOSITORY, TEST_TAG)
        yield PushedImage(registry, APP_REPOSITORY, TEST_TAG, digest)
    finally:
        registry.stop()


@pytest.fixture(scope="session")
def lab_host(lab_registry: PushedImage) -> Iterator[LabHost]:
    with running_lab_host(lab_registry.registry) as host:
        yield host
