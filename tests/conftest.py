"""Shared fixtures. The sandbox fixture brings the real stack up once per test session.

The test sandbox lives in `.sandbox-test/` (never the developer's `.sandbox/`), so running
the suite does not disturb a sandbox someone is using; `bin/test` runs the suite in two parts side by
side (tests/parts.py), and the hosts part's sandboxes get a suffix of their own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT
from ops.sandbox import manager
from ops.sandbox.state import SandboxState, load_state
from tests.parts import sandbox_suffix, select

TEST_SANDBOX = REPO_ROOT / f".sandbox-test{sandbox_suffix()}"


@contextmanager
def sandbox_dir_env(root: Path) -> Iterator[None]:
    """Point OPS_SANDBOX_DIR (what `ops` resolves --env local from) at `root` for the block."""
    previous = os.environ.get("OPS_SANDBOX_DIR")
    os.environ["OPS_SANDBOX_DIR"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("OPS_SANDBOX_DIR", None)
        else:
            os.environ["OPS_SANDBOX_DIR"] = previous


@pytest.fixture(scope="session")
def sandbox_root() -> Iterator[Path]:
    with sandbox_dir_env(TEST_SANDBOX):
        try:
            manager.up(TEST_SANDBOX)
            yield TEST_SANDBOX
        finally:
            manager.down(TEST_SANDBOX)


@pytest.fixture()
def sandbox(sandbox_root: Path) -> SandboxState:
    """The running test sandbox, healthy at the start of each test (a previous test may break it)."""
    manager.up(sandbox_root)
    return load_state(sandbox_root)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    select(config, items)  # under bin/test's two parts, only this part's tests


def pytest_addoption(parser: pytest.Parser) -> None:
    # tests/infra against a real server: pytest tests/infra --hosts=ssh://deploy@IP --site-address=NAME
    parser.addoption("--site-address", action="store", default=None,
                     help="tests/infra: the site name Caddy serves on the --hosts server(s)")
    parser.addoption("--ca-file", action="store", default=None,
                     help="tests/infra: a CA file on the server for the site's certificate (default: system trust)")


# The container lab's session fixtures (engine, app image, registry, lab host), for any test folder.
from tests.lab.fixtures import app_image, docker_engine, lab_host, lab_registry  # noqa: E402,F401
