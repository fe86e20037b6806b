"""`ops logs`: the app's, Caddy's and the deploy script's logs, per host.

A log source (ops.wiring.log_source) builds, per host, the argv that prints a unit's log (the
hosts: ssh running the deploy script's read-only `logs` verb; the sandbox: `tail` on its log
files); this module is the one runner, once (captured, each host in turn, an unreachable host
named and the others still shown) or following (every host at once, each line prefixed by its
host, until Ctrl-C). Lines are the logs' own; known secrets and URL passwords are masked anyway.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from ops.errors import ConfigError, ExternalError, OpsError
from ops.secrets import scrub_text

UNITS = ("app", "caddy", "deploy")
_SPAN = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class LogSource(Protocol):
    # The port `ops logs` reads through; its adapters: ops.adapters.local.logs (the sandbox's files),
    # ops.adapters.cloud.ssh_hosts.SshLogs (the hosts).
    applies_since: bool  # False: the source's logs carry no common timestamp (the sandbox's files)

    def names(self, unit: str) -> list[str]: ...  # the hosts (or log files) that have this unit
    def argv(self, name: str, unit: str, lines: int, since: int | None, follow: bool) -> list[str]: ...
    def failure(self, name: str, returncode: int, detail: str) -> ExternalError: ...


def parse_since(text: str | None, now: datetime | None = None) -> int | None:
    """`--since` as seconds since the epoch: a span back from now (`15m`, `2h`, `1d`, `30s`) or an ISO
    time (`2026-12-07T03:00`, UTC unless it says otherwise). One form for docker and journalctl alike."""
    if text is None:
        return None
    span = _SPAN.match(text.strip())
    if span:
        moment = (now or datetime.now(UTC)) - timedelta(seconds=int(span[1]) * _SECONDS[span[2]])
        return int(moment.timestamp())
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--since: {text!r} is neither a span (15m, 2h, 1d) nor an ISO time "
                          "(2026-12-07T03:00)") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def check_unit(unit: str) -> None:
    if unit not in UNITS:
        raise ConfigError(f"--unit: unknown unit {unit!r}", hint=f"one of: {', '.join(UNITS)}")


def pick(source: LogSource, unit: str, host: str | None) -> list[str]:
    names = source.names(unit)
    if host is None:
        return names
    if host not in names:
        from ops.errors import NotFoundError

        raise NotFoundError(f"--host: no host {host!r} with a {unit} log", hint=f"one of: {', '.join(names)}")
    return [host]


def read(source: LogSource, names: Sequence[str], unit: str, lines: int, since: int | None,
         secrets: Sequence[str] = (), timeout: float = 120) -> list[dict[str, Any]]:
    """Each host's last lines; a host that fails is reported with its error, the others still read."""
    out: list[dict[str, Any]] = []
    for name in names:
        try:
            argv = source.argv(name, unit, lines, since, False)
            done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            out.append({"host": name, "lines": [], "error": f"no answer in {timeout:g}s"})
            continue
        except OpsError as exc:
            out.append({"host": name, "lines": [], "error": exc.message})
            continue
        text = done.stdout.decode(errors="replace")
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            error = source.failure(name, done.returncode, scrub_text(said[-1] if said else "no output", list(secrets)))
            out.append({"host": name, "lines": [], "error": error.message})
            continue
        out.append({"host": name, "lines": [scrub_text(line, list(secrets)) for line in text.splitlines()],
                    "error": None})
    return out


@contextmanager
def _signals_set(flag: threading.Event) -> Iterator[None]:
    """For the block, SIGINT and SIGTERM set `flag` instead of raising (main thread only; elsewhere
    signals cannot be handled and the default behaviour stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, lambda _s, _f: flag.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def follow(source: LogSource, names: Sequence[str], unit: str, lines: int, since: int | None,
           emit: Callable[[str, str], None], secrets: Sequence[str] = ()) -> list[str]:
    """Every host's log as it grows, each line to `emit(host, line)`, until every stream ends or
    Ctrl-C (or SIGTERM); the streams' processes are ended before this returns. Returns the hosts
    that failed; a signal is raised again afterwards as KeyboardInterrupt (the CLI says so, exit 130).

    A signal only sets a flag that the loop looks at between lines (at least every 0.2 s): raised as
    an exception at any point, it could land inside the queue's own locking while a reader thread
    held the lock, and a CI run saw `ops logs --follow` not end within 30 s of its SIGINT."""
    lines_q: queue.Queue[tuple[str, str | None]] = queue.Queue()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = threading.Event()

    def pump(name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines_q.put((name, raw.decode(errors="replace").rstrip("\n")))
        lines_q.put((name, None))

    with _signals_set(stop):
        try:
            for name in names:
                procs[name] = subprocess.Popen(source.argv(name, unit, lines, since, True), stdout=subprocess.PIPE,
                                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                threading.Thread(target=pump, args=(name, procs[name]), daemon=True).start()
            open_streams = len(procs)
            while open_streams and not stop.is_set():
                try:
                    name, line = lines_q.get(timeout=0.2)
                except queue.Empty:
                    continue
                if line is None:
                    open_streams -= 1
                    continue
                emit(name, scrub_text(line, list(secrets)))
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if stop.is_set():
        raise KeyboardInterrupt
    return [name for name, proc in procs.items() if proc.returncode not in (0, -15)]
