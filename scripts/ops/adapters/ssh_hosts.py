"""`Hosts` on Hetzner servers (and the lab's test hosts): containers driven over SSH.

Every step is one verb of the host role's deploy script (stacks/host/autoenroll-deploy),
run as the deploy user: `start` a version in the free blue/green slot, `ready`, `promote`
(record it, stop the old container gracefully), `discard`, `env` (the app's env file, from
stdin), and `caddy` (that host's Caddy admin API on loopback, reached through SSH). The
algorithm stays in ops.deploy.usecase, the same as the sandbox's.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from ops.environment import AppHost
from ops.errors import ConfigError, ExternalError
from ops.interfaces import NOTHING_DEPLOYED, Candidate
from ops.sandbox.traffic_caddy import CaddyTrafficSwitch
from ops.secrets import scrub_text
from stacks.host_role import DEPLOY_USER

DEFAULT_SCRIPT = "/usr/local/bin/autoenroll-deploy"


@dataclass(frozen=True)
class Ssh:
    """How this runner reaches a host: `ssh` with batch options, an optional config file."""

    config_file: str | None = None
    user: str = DEPLOY_USER
    script: tuple[str, ...] = (DEFAULT_SCRIPT,)  # the lab prefixes `env AUTOENROLL_ROOT=... DOCKER_HOST=...`
    timeout: float = 120.0

    def argv(self, address: str, verb: Sequence[str]) -> list[str]:
        config = ["-F", self.config_file] if self.config_file else []
        remote = shlex.join([*self.script, *verb])
        return ["ssh", *config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-l", self.user, address, remote]

    def run(self, address: str, verb: Sequence[str], *, stdin: bytes = b"", check: bool = True,
            secrets: Sequence[str] = ()) -> subprocess.CompletedProcess[bytes]:
        try:
            done = subprocess.run(self.argv(address, verb), input=stdin, capture_output=True, timeout=self.timeout,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ExternalError(f"ssh {address} {verb[0]}: no answer in {self.timeout:g}s") from None
        if check and done.returncode != 0:
            detail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise ExternalError(f"ssh {address} {verb[0]} failed (exit {done.returncode}): "
                                f"{scrub_text(detail[-1] if detail else 'no output', list(secrets))}",
                                hint="is this runner allowed through the hosts' firewall? "
                                     "(runbooks/deploy-and-rollback.md)")
        return done


class SshCaddyTransport(httpx.BaseTransport):
    """httpx transport that sends an admin API request through the host's deploy script, so the
    Caddy adapter (CaddyTrafficSwitch) is the sandbox's, unchanged."""

    def __init__(self, ssh: Ssh, address: str) -> None:
        self.ssh, self.address = ssh, address

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        done = self.ssh.run(self.address, ["caddy", request.method, request.url.path], stdin=request.read())
        body, _, status = done.stdout.decode().rpartition("\n")
        if not status.strip().isdigit():
            raise ExternalError(f"{self.address}: Caddy admin API gave no status ({status[:80]!r})")
        return httpx.Response(int(status), content=body.encode(), request=request)


def host_caddy(ssh: Ssh, address: str) -> CaddyTrafficSwitch:
    return CaddyTrafficSwitch("http://localhost:2019", transport=SshCaddyTransport(ssh, address))


class SshHosts:
    """The environment's app hosts; `order` puts the host DNS sends traffic to last."""

    def __init__(self, hosts: Sequence[AppHost], ssh: Ssh, *, serving_role: Callable[[], str],
                 env_file: Callable[[AppHost], str], secrets: Sequence[str] = ()) -> None:
        self._hosts = {h.name: h for h in hosts}
        missing = [h.name for h in hosts if not h.address]
        if missing:
            raise ConfigError(f"stack outputs: servers {missing} have no ipv4 address to deploy to")
        self.ssh = ssh
        self._serving_role = serving_role
        self._env_file = env_file
        self._secrets = list(secrets)

    def _address(self, name: str) -> str:
        address = self._hosts[name].address
        assert address is not None  # checked in __init__
        return address

    def roles(self) -> list[str]:
        serving = self._serving_role()
        return sorted(self._hosts, key=lambda n: (self._hosts[n].role == serving, n))

    def host(self, name: str) -> AppHost:
        return self._hosts[name]

    def write_env_files(self, names: Sequence[str] | None = None) -> list[str]:
        """Each host's app env file, replaced atomically (0600, the deploy user's) from the stack's secrets."""
        chosen = sorted(self._hosts) if names is None else list(names)
        for name in chosen:
            self.ssh.run(self._address(name), ["env"], stdin=self._env_file(self._hosts[name]).encode(),
                         secrets=self._secrets)
        return chosen

    def current(self, role: str) -> tuple[str, str]:
        out = self.ssh.run(self._address(role), ["current"]).stdout.decode().split()
        return (out[0], out[1]) if len(out) == 2 else (NOTHING_DEPLOYED, "-")

    def start_candidate(self, role: str, version: str) -> Candidate:
        address = self.ssh.run(self._address(role), ["start", version]).stdout.decode().strip()
        return Candidate(role, version, address)

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        done = self.ssh.run(self._address(candidate.role), ["ready", candidate.address, str(int(timeout))],
                            check=False)
        if done.returncode == 0:
            return None
        return (done.stdout or done.stderr).decode(errors="replace").strip()[-300:] or f"exit {done.returncode}"

    def serving(self, role: str) -> list[str]:
        with host_caddy(self.ssh, self._address(role)) as caddy:
            return caddy.current_upstreams()

    def route(self, role: str, dials: list[str]) -> None:
        with host_caddy(self.ssh, self._address(role)) as caddy:
            caddy.set_upstreams(dials)

    def promote(self, candidate: Candidate) -> None:
        self.ssh.run(self._address(candidate.role), ["promote", candidate.address])

    def discard(self, candidate: Candidate) -> None:
        self.ssh.run(self._address(candidate.role), ["discard", candidate.address], check=False)

