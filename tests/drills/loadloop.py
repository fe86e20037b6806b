"""Drill helpers: a bounded request loop on loopback that counts, in time, what fails while a drill
breaks things; and killing the primary app host of a sandbox."""

from __future__ import annotations

import os
import signal
import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


class _WithExtensions:
    def __init__(self, client: httpx.Client, extensions: dict[str, str]) -> None:
        self.client, self.extensions = client, extensions

    def get(self, url: str) -> httpx.Response:
        return self.client.get(url, extensions=self.extensions)


# What each drill measured (failed requests, seconds to leave the rotation), printed in the session's
# summary by tests/drills/conftest.py: a passing test's own output is not shown in CI's log.
REPORTS: list[str] = []


def drill_report(line: str) -> None:
    """Print a drill's measurement now (under -s) and keep it for the session's summary."""
    print(f"\n{line}")
    REPORTS.append(line)


@dataclass
class LoadLoop:
    url: str
    max_seconds: float = 120.0
    max_requests: int = 20000
    interval: float = 0.02
    verify: str | bool | ssl.SSLContext = True  # a CA file for a lab host's Caddy (a context: with a client cert)
    sni: str | None = None  # the site name when `url` dials an address (as Cloudflare's edge dials the origin)
    results: list[tuple[float, bool]] = field(default_factory=list)
    ended: list[float] = field(default_factory=list)  # when each of `results` ended (same order)
    recycled: int = 0  # keep-alive connections closed under us and retried once
    errors: list[str] = field(default_factory=list)  # exception classes or "HTTP status: body" of failed requests
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        headers = {"Host": self.sni} if self.sni else {}
        extensions = {"sni_hostname": self.sni} if self.sni else {}
        verify = ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else self.verify
        with httpx.Client(timeout=5, verify=verify, headers=headers) as plain:
            client = _WithExtensions(plain, extensions)
            while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
                started = time.monotonic()
                try:
                    ok = self._ok(client.get(self.url))
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    # The proxy closed a keep-alive connection as we reused it (Caddy does on
                    # every config reload): depending on timing the client sees "disconnected
                    # without a response" or a reset. Browsers and HTTP libraries retry an
                    # idempotent request once in that case (RFC 9110, 9.2.2); so does this loop,
                    # on a fresh connection, and counts it. A refused connection is not retried.
                    self.recycled += 1
                    try:
                        ok = self._ok(client.get(self.url))
                    except httpx.HTTPError as exc:
                        self.errors.append(exc.__class__.__name__)
                        ok = False
                except httpx.HTTPError as exc:
                    self.errors.append(exc.__class__.__name__)
                    ok = False
                self.results.append((started, ok))
                self.ended.append(time.monotonic())
                time.sleep(self.interval)

    def _ok(self, response: httpx.Response) -> bool:
        """A 200; anything else is recorded with its status and the start of its body, so a drill's
        failure message says what answered (Caddy's 502, the app's 503 naming a dependency, ...)."""
        if response.status_code == 200:
            return True
        self.errors.append(f"HTTP {response.status_code}: {response.text[:160]!r}")
        return False

    def __enter__(self) -> LoadLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    def in_flight_at(self, moment: float) -> list[float]:
        """Start times of the requests that had started before `moment` and had not ended by then."""
        return [t for (t, _ok), end in zip(self.results, self.ended, strict=True) if t < moment <= end]

    @property
    def failures(self) -> list[float]:
        return [t for t, ok in self.results if not ok]

    @property
    def sent(self) -> int:
        return len(self.results)


def kill_primary(root: Path) -> float:
    """SIGKILL the sandbox's primary app process; return when (monotonic) it was killed."""
    from ops.processes import is_running
    from ops.sandbox.state import load_state

    proc = load_state(root).apps["primary"].proc
    assert proc is not None
    killed_at = time.monotonic()
    os.kill(proc.pid, signal.SIGKILL)
    while is_running(proc):
        time.sleep(0.01)
    return killed_at
