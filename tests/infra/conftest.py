"""The host role suite runs against `--hosts` (real servers) or, without it, a local test host.

    pytest tests/infra                                      # local test host (needs root)
    pytest tests/infra --hosts=ssh://deploy@203.0.113.10 --site-address=app.autoenroll.ie
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from tests.infra.target import Target, local_target, server_target
from tests.infra.testhost import LocalTestHost, running_test_host

LOCAL = "local-test-host"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        hosts = metafunc.config.getoption("hosts")
        specs = hosts.split(",") if hosts else [LOCAL]
        metafunc.parametrize("target", specs, indirect=True, scope="session")


def require_local_test_host() -> None:
    if os.geteuid() != 0:
        pytest.skip("the local test host needs root (network namespaces, a veth pair, sshd); "
                    "run as root or pass --hosts=ssh://... for a real server")
    missing = [tool for tool in ("sshd", "nft", "ssh") if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")]
    if missing:
        pytest.fail(f"the local test host needs {missing}: run bin/setup (openssh-server, nftables)")


@pytest.fixture(scope="session")
def local_test_host() -> Iterator[LocalTestHost]:
    require_local_test_host()
    with running_test_host() as testhost:
        yield testhost


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    spec: str = request.param
    if spec == LOCAL:
        testhost: LocalTestHost = request.getfixturevalue("local_test_host")
        return local_target(testhost)
    config = request.config
    site = config.getoption("site_address")
    if not site:
        raise pytest.UsageError("tests/infra against --hosts needs --site-address=NAME (the name Caddy serves)")
    return server_target(spec, site, config.getoption("ssh_config"), config.getoption("ssh_identity_file"),
                         ca_file=config.getoption("ca_file"))
