"""A local image registry: Debian's `docker-registry` (the CNCF distribution server) on a test port.

It listens on every address of this machine's namespace, so a test host reaches it at its
veth peer address (`address_for(host_gateway)`), while this machine's engine pushes to
127.0.0.1 (loopback registries need no --insecure-registry). Its storage lives in the test's
folder and goes with it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.lab.docker import DockerEngine, EngineError

REGISTRY_BINARY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class LocalRegistry:
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aetest-registry-")))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def push_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def address_for(self, gateway: str) -> str:
        """The registry as a test host whose route to this machine is `gateway` sees it."""
        return f"{gateway}:{self.port}"

    def start(self) -> LocalRegistry:
        config = self.folder / "config.yml"
        # JSON is YAML: no YAML writer needed for the registry's config.
        config.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}, "delete": {"enabled": True}},
            "http": {"addr": f"0.0.0.0:{self.port}"},
        }))
        log = open(self.folder / "registry.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True, env={"PATH": os.environ.get("PATH", "")})
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"docker-registry exited: {(self.folder / 'registry.log').read_text()[-1500:]}")
            try:
                if httpx.get(f"http://{self.push_address}/v2/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EngineError("timed out waiting for docker-registry")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def push(self, engine: DockerEngine, local_ref: str, repository: str, tag: str) -> str:
        """Tag `local_ref` into this registry, push it, and return the manifest digest (sha256:...)."""
        remote = f"{self.push_address}/{repository}:{tag}"
        engine.docker("tag", local_ref, remote)
        engine.docker("push", remote, timeout=300)
        digests = engine.inspect("image", remote).get("RepoDigests")
        for ref in digests if isinstance(digests, list) else []:
            name, _, digest = str(ref).partition("@")
            if name == f"{self.push_address}/{repository}":
                return digest
        raise EngineError(f"pushed {remote} but the engine recorded no digest for it")

    def manifest_digest(self, repository: str, tag: str) -> str:
        """The digest the registry itself reports for repository:tag (what a pull by tag resolves to)."""
        response = httpx.head(f"http://{self.push_address}/v2/{repository}/manifests/{tag}", timeout=5,
                              headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]
