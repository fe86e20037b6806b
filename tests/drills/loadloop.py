"""A bounded request loop on loopback: counts, in time, what fails while a drill breaks things."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class LoadLoop:
    url: str
    max_seconds: float = 120.0
    max_requests: int = 20000
    interval: float = 0.02
    results: list[tuple[float, bool]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=5) as client:
            while not self._stop.is_set() and time.monotonic() < deadline and len(self.results) < self.max_requests:
                started = time.monotonic()
                try:
                    ok = client.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.results.append((started, ok))
                time.sleep(self.interval)

    def __enter__(self) -> LoadLoop:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=10)

    @property
    def failures(self) -> list[float]:
        return [t for t, ok in self.results if not ok]

    @property
    def sent(self) -> int:
        return len(self.results)
