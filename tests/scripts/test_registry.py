"""Which registry an image lives in, and the host's login command (token on stdin only)."""

from __future__ import annotations

import pytest

from ops.errors import ConfigError
from ops.registry import login_argv, registry_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("image", "registry"), [
    ("ghcr.io/komplyone/autoenroll-app", "ghcr.io"),
    ("10.213.4.1:5000/autoenroll/app", "10.213.4.1:5000"),
    ("localhost/autoenroll/app", "localhost"),
    ("komplyone/autoenroll-app", "docker.io"),
    ("python", "docker.io"),
])
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


def test_a_bad_image_reference_is_named() -> None:
    with pytest.raises(ConfigError, match=r"app_image: not an image reference: 'ghcr\.io/a b'"):
        registry_of("ghcr.io/a b")


def test_login_reads_the_token_from_stdin() -> None:
    argv = login_argv("ghcr.io", "komplyone-hosts")
    assert argv == ["docker", "login", "ghcr.io", "--username", "komplyone-hosts", "--password-stdin"]
    with pytest.raises(ConfigError, match="registry username"):
        login_argv("ghcr.io", "")
