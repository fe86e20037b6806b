"""`ops db refresh TARGET --from SOURCE`: copy, mask, swap, migrate, smoke-check; journaled.

Fail closed: the target changes only at the swap, and the swap's source is a copy that was
masked (and marked so) in one committed transaction. A crash anywhere leaves the target
serving its old, already-masked data; running the same command again resumes from the
journal (kept in the object store, so a CI re-run on another machine resumes too).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ops import store_keys
from ops.errors import ConfigError
from ops.journal import step_runner
from ops.locks import object_lock
from ops.migrations import migrate
from ops.ports import BranchStore, ObjectStore
from ops.refresh.masking import mask_database
from ops.refresh.policy import check, preserved_prefix

STEPS = ("copy", "mask", "swap", "migrate", "smoke", "retention")
KEEP_PRESERVED = 2
Progress = Callable[[str], None]
Smoke = Callable[[str], str]  # target owner URL -> what was checked


@dataclass
class RefreshReport:
    target: str
    source: str
    preserved_as: str
    resumed_from: str | None
    timings: dict[str, float] = field(default_factory=dict)
    rows_masked: dict[str, int] = field(default_factory=dict)
    smoke: str = ""
    dropped_preserved: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "source": self.source, "preserved_as": self.preserved_as,
                "resumed_from": self.resumed_from, "timings_s": self.timings, "rows_masked": self.rows_masked,
                "total_rows_masked": sum(self.rows_masked.values()), "smoke": self.smoke,
                "dropped_preserved": self.dropped_preserved}


def plan(target: str, source: str) -> list[str]:
    check(target, source)
    return [
        f"copy {source} to a scratch branch {target}_refresh_scratch",
        "mask personal data in the scratch copy (one transaction, marked as masked)",
        f"replace {target} with the masked copy; keep {target}'s old state as {preserved_prefix(target)}<time>",
        f"run migrations on {target} up to the app's head",
        f"smoke-check the app against {target}",
        f"keep the newest {KEEP_PRESERVED} preserved states of {target}, drop older ones",
    ]


def refresh(env_name: str, branches: BranchStore, objects: ObjectStore, *, target: str, source: str,
            masking_key: str | None, smoke: Smoke, progress: Progress = lambda _m: None) -> RefreshReport:
    check(target, source)
    if not masking_key:
        raise ConfigError("MASKING_KEY: required (a secret; refreshes into staging and development are masked)")
    scratch = f"{target}_refresh_scratch"
    journal_key = store_keys.refresh_journal(env_name, target)
    with object_lock(objects, store_keys.refresh_lock(env_name, target), ttl=timedelta(hours=2),
                     purpose=f"refresh of {target}"):
        raw = objects.get_bytes(journal_key)
        journal: dict[str, Any] = json.loads(raw) if raw else {}
        if journal.get("source") not in (None, source):
            journal = {}  # an abandoned refresh from another source: start over
        if journal.get("done") and "swap" not in journal["done"] and not branches.exists(scratch):
            progress("the journal's scratch copy is gone: starting over")
            journal = {}
        resumed = journal["done"][-1] if journal.get("done") else None
        if not journal:
            stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz")
            journal = {"source": source, "target": target, "preserve_as": f"{preserved_prefix(target)}{stamp}",
                       "done": [], "timings": {}, "rows_masked": {}}
        report = RefreshReport(target, source, journal["preserve_as"], resumed)

        # Each step names itself and what it works on, so a long one is never a silent wait.
        what = {
            "copy": f"copy {source} into {scratch} (masked in the copy stream where the store can; the longest step)",
            "mask": f"mask personal data in {scratch} (one transaction)",
            "swap": f"swap {scratch} in as {target}, keeping the old one as {journal['preserve_as']}",
            "migrate": f"migrate {target} to the app's head revision",
            "smoke": f"smoke check: the app against {target}",
            "retention": f"drop preserved copies of {target} beyond the newest {KEEP_PRESERVED}",
        }

        step = step_runner(objects, journal_key, journal, "refresh", progress, steps=STEPS, describe=what)

        def do_copy() -> None:
            if branches.exists(scratch):
                branches.drop(scratch)  # a half-made copy from a crashed run
            branches.copy(source, scratch, masking_key=masking_key)

        def do_mask() -> None:
            counts, _did = mask_database(branches.url(scratch), masking_key, progress=progress)
            journal["rows_masked"] = counts

        def do_swap() -> None:
            branches.replace(target, scratch, journal["preserve_as"])
            if branches.exists(scratch):
                branches.drop(scratch)  # Neon keeps the restore's source; we don't need it

        def do_smoke() -> None:
            journal["smoke"] = smoke(branches.url(target))

        def do_retention() -> None:
            extra = branches.preserved(target)[KEEP_PRESERVED:]
            for name in extra:
                branches.drop(name)
            journal["dropped"] = extra

        step("copy", do_copy)
        step("mask", do_mask)
        step("swap", do_swap)
        step("migrate", lambda: migrate(branches.url(target)))
        step("smoke", do_smoke)
        step("retention", do_retention)
        objects.delete(journal_key)
    report.timings = journal["timings"]
    report.rows_masked = journal["rows_masked"]
    report.smoke = str(journal.get("smoke", ""))
    report.dropped_preserved = list(journal.get("dropped", []))
    return report
