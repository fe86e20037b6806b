"""Failpoints: a named spot where a drill can make this process die as if killed.

`OPS_FAILPOINT=<name>` (optionally `<name>:<n>` for the n-th time it is reached) makes
`hit(name)` SIGKILL the current process there: no cleanup, no finally blocks, exactly
like `kill -9` or a lost machine. Unset, `hit` does nothing. Drills use it to prove that
re-running a command after a crash at each step completes correctly.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def hit(name: str) -> None:
    wanted = os.environ.get("OPS_FAILPOINT", "")
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
