"""Start, identify and stop local processes we own.

A process is identified by its pid *and* its start time (field 22 of /proc/PID/stat),
recorded when we start it. A recycled pid has a different start time, so a process
somebody else started is never signalled. (A tag in the environment would not do:
PostgreSQL and Redis rewrite their argv/environ memory to set their process titles.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel


class ProcRef(BaseModel):
    """A process we started: pid plus kernel start time (clock ticks since boot)."""

    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ..." where comm may hold spaces and parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def start_process(
    argv: Sequence[str],
    *,
    log_file: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcRef:
    """Start `argv` detached from our session, output appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,  # a Ctrl-C in the caller's terminal must not kill the sandbox
        )
    ticks = start_ticks(proc.pid)
    # The Popen object is dropped on purpose: the process outlives this command
    # (CPython keeps a dropped, still-running Popen and reaps it if it exits meanwhile).
    return ProcRef(pid=proc.pid, start_ticks=ticks if ticks is not None else -1)


def _reap_if_child(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)


def is_running(ref: ProcRef | None) -> bool:
    """True when the process we started is still alive (not a zombie, pid not recycled)."""
    if ref is None:
        return False
    _reap_if_child(ref.pid)
    fields = _stat_fields(ref.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == ref.start_ticks


def stop_process(ref: ProcRef | None, *, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
    """Signal our process and wait; SIGKILL after `timeout`. False if it was not running."""
    if ref is None or not is_running(ref):
        return False
    try:
        os.kill(ref.pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(ref):
            return True
        time.sleep(0.05)
    try:
        os.kill(ref.pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and is_running(ref):
        time.sleep(0.05)
    return True


def run_checked(argv: Sequence[str], *, env: Mapping[str, str] | None = None, what: str) -> str:
    """Run a short command to completion; raise ExternalError naming `what` on failure."""
    from ops.errors import ExternalError
    from ops.secrets import scrub_text

    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, env=dict(env) if env else None, check=False)
    except OSError as exc:  # the binary is missing or not executable: a dependency, not a bug
        raise ExternalError(f"{what} failed: can't run {argv[0]} ({exc.strerror or exc.__class__.__name__})"
                            ) from None
    if out.returncode != 0:
        lines = (out.stderr or out.stdout).strip().splitlines()
        detail = scrub_text(lines[-1]) if lines else "no output"
        raise ExternalError(f"{what} failed (exit {out.returncode}): {detail}")
    return out.stdout
