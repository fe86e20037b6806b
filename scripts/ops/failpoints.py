"""Failpoints: a named spot where a drill can make this process die as if killed.

`OPS_FAILPOINT=<name>` (optionally `<name>:<n>` for the n-th time it is reached) makes
`hit(name)` SIGKILL the current process there: no cleanup, no finally blocks, exactly
like `kill -9` or a lost machine. Unset, `hit` does nothing. Drills use it to prove that
re-running a command after a crash at each step completes correctly.

`OPS_FAILPOINT_SIGNAL=SIGTERM` (or SIGINT) sends that signal instead: a cancelled CI job or
a Ctrl-C arriving at exactly that spot, handled (or not) as a real one would be, since the
process signals itself and its own handlers run.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _signal() -> signal.Signals:
    name = os.environ.get("OPS_FAILPOINT_SIGNAL", "") or "SIGKILL"
    try:
        return signal.Signals[name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"]
    except KeyError:
        raise ValueError(f"OPS_FAILPOINT_SIGNAL: {name!r} is not a signal name (SIGTERM, SIGINT, SIGKILL)") from None


def hit(name: str) -> None:
    wanted = os.environ.get("OPS_FAILPOINT", "")
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):  # once: a handled signal lets the run go on to its cleanup
        os.kill(os.getpid(), _signal())
