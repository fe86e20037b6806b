"""A local test host: a network namespace that looks like an app server from the outside.

It has its own address on a veth pair and runs, inside the namespace, what the host role
runs on a VM: sshd with the role's hardening file, the app started with the image's CMD
(on loopback, as Docker publishes it), Caddy with the repository's Caddyfile terminating
TLS, and the role's nftables ruleset. The suite reaches it over SSH exactly as it reaches
a real server. It shares this machine's filesystem, users and init, so checks about
packages and systemd units cannot be answered here and are skipped with that reason.

Only the test-host lines below differ from a VM: a private host key, an authorized_keys
file in this test's folder (with `StrictModes no`, because the folder sits in /tmp, which is
world-writable), an internal CA for Caddy's certificate (a `.localhost` name; the CA is
never installed into the machine's trust store), and a stand-in `cloud-init` first on the deploy
user's PATH (sshd's SetEnv) whose `status` reads a file the test sets (`set_cloud_init`): the
machine has no cloud-init, and a test can then hold a host "still being set up".
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from ops.paths import REPO_ROOT, venv_binary
from ops.sandbox.components import app_argv
from stacks.data import cloudflare_ranges
from stacks.host_role import DEPLOY_USER, SSHD_HARDENING, nftables_conf
from tests.parts import require_hosts_part

NAMESPACE_PREFIX = "aetest"
SITE_NAME = "app.autoenroll.localhost"  # .localhost: Caddy issues it from its internal CA
APP_PORT = 8000
CADDYFILE = REPO_ROOT / "app" / "Caddyfile"


# `cloud-init status [--wait] [--long]` as cloud-init 22.4 (Debian 12) answers it: "status: X", with
# --long a time and "detail:" lines; exit 1 on error, else 0; --wait prints dots until not running.
CLOUD_INIT_STAND_IN = """#!/bin/sh
# Test host stand-in for cloud-init's `status` (tests/infra/testhost.py); reads @STATUS_FILE@.
file=@STATUS_FILE@
echo "$*" >> "$file.calls"
if [ "$1" != status ]; then echo "cloud-init stand-in: only 'status' is modelled" >&2; exit 3; fi
wait=0; long=0
for arg in "$@"; do
  case "$arg" in --wait|-w) wait=1 ;; --long|-l) long=1 ;; esac
done
if [ "$wait" = 1 ]; then
  while [ "$(head -n 1 "$file")" = running ]; do printf .; sleep 0.2; done
  echo
fi
status=$(head -n 1 "$file")
echo "status: $status"
if [ "$long" = 1 ]; then echo "time: $(date -R)"; echo "detail:"; tail -n +2 "$file"; fi
if [ "$status" = error ]; then exit 1; fi
exit 0
"""


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=30)


def placeholder_app_env() -> dict[str, str]:
    """The app's variables on a test host: its database, Redis and S3 are not reachable from inside
    the namespace, so only /health (no I/O) answers; /ready belongs to the sandbox's tests."""
    return {
        "APP_ENV": "local", "APP_ROLE": "primary", "APP_VERSION": "testhost",
        "HOST": "127.0.0.1", "PORT": str(APP_PORT),
        "DATABASE_URL": "postgresql://autoenroll_app@127.0.0.1:5432/main",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "S3_ENDPOINT_URL": "http://127.0.0.1:8333", "S3_ACCESS_KEY_ID": "testhost",
        "S3_SECRET_ACCESS_KEY": "testhost-not-a-secret", "S3_BUCKET_UPLOADS": "uploads",
        "S3_REGION": "us-east-1", "AUTH_SECRET": "testhost-" + "x" * 40,
    }


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a child this test started: SIGTERM, then SIGKILL if it has not gone within 10 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def remove_stale_namespaces() -> None:
    """Delete test namespaces a killed run left behind (ones with no process inside)."""
    listing = _run(["ip", "netns", "list"], check=False).stdout
    for line in listing.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(NAMESPACE_PREFIX) and not _run(["ip", "netns", "pids", name], check=False).stdout.strip():
            _run(["ip", "netns", "delete", name], check=False)


def _free_subnet() -> int:
    used = _run(["ip", "-o", "-4", "addr"]).stdout
    for third in range(10, 250):
        if f" 10.213.{third}." not in used:
            return third
    raise RuntimeError("no free 10.213.x.0/30 subnet for a test host")


@dataclass
class LocalTestHost:
    """Create with `start()`, tear down with `stop()`; every part can be restarted changed."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aetest-host-")))
    namespace: str = field(default_factory=lambda: f"{NAMESPACE_PREFIX}{os.getpid() % 10000}{time.time_ns() % 1000}")
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    created_user: bool = False
    third_octet: int = 0
    # The venv's Caddy by default; a lab host runs Debian's package, which is what the role installs.
    caddy_binary: str = field(default_factory=lambda: venv_binary("caddy", "caddyserver"))

    # ------------------------------------------------------------------ addresses and files
    @property
    def runner_address(self) -> str:
        return f"10.213.{self.third_octet}.1"

    @property
    def address(self) -> str:
        return f"10.213.{self.third_octet}.2"

    @property
    def ssh_config(self) -> Path:
        return self.folder / "ssh_config"

    @property
    def ca_file(self) -> Path:
        return self.folder / "caddy-root-ca.pem"

    @property
    def sshd_config(self) -> Path:
        return self.folder / "sshd_config"

    @property
    def cloud_init_status_file(self) -> Path:
        """What the stand-in `cloud-init status` reports: the status on the first line, then the detail."""
        return self.folder / "cloud-init-status"

    @property
    def host_spec(self) -> str:
        return f"ssh://{DEPLOY_USER}@testhost"

    # ------------------------------------------------------------------ lifecycle
    def start_steps(self) -> list[Callable[[], None]]:
        """The parts `start` brings up, in order (a subclass changes the list, not the frame)."""
        return [self._ensure_deploy_user, self._create_network, self._write_keys, self.start_sshd,
                self.load_firewall, self.start_app, self.start_caddy]

    def start(self) -> Self:
        require_hosts_part("a test host")  # before anything: its start sweeps stale namespaces
        try:
            self.folder.chmod(0o755)  # the deploy user reads authorized_keys and the CA file here
            remove_stale_namespaces()
            for step in self.start_steps():
                step()
        except BaseException:
            self.stop()  # whatever part was reached: nothing left behind
            raise
        return self

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_process(name)
        # sshd's per-connection children (kept alive by the client's ControlPersist) outlive
        # the listening daemon; they would hold the deploy user, and the namespace, open.
        for pid in _run(["ip", "netns", "pids", self.namespace], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _run(["ip", "netns", "delete", self.namespace], check=False)
        if self.created_user:
            for _ in range(20):  # the killed sessions' processes may take a moment to be reaped
                if _run(["userdel", DEPLOY_USER], check=False).returncode in (0, 6):  # 6: no such user
                    break
                time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)

    def inside(self, argv: list[str]) -> list[str]:
        """An argv run inside the host's network namespace (what root on the VM would run)."""
        return ["ip", "netns", "exec", self.namespace, *argv]

    def run_as_root(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return _run(self.inside(argv), check=False)

    # ------------------------------------------------------------------ the parts
    def _ensure_deploy_user(self) -> None:
        try:
            entry = pwd.getpwnam(DEPLOY_USER)
        except KeyError:
            _run(["useradd", "--system", "--shell", "/bin/bash", "--home-dir", str(self.folder),
                  "--no-create-home", DEPLOY_USER])
            # '*' = no password can ever match, but the account is not "locked" (sshd refuses
            # even key logins to locked accounts when PAM is off, as it is here).
            _run(["usermod", "-p", "*", DEPLOY_USER])
            self.created_user = True
            return
        if not Path(entry.pw_dir).is_dir():
            # A killed run's user: its home (that run's folder) is gone, and every SSH command would
            # begin with "Could not chdir to home directory". Take it over; this host removes it.
            _run(["usermod", "--home", str(self.folder), "-p", "*", DEPLOY_USER])
            self.created_user = True

    def _create_network(self) -> None:
        self.third_octet = _free_subnet()
        outside, inside = f"{self.namespace}h", self.inside_interface
        for argv in (
            ["ip", "netns", "add", self.namespace],
            ["ip", "link", "add", outside, "type", "veth", "peer", "name", inside],
            ["ip", "link", "set", inside, "netns", self.namespace],
            ["ip", "addr", "add", f"{self.runner_address}/30", "dev", outside],
            ["ip", "link", "set", outside, "up"],
            self.inside(["ip", "addr", "add", f"{self.address}/30", "dev", inside]),
            self.inside(["ip", "link", "set", inside, "up"]),
            self.inside(["ip", "link", "set", "lo", "up"]),
        ):
            _run(argv)

    def _write_keys(self) -> None:
        for name in ("host_key", "client_key"):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"testhost-{name}",
                  "-f", str(self.folder / name)])
        authorized = self.folder / "authorized_keys"
        authorized.write_text((self.folder / "client_key.pub").read_text())
        authorized.chmod(0o644)
        self.ssh_config.write_text(
            "Host testhost\n"
            f"    HostName {self.address}\n"
            f"    User {DEPLOY_USER}\n"
            f"    IdentityFile {self.folder / 'client_key'}\n"
            "    IdentitiesOnly yes\n"
            "    StrictHostKeyChecking no\n"
            "    UserKnownHostsFile /dev/null\n"
            "    LogLevel ERROR\n"
        )

    def set_cloud_init(self, status: str, detail: str = "") -> None:
        """What `cloud-init status` answers on this host from now on: running, done or error."""
        self.cloud_init_status_file.write_text(f"{status}\n{detail}\n" if detail else f"{status}\n")
        self.cloud_init_status_file.chmod(0o644)
        calls = self.cloud_init_calls_file
        calls.touch()
        shutil.chown(calls, DEPLOY_USER, DEPLOY_USER)  # the stand-in, run as the deploy user, logs each call

    @property
    def cloud_init_calls_file(self) -> Path:
        """Every `cloud-init` command line the stand-in was asked, one a line."""
        return self.folder / "cloud-init-status.calls"

    def _session_setenv(self, overrides: str) -> str:
        """`overrides` with PATH (the cloud-init stand-in first) in its SetEnv line: sshd keeps only
        the first SetEnv line, so PATH joins the caller's line rather than adding one."""
        bin_dir = self.folder / "bin"
        if not (bin_dir / "cloud-init").exists():
            bin_dir.mkdir(exist_ok=True)
            stand_in = bin_dir / "cloud-init"
            stand_in.write_text(CLOUD_INIT_STAND_IN.replace("@STATUS_FILE@", str(self.cloud_init_status_file)))
            stand_in.chmod(0o755)
            self.set_cloud_init("done")
        path = f"PATH={bin_dir}:/usr/local/bin:/usr/bin:/bin"
        lines = overrides.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.startswith("SetEnv "):
                lines[index] = f"{line.rstrip()} {path}\n"
                return "".join(lines)
        return f"SetEnv {path}\n{overrides}"

    def start_sshd(self, overrides: str = "") -> None:
        """sshd with the host role's hardening; `overrides` go first (sshd keeps a keyword's first value)."""
        self.stop_process("sshd")
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.sshd_config.write_text(
            self._session_setenv(overrides)
            + SSHD_HARDENING
            + "# Test host only (see tests/infra/testhost.py)\n"
            f"HostKey {self.folder / 'host_key'}\n"
            f"AuthorizedKeysFile {self.folder / 'authorized_keys'}\n"
            f"PidFile {self.folder / 'sshd.pid'}\n"
            "StrictModes no\n"
        )
        self._start("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.sshd_config)], {})
        self._wait_listening(22)

    @property
    def inside_interface(self) -> str:
        """The host's public interface (its end of the veth pair)."""
        return f"{self.namespace}n"

    def load_ruleset(self, name: str, ruleset: str) -> None:
        """An nftables file loaded inside the host (`nft -f`, as root on the VM would)."""
        conf = self.folder / name
        conf.write_text(ruleset)
        _run(self.inside(["nft", "-f", str(conf)]))

    def load_firewall(self, ruleset: str | None = None) -> None:
        """The role's ruleset, with this runner's address as the admin CIDR (so SSH gets in)."""
        conf = self.folder / "nftables.conf"
        conf.write_text(ruleset if ruleset is not None
                        else nftables_conf((f"{self.runner_address}/32",), cloudflare_ranges()))
        _run(self.inside(["nft", "-f", str(conf)]))

    def start_app(self, bind: str = "127.0.0.1") -> None:
        """The app as the image starts it, published on loopback like `docker run -p 127.0.0.1:...`.

        Its database, Redis and S3 are not reachable from inside the namespace: /health (no
        I/O) is what the host checks ask for; /ready belongs to the sandbox's tests.
        """
        self.stop_process("app")
        env = {**placeholder_app_env(), "HOST": bind}
        self._start("app", app_argv(), env)
        self._wait_listening(APP_PORT)

    def start_caddy(self, caddyfile: Path = CADDYFILE, site_address: str = f"https://{SITE_NAME}") -> None:
        self.stop_process("caddy")
        data = self.folder / "caddy"
        env = {
            "SITE_ADDRESS": site_address,
            "APP_UPSTREAMS": f"127.0.0.1:{APP_PORT}",
            "CADDY_ADMIN": "localhost:2019",
            "CADDY_EXTRA_GLOBAL_OPTIONS": "skip_install_trust",
            "XDG_DATA_HOME": str(data / "data"), "XDG_CONFIG_HOME": str(data / "config"), "HOME": str(data),
        }
        argv = [self.caddy_binary, "run", "--config", str(caddyfile), "--adapter", "caddyfile"]
        self._start("caddy", argv, env)
        self._wait_listening(443)
        root = data / "data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        leaf = data / "data" / "caddy" / "certificates" / "local" / SITE_NAME / f"{SITE_NAME}.crt"
        # Caddy listens before it has issued the certificate: wait for both, or a first TLS check races it.
        self._wait_for(lambda: root.exists() and leaf.exists(), f"Caddy's certificate for {SITE_NAME}")
        shutil.copyfile(root, self.ca_file)
        self.ca_file.chmod(0o644)

    # ------------------------------------------------------------------ process helpers
    def _start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = open(self.folder / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
        self.processes[name] = subprocess.Popen(
            self.inside(argv), stdout=log, stderr=subprocess.STDOUT, env={**base, **env},
            cwd=str(REPO_ROOT), start_new_session=True,
        )
        log.close()

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is not None:
            terminate(process)

    def _listening(self, port: int) -> bool:
        out = self.run_as_root(["ss", "-H", "-tln", f"sport = :{port}"]).stdout
        return bool(out.strip())

    def _wait_listening(self, port: int) -> None:
        self._wait_for(lambda: self._listening(port), f"a listener on port {port} inside {self.namespace}")

    def _wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            crashed = [n for n, p in self.processes.items() if p.poll() is not None]
            if crashed:
                raise RuntimeError(f"test host: {', '.join(crashed)} exited; see {self.folder}/*.log")
            time.sleep(0.1)
        raise RuntimeError(f"test host: timed out waiting for {what}")

    def listen_on(self, port: int, address: str = "0.0.0.0") -> subprocess.Popen[bytes]:
        """A stray listener inside the host (what a misconfigured service would open)."""
        code = ("import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                f"s.bind(({address!r}, {port})); s.listen(); time.sleep(600)")
        self._start(f"stray-{port}", [sys.executable, "-c", code], {})
        self._wait_listening(port)
        return self.processes[f"stray-{port}"]

    def stop_stray(self, port: int) -> None:
        self.stop_process(f"stray-{port}")


@contextmanager
def running_test_host() -> Iterator[LocalTestHost]:
    """A started test host for the block, torn down afterwards whatever happens."""
    testhost = LocalTestHost().start()
    try:
        yield testhost
    finally:
        testhost.stop()


def port_open(address: str, port: int, timeout: float = 1.5) -> bool:
    """Whether a TCP connection from this runner completes (a firewall drop times out)."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False
