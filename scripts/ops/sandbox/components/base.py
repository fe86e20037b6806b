"""What every sandbox component is: a class with its argv, start, probe and ports.

A component is one real process of the real software; the engine (`ops.sandbox.components.run` and
`ops.sandbox.manager`) iterates over instances and never asks for a component by its name: what
differs (a post-start step, a clean-up after stop, following the app mode) is a method or an
attribute here.
"""

from __future__ import annotations

import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from ops.processes import ProcRef
from ops.sandbox.state import SandboxState

Health = Literal["up", "down", "unhealthy"]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    state: Health
    pid: int | None
    endpoint: str
    detail: str
    latency_ms: float | None = None


def _timed(probe: Callable[[], str]) -> tuple[bool, str, float]:
    started = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except Exception as exc:  # any probe failure means "unhealthy", with its reason
        detail, ok = f"{exc.__class__.__name__}: {str(exc)[:120]}", False
    return ok, detail, (time.perf_counter() - started) * 1000



def probe_http(url: str) -> str:
    response = httpx.get(url, timeout=2)
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code} from {url}")
    return f"HTTP 200 {url}"



class Component(ABC):
    """One sandbox process: where its pid and ports are in the state, how to start and probe it."""

    name: str
    stop_signal: int = signal.SIGTERM
    start_timeout: float = 60.0
    stop_timeout: float = 20.0
    # Stopped when the sandbox switches its apps between processes and containers (the apps, the engine).
    follows_app_mode: bool = False
    # Runs the app image in --containers mode: the image is built before the first such component starts.
    runs_app_image: bool = False

    @abstractmethod
    def endpoint(self, state: SandboxState) -> str: ...

    @abstractmethod
    def get_proc(self, state: SandboxState) -> ProcRef | None: ...

    @abstractmethod
    def set_proc(self, state: SandboxState, proc: ProcRef | None) -> None: ...

    @abstractmethod
    def ports(self, state: SandboxState) -> list[int]: ...

    @abstractmethod
    def reallocate_ports(self, state: SandboxState) -> None:
        """Give the component new free ports (something else took its old ones)."""

    @abstractmethod
    def start(self, state: SandboxState, root: Path) -> ProcRef: ...

    @abstractmethod
    def probe(self, state: SandboxState) -> str:
        """A short description of the healthy component; raises when it is not."""

    def accepting(self, state: SandboxState) -> object:
        """Succeeds as soon as the process accepts work; the post-start step (`after_start`: buckets,
        roles) runs after it, and only then is `probe` expected to pass. By default, the probe."""
        return self.probe(state)

    def after_start(self, state: SandboxState, progress: Progress) -> None:
        """Idempotent set-up that needs the process running (roles and schema, buckets, upstream)."""
        return  # most components need none

    def after_stop(self, state: SandboxState) -> None:
        """Clean up what a killed process of this kind leaves behind (mounts, containers)."""
        return  # most leave nothing
