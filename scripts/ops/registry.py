"""The image registry as the hosts see it: which registry an image lives in, and how a host logs in.

Hosts pull with a read-only token (on GHCR a token with only `read:packages`), delivered with
the app's secrets and handed to `docker login` on stdin, never on a command line.
"""

from __future__ import annotations

from ops.errors import ConfigError

DEFAULT_REGISTRY = "docker.io"


def registry_of(image: str) -> str:
    """The registry host of an image reference, by Docker's rule: the first path part when it has
    a dot, a colon or is `localhost`; Docker Hub otherwise."""
    if not image or any(ch.isspace() for ch in image):
        raise ConfigError(f"app_image: not an image reference: {image!r}")
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DEFAULT_REGISTRY


def login_argv(registry: str, username: str) -> list[str]:
    """`docker login` reading the token from stdin (what a host runs before its first pull)."""
    if not username or any(ch.isspace() for ch in username):
        raise ConfigError(f"registry username: invalid: {username!r}")
    return ["docker", "login", registry, "--username", username, "--password-stdin"]
