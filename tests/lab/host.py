"""A lab host: the local test host (tests/infra/testhost.py) with its own Docker engine.

What a staging/production VM runs, in a network namespace: sshd with the role's hardening,
the role's nftables ruleset, a `dockerd` of its own (bridge, iptables and docker-proxy inside
the namespace, `--insecure-registry` for the test registry), Debian's Caddy 2.6.2 (the package
the role installs) in front of the app container published on 127.0.0.1:8000, started as Debian's
unit with the role's drop-in starts it (tests/lab/caddy_unit.py). The app runs only when a test pulls
an image into it (`run_app`).

Over SSH the deploy user's `docker` talks to this host's engine: sshd sets DOCKER_HOST (and the
API version Debian's engine speaks) for every session, the way /var/run/docker.sock is simply
there on a VM.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ops.registry import login_argv
from stacks.host_role import DEPLOY_USER, caddy_drop_in
from tests.infra.testhost import (
    APP_PORT,
    CADDYFILE,
    SITE_NAME,
    LocalTestHost,
    placeholder_app_env,
)
from tests.lab.docker import DockerEngine
from tests.lab.registry import READER, LocalRegistry

DEBIAN_CADDY = "/usr/bin/caddy"
APP_CONTAINER = "autoenroll-app"
DOCKER_API_VERSION = "1.41"  # Debian 12's engine; newer CLIs on PATH negotiate down to it only if told


@dataclass
class LabHost(LocalTestHost):
    registry: LocalRegistry | None = None
    engine: DockerEngine | None = None
    caddy_binary: str = DEBIAN_CADDY
    app_image: str | None = field(default=None)
    login: bool = True  # False: the host starts with no registry login, as a server does (a deploy logs it in)
    # The role's `tls` snippet (CADDY_TLS) rendered for this host's folders: Caddy then serves the
    # certificate a deploy writes there, as on a server, instead of one from Caddy's internal CA.
    origin_snippet: Path | None = None
    # Behind a load balancer: the health check's site (stacks/host_role.py lb_health_site) for this
    # host, imported as CADDY_LB_HEALTH as the role's drop-in does on a server with a private network.
    lb_health: Path | None = None

    @property
    def origin_dir(self) -> Path:
        """The stand-in for /etc/caddy/origin (the deploy script's ORIGIN_TLS_DIR on this host)."""
        return self.folder / "caddy-origin"

    @property
    def role_root(self) -> Path:
        """The stand-in for /etc/autoenroll (the deploy script's AUTOENROLL_ROOT on this host; the
        folder tests/infra/role_files.py makes)."""
        return self.folder / "etc-autoenroll"

    @property
    def vector_env_file(self) -> Path:
        """The stand-in for /etc/vector/vector.env (the deploy script's VECTOR_ENV_FILE on this host)."""
        return self.folder / "etc-vector" / "vector.env"

    @property
    def systemctl_log(self) -> Path:
        """What the root verbs asked of systemd on this host, one call a line (see `install_systemctl`)."""
        return self.folder / "systemctl.log"

    def install_systemctl(self) -> Path:
        """A stand-in for systemctl (the deploy script's SYSTEMCTL on this host) that records each call:
        the lab's hosts share this machine's init, which has no vector.service and must not get one.
        Returns its path; the Vector env file's folder is made the deploy user's (root's on a server)."""
        user = pwd.getpwnam(DEPLOY_USER)
        self.vector_env_file.parent.mkdir(exist_ok=True)
        os.chown(self.vector_env_file.parent, user.pw_uid, user.pw_gid)
        self.systemctl_log.touch()
        os.chown(self.systemctl_log, user.pw_uid, user.pw_gid)
        standin = self.folder / "systemctl"
        standin.write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(self.systemctl_log))}\n')
        standin.chmod(0o755)
        return standin

    @property
    def deploy_log(self) -> Path:
        """What the deploy script sent to the journal on this host (see `install_journal`)."""
        return self.folder / "deploy-journal.log"

    def install_journal(self) -> tuple[Path, Path]:
        """Stand-ins for logger and journalctl (the deploy script's LOGGER and JOURNALCTL on this host):
        the lab's hosts have no journald of their own. The logger appends to `deploy_log`; journalctl
        reads Caddy's log file (--unit) or that one (--identifier), with --lines and --follow as
        journalctl's (--since is not applied). Returns (logger, journalctl)."""
        user = pwd.getpwnam(DEPLOY_USER)
        self.deploy_log.touch()
        os.chown(self.deploy_log, user.pw_uid, user.pw_gid)
        logger = self.folder / "logger"
        logger.write_text('#!/bin/sh\n# logger -t TAG -- MESSAGE\nshift 3\n'
                          f'echo "$(date -Is) autoenroll-deploy: $*" >> {shlex.quote(str(self.deploy_log))}\n')
        journalctl = self.folder / "journalctl"
        journalctl.write_text(
            '#!/bin/sh\nfile=""; lines=10; follow=""\n'
            'while [ $# -gt 0 ]; do\n  case "$1" in\n'
            f'    --unit) file={shlex.quote(str(self.folder / "caddy.log"))}; shift ;;\n'
            f'    --identifier) file={shlex.quote(str(self.deploy_log))}; shift ;;\n'
            '    --lines) lines="$2"; shift ;;\n    --since|--output) shift ;;\n    --follow) follow=-F ;;\n'
            '  esac\n  shift\ndone\nexec tail -n "$lines" $follow "$file"\n')
        for standin in (logger, journalctl):
            standin.chmod(0o755)
        (self.folder / "caddy.log").touch()
        (self.folder / "caddy.log").chmod(0o644)
        return logger, journalctl

    def systemctl_calls(self) -> list[str]:
        return self.systemctl_log.read_text().splitlines() if self.systemctl_log.exists() else []

    @property
    def docker_config(self) -> Path:
        """The deploy user's docker CLI config (credentials of `docker login`) on this host."""
        return self.folder / "docker-config"

    @property
    def registry_address(self) -> str:
        """The registry as this host reaches it (its route to this machine is the veth peer)."""
        if self.registry is None:
            raise RuntimeError("this lab host was started without a registry")
        return self.registry.address_for(self.runner_address)

    def start_steps(self) -> list[Callable[[], None]]:
        # The firewall before dockerd, as nftables.service is ordered before docker.service; no app
        # process (the app runs as a container when a test or a deploy starts one).
        login = [self.login_to_registry] if self.login else []
        return [self._ensure_deploy_user, self._create_network, self._write_keys, self.load_firewall,
                self.start_docker, self.start_sshd, *login, self.start_caddy]

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        super().stop()

    def start_docker(self) -> None:
        insecure = (self.registry_address,) if self.registry is not None else ()
        self.engine = DockerEngine(netns=self.namespace, insecure_registries=insecure).start()
        # The role puts the deploy user in the docker group, the socket's group (dockerd's default).
        # (Also when another test host created the user: idempotent.)
        subprocess.run(["usermod", "--append", "--groups", "docker", DEPLOY_USER], capture_output=True, check=True)
        self.engine.folder.chmod(0o755)  # the way to the socket; the socket itself is 0660 root:docker

    def login_to_registry(self) -> None:
        """Log in with the read-only token, as root and as the deploy user over SSH (what a deploy does),
        the token on stdin only (ops.registry.login_argv)."""
        if self.registry is None or self.engine is None:
            return
        argv = login_argv(self.registry_address, READER)
        self.engine.docker(*argv[1:], stdin=self.registry.reader_token)
        # The deploy user's CLI config is this host's own (sshd sets DOCKER_CONFIG): the user, and
        # its home, may be shared with another test host on this machine.
        self.docker_config.mkdir(exist_ok=True)
        shutil.chown(self.docker_config, DEPLOY_USER, DEPLOY_USER)
        result = self.ssh(argv, stdin=self.registry.reader_token)
        if result.returncode != 0:
            raise RuntimeError(f"lab host: docker login over SSH failed: {result.stderr.strip()[-500:]}")

    def start_caddy(self, caddyfile: Path = CADDYFILE, site_address: str = f"https://{SITE_NAME}") -> None:
        """With an origin snippet: (re)started as systemd would start Debian's caddy.service with the
        role's drop-in (rendered for this host's folders): the unit's own command line, which loads the
        Caddyfile (no --resume: what ops set through the admin API is forgotten), and the drop-in's
        environment, its EnvironmentFile (the live slot `promote` records) read afresh at each start
        (tests/lab/caddy_unit.py); restarted a second after it exits (Restart=always): on a fresh host
        it cannot load its certificate and keeps retrying until a deploy writes it. So this is also
        "Caddy restarted by systemd" (a reboot, a crash, the package's postinst try-restart).
        Otherwise the test host's Caddy (internal CA)."""
        if self.origin_snippet is None:
            super().start_caddy(caddyfile, site_address)
            return
        self.stop_process("caddy")
        drop_in = self.folder / "caddy.service.d-autoenroll.conf"
        drop_in.write_text(caddy_drop_in(site_address, tls_snippet=str(self.origin_snippet),
                                         upstream_file=str(self.role_root / "caddy-upstream.env"),
                                         lb_health=str(self.lb_health) if self.lb_health else ""))
        data = self.folder / "caddy"
        # The caddy user's home on a server (/var/lib/caddy): where Caddy keeps its data and autosave.
        env = {"XDG_DATA_HOME": str(data / "data"), "XDG_CONFIG_HOME": str(data / "config"), "HOME": str(data)}
        loop = ('trap \'kill "$child" 2>/dev/null; exit 0\' TERM INT; '
                'while :; do "$@" & child=$!; wait "$child"; sleep 1; done')
        self._start("caddy", ["sh", "-c", loop, "caddy-unit", sys.executable, "-m", "tests.lab.caddy_unit",
                              str(drop_in), str(caddyfile)], env)
        if (self.origin_dir / "cert.pem").exists():
            self._wait_listening(443)

    def ssh(self, command: list[str], stdin: str = "") -> subprocess.CompletedProcess[str]:
        """A command as the deploy user over SSH (its docker talks to this host's engine)."""
        return subprocess.run(["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", "testhost",
                               shlex.join(command)], input=stdin, capture_output=True, text=True, timeout=300,
                              check=False)

    def start_sshd(self, overrides: str = "") -> None:
        session_env = ""
        if self.engine is not None:
            session_env = (f"SetEnv DOCKER_HOST={self.engine.host} DOCKER_API_VERSION={DOCKER_API_VERSION} "
                           f"DOCKER_CONFIG={self.docker_config}\n")
        super().start_sshd(session_env + overrides)

    def docker(self, *args: str, check: bool = True, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        """A docker command as root on this host."""
        if self.engine is None:
            raise RuntimeError("the lab host's engine is not running")
        return self.engine.docker(*args, check=check, timeout=timeout)

    def pull(self, reference: str) -> str:
        """Pull `reference` (name@sha256:... or name:tag) into this host's engine; returns its image id."""
        self.docker("pull", "--quiet", reference)
        return str(self.docker("image", "inspect", "--format", "{{.Id}}", reference).stdout.strip())

    def run_app(self, reference: str, env: dict[str, str] | None = None, health_interval: str = "1s") -> None:
        """Pull and (re)start the app container as the role's unit does: env file, 127.0.0.1 publish.

        The image's HEALTHCHECK command runs as built; only its 30 s interval is shortened (pass
        health_interval="30s" for the image's own timing), so a test's wait is seconds.
        """
        self.pull(reference)
        env_file = self.folder / "app.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in {**placeholder_app_env(), **(env or {})}.items()))
        env_file.chmod(0o600)
        self.docker("rm", "--force", APP_CONTAINER, check=False)
        # HOST=0.0.0.0 inside the container (the image's default): the publish is what keeps it on loopback.
        self.docker("run", "--detach", "--name", APP_CONTAINER, "--env-file", str(env_file), "--env", "HOST=0.0.0.0",
                    "--publish", f"127.0.0.1:{APP_PORT}:{APP_PORT}", f"--health-interval={health_interval}",
                    # The label the role's deploy script gives the container it serves: the host
                    # checks (tests/infra/checks.py) look for the app by it.
                    "--restart", "unless-stopped", "--label", "autoenroll.app=1", reference)
        self.app_image = reference
        self._wait_listening(APP_PORT)

    def wait_app_healthy(self, timeout: float = 60.0) -> str:
        if self.engine is None:
            raise RuntimeError("the lab host's engine is not running")
        return self.engine.wait_healthy(APP_CONTAINER, timeout=timeout)

    def app_image_digest(self) -> str:
        """The repo digest of the image the running container was started from (what a deploy records)."""
        image_id = self.docker("container", "inspect", "--format", "{{.Image}}", APP_CONTAINER).stdout.strip()
        digests = self.docker("image", "inspect", "--format", "{{join .RepoDigests \" \"}}", image_id).stdout.split()
        return digests[0].partition("@")[2] if digests else ""


@contextlib.contextmanager
def running_lab_host(registry: LocalRegistry | None, folder: Path | None = None,
                     login: bool = True) -> Iterator[LabHost]:
    """A started lab host for the block, torn down afterwards (engine, containers, namespace) whatever happens."""
    host = (LabHost(registry=registry, login=login) if folder is None
            else LabHost(registry=registry, folder=folder, login=login))
    host.start()
    try:
        yield host
    finally:
        host.stop()
