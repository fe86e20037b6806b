"""SIGTERM (a cancelled CI job) and SIGINT (Ctrl-C) during a roll-out, turned into an exception the
roll-out can clean up after: Python's default SIGTERM ends the process with no `finally`, which left a
started candidate running beside the live container. The signal module is used directly (no library
covers "raise once, then hold further signals while cleaning up").

A first signal raises `Interrupted` (a KeyboardInterrupt, so the CLI reports it as one, exit 130);
signals that arrive while the candidate is being discarded are noted and ignored, so a second
Ctrl-C cannot cut the cleanup short (each cleanup step is bounded by ssh's own timeouts).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


class Interrupted(KeyboardInterrupt):
    """The run received SIGTERM or SIGINT."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signal_name = signal.Signals(signum).name


class _State:
    cleaning = False


_state = _State()


def _handler(signum: int, _frame: FrameType | None) -> None:
    if _state.cleaning:
        sys.stderr.write(f"{signal.Signals(signum).name} received while discarding the candidate: "
                         "finishing the cleanup first\n")
        return
    raise Interrupted(signum)


@contextmanager
def interruptible() -> Iterator[None]:
    """For the block, SIGTERM and SIGINT raise `Interrupted` (main thread only: elsewhere signals
    cannot be handled, and the default behaviour stays)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, _handler)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def cleaning_up() -> Iterator[None]:
    """For the block, signals are noted and ignored (the candidate is being discarded)."""
    was, _state.cleaning = _state.cleaning, True
    try:
        yield
    finally:
        _state.cleaning = was
