"""Journaled steps: the one implementation behind every resumable `ops` command.

Each finished step is written to a journal object before the next starts; running the same
command again after a crash (or a kill at a failpoint) skips the steps already done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from ops import failpoints
from ops.interfaces import ObjectStore

Step = Callable[[str, Callable[[], Any]], None]


def step_runner(objects: ObjectStore, key: str, journal: dict[str, Any], failpoint_prefix: str,
                progress: Callable[[str], None]) -> Step:
    """`step(name, action)`: run `action` unless the journal says it is done; keep what it returns."""

    def step(name: str, action: Callable[[], Any]) -> None:
        if name in journal["done"]:
            progress(f"{name}: already done")
            return
        progress(f"{name} ...")
        t0 = time.monotonic()
        result = action()
        if result is not None:
            journal.setdefault("results", {})[name] = result
        journal.setdefault("timings", {})[name] = round(time.monotonic() - t0, 3)
        journal["done"].append(name)
        objects.put_bytes(key, json.dumps(journal, default=str).encode())
        failpoints.hit(f"{failpoint_prefix}.after.{name}")

    return step
