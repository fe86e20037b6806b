"""`Hosts` on Hetzner servers (and the lab's test hosts): containers driven over SSH.

Every step is one verb of the host role's deploy script (stacks/host/autoenroll-deploy),
run as the deploy user: `login` (the registry's read-only token, from stdin), `start` a
version in the free blue/green slot (it answers with the image digest it started), `ready`,
`promote` (record it, stop the old container gracefully), `discard`, `env` (the app's env
file, from stdin), and `caddy` (that host's Caddy admin API on loopback, reached through SSH);
and as root through sudo, `tls` (the origin certificate and key, from stdin) and `vector-env`
(Vector's BetterStack token, from stdin). The algorithm
stays in ops.deploy.usecase, the same as the sandbox's.

Before the first command on a host, `cloud-init status --wait`: Hetzner reports a server running
before cloud-init has installed Docker and Caddy and made the deploy user's folders, so a deploy
right after `pulumi up` would otherwise fail with "docker: not found" or a permission error.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import SecretStr

from ops.environment import AppHost, OriginTls, RegistryLogin
from ops.errors import ConfigError, ExternalError
from ops.output import progress
from ops.ports import NOTHING_DEPLOYED, Candidate
from ops.sandbox.traffic_caddy import CaddyUpstreams
from ops.secrets import scrub_text
from stacks.host_role import DEPLOY_SCRIPT_PATH, DEPLOY_USER, env_file

DEFAULT_SCRIPT = DEPLOY_SCRIPT_PATH
# The root verb goes through sudo, which the role's sudoers allows for exactly `autoenroll-deploy tls`.
DEFAULT_ROOT_SCRIPT = ("sudo", "-n", DEPLOY_SCRIPT_PATH)
# A first boot runs apt's update and upgrade and installs Docker and Caddy: minutes, not seconds.
CLOUD_INIT_TIMEOUT = 900.0
CLOUD_INIT_STATUS = ("cloud-init", "status", "--long")


@dataclass(frozen=True)
class Ssh:
    """How this runner reaches a host: `ssh` with batch options, an optional config file."""

    config_file: str | None = None
    user: str = DEPLOY_USER
    script: tuple[str, ...] = (DEFAULT_SCRIPT,)  # the lab prefixes `env AUTOENROLL_ROOT=... DOCKER_HOST=...`
    root_script: tuple[str, ...] = DEFAULT_ROOT_SCRIPT  # the lab's deploy user has no sudo: its own script
    timeout: float = 120.0

    def argv(self, address: str, verb: Sequence[str], *, root: bool = False) -> list[str]:
        return self.command_argv(address, [*(self.root_script if root else self.script), *verb])

    def command_argv(self, address: str, command: Sequence[str]) -> list[str]:
        """ssh running `command` on the host as the deploy user (not through the deploy script)."""
        config = ["-F", self.config_file] if self.config_file else []
        return ["ssh", *config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-l", self.user, address,
                shlex.join(command)]

    def wait_for_cloud_init(self, name: str, address: str, timeout: float = CLOUD_INIT_TIMEOUT) -> None:
        """Until cloud-init has finished on the host (`cloud-init status --wait`); an error or a
        timeout names the host and cloud-init's status, apart from an SSH failure (the firewall hint).

        Exit codes (cloud-init's docs, "Why did cloud-init status start returning exit code 2?"):
        0 done, 1 error, 2 (23.4 and later) done with recoverable errors, which a deploy can go on from."""
        try:
            # stdin closed: an ssh reading the operator's terminal would swallow what they type next
            # (the production confirmation).
            done = subprocess.run(self.command_argv(address, [*CLOUD_INIT_STATUS, "--wait"]), capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            status, _ = self._cloud_init_status(address)
            raise ExternalError(f"{name} ({address}): cloud-init has not finished after {timeout:g}s "
                                f"(status: {status}); nothing was changed on the hosts",
                                hint="the server is still being set up after `pulumi up`: run the same command "
                                     "again later, or read /var/log/cloud-init-output.log on it") from None
        output = done.stdout.decode(errors="replace")
        if done.returncode in (0, 2):
            return
        if done.returncode == SSH_FAILED or not _status_of(output)[0]:  # ssh itself failed, or no cloud-init answer
            said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise verb_failure(address, "cloud-init status", done.returncode, said[-1] if said else "no output")
        status, detail = _status_of(output)
        raise ExternalError(f"{name} ({address}): cloud-init finished with status {status}"
                            f"{': ' + detail if detail else ''}; nothing was changed on the hosts",
                            hint="the server's set-up failed: read /var/log/cloud-init-output.log on it, fix "
                                 "the cause and replace the server (pulumi up --replace <its urn>)")

    def _cloud_init_status(self, address: str) -> tuple[str, str]:
        try:
            done = subprocess.run(self.command_argv(address, CLOUD_INIT_STATUS), capture_output=True, timeout=30,
                                  stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired:
            return "no answer", ""
        return _status_of(done.stdout.decode(errors="replace"))[0] or "unknown", ""

    def run(self, address: str, verb: Sequence[str], *, stdin: bytes = b"", check: bool = True,
            secrets: Sequence[str] = (), root: bool = False) -> subprocess.CompletedProcess[bytes]:
        try:
            done = subprocess.run(self.argv(address, verb, root=root), input=stdin, capture_output=True,
                                  timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ExternalError(f"ssh {address} {verb[0]}: no answer in {self.timeout:g}s",
                                hint=UNREACHABLE_HINT) from None
        if done.returncode == SSH_FAILED or (check and done.returncode != 0):
            detail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            if root and done.returncode != SSH_FAILED and Path(self.root_script[0]).name == "sudo" and (
                    done.returncode == 127 or any("sudo:" in line for line in detail)):
                # Not the firewall: SSH got in, and the host cannot run the root verb through sudo.
                raise ExternalError(
                    f"ssh {address} {verb[0]}: the root verb could not run through `{shlex.join(self.root_script)}` "
                    f"(exit {done.returncode}: {scrub_text(detail[-1] if detail else 'no output', list(secrets))})",
                    hint="the host role installs sudo and lets the deploy user run exactly `autoenroll-deploy tls` "
                         "and `autoenroll-deploy vector-env` as root (stacks/host_role.py); a host whose image "
                         "lacks sudo, or made before that rule (user data runs at first boot only), needs rebuilding")
            raise verb_failure(address, verb[0], done.returncode,
                               scrub_text(detail[-1] if detail else "no output", list(secrets)))
        return done


def _status_of(output: str) -> tuple[str, str]:
    """(status, detail) from `cloud-init status --long` ("status: error", then "detail:" and its lines);
    `--wait` puts its progress dots before the status line."""
    found = re.search(r"^[.\s]*status:\s*(.+)$", output, re.MULTILINE)
    status = found.group(1).strip() if found else ""
    _, marker, rest = output.partition("\ndetail:")
    detail = "; ".join(line.strip() for line in rest.splitlines() if line.strip()) if marker else ""
    return status, detail[:300]


# ssh's own exit status when it could not connect or authenticate (the remote command never ran);
# any other status is the remote command's.
SSH_FAILED = 255
UNREACHABLE_HINT = ("is the host up, and is this runner allowed through the hosts' firewall? "
                    "(runbooks/deploy-and-rollback.md, \"cannot reach the host over SSH\")")


def verb_failure(address: str, verb: str, returncode: int, detail: str) -> ExternalError:
    """One failed host verb as the error that names its cause. The deploy script prefixes its own
    messages by cause (the engine, the registry), so an engine that is down is not reported as a
    firewall, nor a registry outage as an unreachable host."""
    if returncode == SSH_FAILED:
        return ExternalError(f"cannot reach the host {address} over SSH ({verb}): {detail}", hint=UNREACHABLE_HINT)
    if "Docker engine does not answer" in detail or "Cannot connect to the Docker daemon" in detail:
        return ExternalError(f"{address}: the Docker engine is down ({verb}): {detail}",
                             hint="on the host: systemctl status docker (runbooks/deploy-and-rollback.md, "
                                  "\"the Docker engine is down\")")
    if "autoenroll-deploy: registry:" in detail:
        return ExternalError(f"{address}: the image registry is unreachable or refused the pull ({verb}): {detail}",
                             hint="the version keeps serving; check the registry and its read token "
                                  "(runbooks/deploy-and-rollback.md, \"the image registry is unreachable\")")
    return ExternalError(f"{address}: the deploy script's {verb} failed (exit {returncode}): {detail}",
                         hint="the message is the host's deploy script's own (runbooks/deploy-and-rollback.md)")


class SshCaddyTransport(httpx.BaseTransport):
    """httpx transport that sends an admin API request through the host's deploy script, so the
    Caddy adapter (CaddyUpstreams) is the sandbox's, unchanged."""

    def __init__(self, ssh: Ssh, address: str) -> None:
        self.ssh, self.address = ssh, address

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        done = self.ssh.run(self.address, ["caddy", request.method, request.url.path], stdin=request.read())
        body, _, status = done.stdout.decode().rpartition("\n")
        if not status.strip().isdigit():
            raise ExternalError(f"{self.address}: Caddy admin API gave no status ({status[:80]!r})")
        return httpx.Response(int(status), content=body.encode(), request=request)


def host_caddy(ssh: Ssh, address: str) -> CaddyUpstreams:
    return CaddyUpstreams("http://localhost:2019", transport=SshCaddyTransport(ssh, address))


class SshHosts:
    """The environment's app hosts; `order` puts the host DNS sends traffic to last."""

    def __init__(self, hosts: Sequence[AppHost], ssh: Ssh, *, serving_role: Callable[[], str],
                 env_file: Callable[[AppHost], str], secrets: Sequence[str] = (),
                 origin_tls: OriginTls | None = None, registry_login: RegistryLogin | None = None,
                 logs_token: SecretStr | None = None, cloud_init_timeout: float = CLOUD_INIT_TIMEOUT) -> None:
        self._hosts = {h.name: h for h in hosts}
        self._cloud_init_timeout = cloud_init_timeout
        self._set_up: set[str] = set()  # hosts whose cloud-init this command has seen finished
        missing = [h.name for h in hosts if not h.address]
        if missing:
            raise ConfigError(f"stack outputs: servers {missing} have no ipv4 address to deploy to")
        self.ssh = ssh
        self._serving_role = serving_role
        self._env_file = env_file
        self._origin_tls, self._registry_login, self._logs_token = origin_tls, registry_login, logs_token
        self._secrets = list(secrets)
        if origin_tls is not None:
            self._secrets.append(origin_tls.private_key.get_secret_value())
        if registry_login is not None:
            self._secrets.append(registry_login.token.get_secret_value())
        if logs_token is not None:
            self._secrets.append(logs_token.get_secret_value())

    def _address(self, name: str) -> str:
        """The host's address, once its cloud-init has finished: every command on a host comes
        through here, so none reaches a server that is still being set up."""
        address = self._hosts[name].address
        assert address is not None  # checked in __init__
        if name not in self._set_up:
            self.ssh.wait_for_cloud_init(name, address, self._cloud_init_timeout)
            self._set_up.add(name)
        return address

    def roles(self) -> list[str]:
        serving = self._serving_role()
        return sorted(self._hosts, key=lambda n: (self._hosts[n].role == serving, n))

    def host(self, name: str) -> AppHost:
        return self._hosts[name]

    def write_env_files(self, names: Sequence[str] | None = None) -> list[str]:
        """Each host's secrets from the stack's outputs, all on stdin: the app env file (replaced
        atomically, 0600, the deploy user's), Caddy's origin certificate and key (as root; Caddy
        reloaded when they changed, and started on a fresh host), Vector's BetterStack token (as
        root; Vector restarted when it changed), and the registry login the pulls need."""
        chosen = sorted(self._hosts) if names is None else list(names)
        for name in chosen:
            address = self._address(name)
            self.ssh.run(address, ["env"], stdin=self._env_file(self._hosts[name]).encode(), secrets=self._secrets)
            if self._origin_tls is not None:
                self.ssh.run(address, ["tls"], stdin=self._origin_tls.pem().encode(), secrets=self._secrets,
                             root=True)
            if self._logs_token is not None:
                vector = env_file({"BETTERSTACK_LOGS_TOKEN": self._logs_token.get_secret_value()})
                self.ssh.run(address, ["vector-env"], stdin=vector.encode(), secrets=self._secrets, root=True)
            if self._registry_login is not None:
                login = self._registry_login
                try:
                    self.ssh.run(address, ["login", login.username],
                                 stdin=login.token.get_secret_value().encode(), secrets=self._secrets)
                except ExternalError as exc:
                    if "image registry is unreachable" not in exc.message:
                        raise
                    # The pull decides: an image already on the host (by the recorded digest) is enough
                    # for a failover's redeploy; anything else fails there, naming the registry.
                    progress(f"warning: {name}: {exc.message}; going on with the login the host has")
        return chosen

    def current(self, role: str) -> tuple[str, str]:
        out = self.ssh.run(self._address(role), ["current"]).stdout.decode().split()
        return (out[0], out[1]) if len(out) == 2 else (NOTHING_DEPLOYED, "-")

    def start_candidate(self, role: str, version: str, digest: str | None = None) -> Candidate:
        # "ADDRESS DIGEST": the digest of the image the container was started from, as the registry names it.
        done = self.ssh.run(self._address(role), ["start", version, *([digest] if digest else [])])
        address, _, started = done.stdout.decode().strip().partition(" ")
        said = [line.removeprefix("autoenroll-deploy: ") for line in done.stderr.decode(errors="replace").splitlines()
                if line.startswith("autoenroll-deploy: ")]
        return Candidate(role, version, address, digest=started.strip() or None, notes=tuple(said))

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        # An SSH failure raises (not "did not become ready"); exit 1 is the verb's own answer.
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
        # Checked: a candidate that could not be discarded is reported, never called a rollback.
        self.ssh.run(self._address(candidate.role), ["discard", candidate.address])

    def slots(self, role: str) -> list[tuple[str, str, str]]:
        lines = self.ssh.run(self._address(role), ["slots"]).stdout.decode().splitlines()
        return [(parts[0], parts[1], parts[2]) for parts in (line.split() for line in lines) if len(parts) == 3]



class SshLogs:
    """`ops logs` on the hosts: the deploy script's read-only `logs` verb, over the deploy's SSH path.
    Commands as data: `argv` builds the command, the caller's one runner runs it (once or following)."""

    applies_since = True

    def __init__(self, hosts: Sequence[AppHost], ssh: Ssh) -> None:
        self._hosts = {h.name: h for h in hosts}
        self.ssh = ssh

    def names(self, unit: str) -> list[str]:
        return sorted(self._hosts)

    def argv(self, name: str, unit: str, lines: int, since: int | None, follow: bool) -> list[str]:
        address = self._hosts[name].address
        if not address:
            raise ConfigError(f"stack outputs: server {name} has no ipv4 address")
        return self.ssh.argv(address, ["logs", unit, str(lines), str(since) if since is not None else "-",
                                       "follow" if follow else "once"])

    def failure(self, name: str, returncode: int, detail: str) -> ExternalError:
        return verb_failure(self._hosts[name].address or name, "logs", returncode, detail)
