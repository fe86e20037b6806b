"""The container image definition and the Caddyfile: linted and checked for the seeds' rules."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ops.paths import APP_DIR, venv_binary
from ops.sandbox.components import caddy_argv

pytestmark = pytest.mark.unit
DOCKERFILE = APP_DIR / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    out = subprocess.run([venv_binary("hadolint"), str(DOCKERFILE)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_pinned_non_root_and_has_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    for image in re.findall(r"^FROM\s+(\S+)", text, flags=re.M):
        assert ":" in image and not image.endswith(":latest"), f"unpinned base image {image}"
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2, "multi-stage build expected"
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/health", text, flags=re.M)


def test_caddyfile_adapts_and_carries_the_security_and_cache_headers() -> None:
    argv = caddy_argv()
    adapt = [argv[0], "adapt", "--config", str(APP_DIR / "Caddyfile"), "--adapter", "caddyfile"]
    env = {**os.environ, "SITE_ADDRESS": "http://127.0.0.1:8080", "APP_UPSTREAMS": "127.0.0.1:8000 127.0.0.1:8001"}
    out = subprocess.run(adapt, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    config = out.stdout
    for header in ('"X-Frame-Options":["DENY"]', '"X-Content-Type-Options":["nosniff"]',
                   '"Strict-Transport-Security":["max-age=31536000; includeSubDomains"]',
                   '"Cache-Control":["public, max-age=31536000, immutable"]',
                   '"Cache-Control":["no-cache, no-store, must-revalidate"]'):
        assert header in config, header
    # several upstreams in one placeholder become several upstreams
    assert '"dial":"127.0.0.1:8000"' in config and '"dial":"127.0.0.1:8001"' in config
