"""A local image registry: Debian's `docker-registry` (the CNCF distribution server) behind Debian's Caddy.

The registry itself listens on loopback only; Caddy, on every address of this machine's
namespace (a test host reaches it at its veth peer: `address_for(gateway)`), asks for basic
auth as GHCR asks for a token: the `reader` account (what hosts get, read-only) may only GET
and HEAD, the `pusher` account (what CI gets) may also push. Storage lives in the test's folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ops.tcp_ports import free_port
from tests.infra.testhost import terminate
from tests.lab.docker import DockerEngine, EngineError

REGISTRY_BINARY = "/usr/bin/docker-registry"
CADDY_BINARY = "/usr/bin/caddy"
READER, PUSHER = "reader", "pusher"


def _hash(token: str) -> str:
    """A bcrypt hash at the lowest cost: Caddy checks it on every registry request (hundreds per push),
    and `caddy hash-password`'s cost 14 takes seconds each on a busy test machine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # crypt: fine on 3.11, libxcrypt does bcrypt
        import crypt
    return crypt.crypt(token, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # noqa: S324 - throwaway test tokens


@dataclass
class LocalRegistry:
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aetest-registry-")))
    port: int = field(default_factory=free_port)
    inner_port: int = field(default_factory=free_port)
    reader_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    pusher_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def push_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def address_for(self, gateway: str) -> str:
        """The registry as a test host whose route to this machine is `gateway` sees it."""
        return f"{gateway}:{self.port}"

    def start(self) -> LocalRegistry:
        try:
            config = self.folder / "config.yml"
            # JSON is YAML: no YAML writer needed for the registry's config.
            config.write_text(json.dumps({
                "version": 0.1,
                "log": {"level": "warn", "accesslog": {"disabled": True}},
                "storage": {"filesystem": {"rootdirectory": str(self.folder / "data")}, "delete": {"enabled": True}},
                "http": {"addr": f"127.0.0.1:{self.inner_port}"},
            }))
            self._start("registry", [REGISTRY_BINARY, "serve", str(config)], {})
            caddyfile = self.folder / "Caddyfile"
            reader, pusher = _hash(self.reader_token), _hash(self.pusher_token)
            caddyfile.write_text(
                "{\n\tadmin off\n\tauto_https off\n}\n\n"
                f":{self.port} {{\n"
                "\t@read method GET HEAD\n"
                "\thandle @read {\n"
                f"\t\tbasicauth {{\n\t\t\t{READER} {reader}\n\t\t\t{PUSHER} {pusher}\n\t\t}}\n"
                f"\t\treverse_proxy 127.0.0.1:{self.inner_port}\n"
                "\t}\n"
                "\thandle {\n"
                f"\t\tbasicauth {{\n\t\t\t{PUSHER} {pusher}\n\t\t}}\n"
                f"\t\treverse_proxy 127.0.0.1:{self.inner_port}\n"
                "\t}\n"
                "}\n")
            home = str(self.folder / "caddy")
            self._start("caddy", [CADDY_BINARY, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                        {"HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home})
            self._wait_answering()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True,
                                                env={"PATH": os.environ.get("PATH", ""), **env})
        log.close()

    def _wait_answering(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise EngineError(f"{name} exited: {(self.folder / f'{name}.log').read_text()[-1500:]}")
            try:
                if httpx.get(f"http://{self.push_address}/v2/", auth=(READER, self.reader_token),
                             timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise EngineError("timed out waiting for docker-registry behind Caddy")

    def stop(self) -> None:
        for process in self.processes.values():
            terminate(process)
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)

    def push(self, engine: DockerEngine, local_ref: str, repository: str, tag: str) -> str:
        """Tag `local_ref` into this registry, push it as `pusher`, and return the manifest digest (sha256:...)."""
        remote = f"{self.push_address}/{repository}:{tag}"
        engine.docker("login", self.push_address, "--username", PUSHER, "--password-stdin", stdin=self.pusher_token)
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
                              auth=(READER, self.reader_token),
                              headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        response.raise_for_status()
        return response.headers["Docker-Content-Digest"]
