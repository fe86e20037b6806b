"""The machine under test, real server or local test host, behind one interface.

Most checks run commands on the host over SSH as the deploy user (testinfra). Two answers
need root: the effective sshd settings (`sshd -T`) and the firewall (`nft -j list ruleset`).
On a server the host role's sudoers allows exactly those two commands without a password;
on the local test host the runner, already root, runs them inside the host's namespace.
A few checks are made from the runner's side, as an attacker would see the host: what sshd
offers, whether root gets in, which ports answer.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

import testinfra
from testinfra.host import Host

from stacks.host_role import DEPLOY_USER
from tests.infra.testhost import SITE_NAME, LocalTestHost

SSHD_DUMP = ["/usr/sbin/sshd", "-T"]
NFT_DUMP = ["/usr/sbin/nft", "-j", "list", "ruleset"]


@dataclass(frozen=True)
class Root:
    """A command's outcome when run as root on the host."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Target:
    host: Host
    local: bool  # the local test host (skips what only a VM can answer)
    site_address: str  # the name Caddy serves, e.g. app.autoenroll.ie
    ca_file: str | None  # a CA file on the host for the site's certificate; None = the system's trust
    ssh_base: tuple[str, ...]  # `ssh` plus options and destination, as this runner reaches the host
    public_address: str  # the host's address as the runner dials it
    run_as_root: Callable[[list[str]], Root]
    sshd_dump: tuple[str, ...] = tuple(SSHD_DUMP)

    def ssh_from_runner(self, *options: str, user: str = DEPLOY_USER) -> subprocess.CompletedProcess[str]:
        """One `ssh ... true` from this runner, as `user`, with extra options (BatchMode: never prompts)."""
        argv = [self.ssh_base[0], "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *options,
                "-l", user, *self.ssh_base[1:], "true"]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    def curl(self, *args: str) -> str:
        """curl on the host, to Caddy on this host's loopback, under the site's name (as Cloudflare asks)."""
        ca = ["--cacert", self.ca_file] if self.ca_file else []
        resolve = ["--resolve", f"{self.site_address}:443:127.0.0.1", "--resolve", f"{self.site_address}:80:127.0.0.1"]
        command = shlex.join(["curl", "-sS", "--max-time", "10", *ca, *resolve, *args])
        result = self.host.run(command)
        assert result.rc == 0, f"`{command}` on the host failed ({result.rc}): {result.stderr.strip()}"
        return str(result.stdout)


def local_target(testhost: LocalTestHost) -> Target:
    host = testinfra.get_host(testhost.host_spec, ssh_config=str(testhost.ssh_config))

    def as_root(argv: list[str]) -> Root:
        done = testhost.run_as_root(argv)
        return Root(done.returncode, done.stdout, done.stderr)

    return Target(
        host=host, local=True, site_address=SITE_NAME, ca_file=str(testhost.ca_file),
        ssh_base=("ssh", "-F", str(testhost.ssh_config), "testhost"), public_address=testhost.address,
        run_as_root=as_root, sshd_dump=(*SSHD_DUMP, "-f", str(testhost.sshd_config)),
    )


def server_target(spec: str, site_address: str, ssh_config: str | None, identity: str | None,
                  ca_file: str | None = None) -> Target:
    """A real server: `ssh://deploy@203.0.113.10` (or an alias from --ssh-config)."""
    host = testinfra.get_host(spec, ssh_config=ssh_config, ssh_identity_file=identity)
    hostspec = host.backend.host
    ssh_base = ["ssh"]
    if ssh_config:
        ssh_base += ["-F", ssh_config]
    if identity:
        ssh_base += ["-i", identity]
    if hostspec.port:
        ssh_base += ["-p", str(hostspec.port)]
    ssh_base.append(hostspec.name)
    resolved = subprocess.run([*ssh_base[:-1], "-G", ssh_base[-1]], capture_output=True, text=True, check=True)
    address = next(line.split()[1] for line in resolved.stdout.splitlines() if line.startswith("hostname "))

    def as_root(argv: list[str]) -> Root:
        result = host.run(shlex.join(["sudo", "-n", *argv]))
        return Root(result.rc, result.stdout, result.stderr)

    return Target(host=host, local=False, site_address=site_address, ca_file=ca_file,
                  ssh_base=tuple(ssh_base), public_address=address, run_as_root=as_root)
