"""Journaled steps: the one implementation behind every resumable `ops` command.

Each finished step is written to a journal object before the next starts; running the same
command again after a crash (or a kill at a failpoint) skips the steps already done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ops import failpoints
from ops.ports import ObjectStore

Step = Callable[[str, Callable[[], Any]], None]


def step_runner(objects: ObjectStore, key: str, journal: dict[str, Any], failpoint_prefix: str,
                progress: Callable[[str], None], *, steps: Sequence[str] = (),
                describe: Mapping[str, str] | None = None) -> Step:
    """`step(name, action)`: run `action` unless the journal says it is done; keep what it returns.

    Each step names itself, its place among `steps` and what it works on (`describe`), so a
    long one is never a silent wait."""

    def step(name: str, action: Callable[[], Any]) -> None:
        counter = f"[{list(steps).index(name) + 1}/{len(steps)}] {name}" if name in steps else name
        if name in journal["done"]:
            progress(f"{counter}: already done (journal)")
            return
        progress(f"{counter}: {(describe or {}).get(name, name)} ...")
        t0 = time.monotonic()
        result = action()
        progress(f"{counter}: done in {time.monotonic() - t0:.1f} s")
        if result is not None:
            journal.setdefault("results", {})[name] = result
        journal.setdefault("timings", {})[name] = round(time.monotonic() - t0, 3)
        journal["done"].append(name)
        objects.put_bytes(key, json.dumps(journal, default=str).encode())
        failpoints.hit(f"{failpoint_prefix}.after.{name}")

    return step
