"""Docker engines started by hand, with their own folders, on a machine without systemd.

The sandbox's `--containers` mode runs the app image in one; tests/lab runs one per session
and one inside each lab host.

An engine is `dockerd` with its own --data-root, --exec-root, --pidfile and unix socket under
`ENGINES_ROOT/<name>/`, optionally inside a network namespace (`nsenter --net=...`, so it keeps
this machine's mount namespace and cgroups; `ip netns exec` would remount /sys and hide them).
A file in the folder names the process that owns the engine: a later run deletes engines whose
owner is gone (a killed run), so nothing outlives a test session for long.

The engine in this machine's own network namespace has no bridge and no iptables rules
(`--bridge=none --iptables=false`): several engines (several test sessions) then coexist
without fighting over docker0 or the DOCKER chains. Its builds and containers use the host
network. Engines inside a test host's namespace get the default bridge, as a VM's engine does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ops.errors import SandboxError
from ops.secrets import scrub_text

ENGINES_ROOT = Path(os.environ.get("AUTOENROLL_LAB_ENGINES", "/var/lib/autoenroll-lab/engines"))
# Debian's CLI speaks the API of Debian's dockerd (1.41); the newer CLI on PATH may not build with it.
DOCKER_CLI = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
OWNER_FILE = "owner"


class EngineError(SandboxError):
    """A hand-started engine failed to start, or a docker command against it failed."""


def _process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (field 22 of /proc/PID/stat): a pid plus this names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token() -> str:
    """This process as the owner of a folder it makes: pid and start time, so a recycled pid is not it."""
    return f"{os.getpid()} {_process_start_time(os.getpid())}"


def _owner_alive(token: str) -> bool:
    try:
        pid_text, start = token.split()
        pid = int(pid_text)
    except ValueError:
        return False
    return _process_start_time(pid) == start


def _mounts_under(folder: Path) -> list[str]:
    prefix = str(folder) + "/"
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if target.startswith(prefix) or target == str(folder):
            mounts.append(target)
    return sorted(mounts, key=len, reverse=True)  # deepest first


def unmount_under(folder: Path) -> None:
    """Lazily unmount what an engine left mounted under `folder` (a killed dockerd leaves its
    exec-root's network-namespace nsfs mounts behind, and then the folder cannot be deleted)."""
    for target in _mounts_under(folder):
        subprocess.run(["umount", "--lazy", target], capture_output=True, check=False)


def _kill_pidfile(pidfile: Path, timeout: float = 20.0) -> None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    _terminate(pid, timeout)


def _terminate(pid: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _process_start_time(pid) is None or _is_zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _processes_mentioning(folder: Path) -> list[int]:
    """Container shims and their children name the engine's folder in their command line."""
    needle = str(folder).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def remove_engine_folder(folder: Path) -> None:
    """Stop whatever still runs from `folder`, unmount what it mounted, and delete it."""
    _kill_pidfile(folder / "dockerd.pid")
    for pid in _processes_mentioning(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    unmount_under(folder)
    if not folder.exists():
        return
    # An engine's image layers are tens of thousands of files: delete them in the background
    # (out of the test's teardown time). The ownerless trash folder is swept again next run.
    trash = folder if folder.name.startswith("trash-") else folder.with_name(f"trash-{folder.name}")
    try:
        folder.rename(trash)
    except OSError:
        trash = folder
    subprocess.Popen(["rm", "-rf", "--one-file-system", str(trash)], stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, start_new_session=True)


def abandoned(folder: Path, owner_file: str) -> bool:
    """Whether the run that made `folder` (its `owner_token` in `owner_file`) is gone: killed runs'
    folders are swept by the next run. A folder without the file yet is being made this moment (the
    owner file comes right after the folder), unless it is older than 30 s."""
    owner = folder / owner_file
    token = owner.read_text() if owner.exists() else ""
    if token:
        return not _owner_alive(token)
    return time.time() - folder.stat().st_mtime >= 30


def sweep_stale_engines(root: Path = ENGINES_ROOT) -> list[str]:
    """Remove engines whose owning process is gone (a run that was killed); returns their names."""
    removed: list[str] = []
    if not root.exists():
        return removed
    for folder in sorted(root.iterdir()):
        if not abandoned(folder, OWNER_FILE):
            continue
        remove_engine_folder(folder)
        removed.append(folder.name)
    return removed


def dockerd_argv(folder: Path, netns: str | None = None, insecure_registries: tuple[str, ...] = ()) -> list[str]:
    """dockerd with everything under `folder`; outside a namespace, without bridge or iptables (see above)."""
    argv = [
        DOCKERD,
        f"--data-root={folder / 'data'}",
        f"--exec-root={folder / 'exec'}",
        f"--pidfile={folder / 'dockerd.pid'}",
        f"--host=unix://{folder / 'docker.sock'}",
        "--log-level=warn",
    ]
    if netns is None:
        argv += ["--bridge=none", "--iptables=false", "--ip6tables=false"]
    argv += [f"--insecure-registry={registry}" for registry in insecure_registries]
    if netns is not None:
        return ["nsenter", f"--net=/run/netns/{netns}", *argv]
    return argv


class EngineClient:
    """docker commands against one engine (`host`: unix:///path/docker.sock), with a CLI config of its own."""

    def __init__(self, host: str, config_dir: Path) -> None:
        self._host = host
        self.config_dir = config_dir

    @property
    def host(self) -> str:
        return self._host

    def alive(self) -> bool:
        return True

    def cli(self, *args: str) -> list[str]:
        """The argv of a docker command against this engine."""
        return [DOCKER_CLI, f"--host={self.host}", *args]

    def docker(self, *args: str, check: bool = True, timeout: float = 120.0,
               env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a docker command; `stdin` feeds it (a token for `login --password-stdin`)."""
        base = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "HOME": str(self.config_dir),
                "DOCKER_CONFIG": str(self.config_dir / "cli")}
        result = subprocess.run(self.cli(*args), capture_output=True, text=True, timeout=timeout,
                                env={**base, **(env or {})}, input=stdin if stdin is not None else "", check=False)
        if check and result.returncode != 0:
            raise EngineError(f"docker {' '.join(args[:2])} failed ({result.returncode}): "
                              f"{scrub_text(result.stderr.strip()[-2000:])}")
        return result

    def inspect(self, kind: str, name: str) -> dict[str, object]:
        data = json.loads(self.docker(kind, "inspect", name).stdout)
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise EngineError(f"docker {kind} inspect {name}: unexpected output")
        return data[0]

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", check=False, timeout=10).returncode == 0

    def wait_healthy(self, container: str, timeout: float = 60.0) -> str:
        """Wait for the container's HEALTHCHECK to say healthy; returns the last status."""
        def status() -> str:
            state = self.inspect("container", container).get("State", {})
            if not isinstance(state, dict):
                return ""
            if state.get("Status") == "exited":
                logs = self.docker("logs", container, check=False)
                raise EngineError(f"container {container} exited: {scrub_text((logs.stdout + logs.stderr)[-1500:])}")
            health = state.get("Health") or {}
            return str(health.get("Status", "")) if isinstance(health, dict) else ""
        self._wait_for(lambda: status() == "healthy", f"container {container} to be healthy", timeout)
        return status()

    def _wait_for(self, condition: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise EngineError(f"dockerd exited: {self._log_tail()}")
            if condition():
                return
            time.sleep(0.2)
        raise EngineError(f"timed out waiting for {what}: {self._log_tail()}")

    def _log_tail(self) -> str:
        return ""


@dataclass
class DockerEngine(EngineClient):
    """`start()` it, run `docker(...)` against it, `stop()` it (which deletes its folder)."""

    netns: str | None = None
    insecure_registries: tuple[str, ...] = ()
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="e", dir=_engines_root())))
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.folder / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def log_file(self) -> Path:
        return self.folder / "dockerd.log"

    @property
    def config_dir(self) -> Path:  # type: ignore[override]
        return self.folder

    def dockerd_argv(self) -> list[str]:
        return dockerd_argv(self.folder, self.netns, self.insecure_registries)

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def __post_init__(self) -> None:
        (self.folder / OWNER_FILE).write_text(owner_token())

    def start(self, timeout: float = 60.0) -> DockerEngine:
        sweep_stale_engines()
        log = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self.dockerd_argv(), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        try:
            self._wait_for(self.answers, "dockerd to answer on its socket", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            # A test engine's containers need no graceful stop: remove them first, or dockerd's
            # own shutdown gives each its 10 s stop grace.
            running = self.docker("ps", "--all", "--quiet", check=False, timeout=30).stdout.split()
            if running:
                self.docker("rm", "--force", *running, check=False, timeout=60)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None
        remove_engine_folder(self.folder)

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"


def _engines_root() -> Path:
    ENGINES_ROOT.mkdir(parents=True, exist_ok=True)
    return ENGINES_ROOT
