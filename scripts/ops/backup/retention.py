"""Which backups a retention policy keeps: pure, so it is tested on dates alone.

Keep the newest backup of each of the `daily` most recent days that have one, the newest
of each of the `monthly` most recent months, and always the newest verified backup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    id: str
    finished_at: datetime
    verified: bool


def keep_set(backups: Sequence[Candidate], *, daily: int, monthly: int) -> set[str]:
    newest_first = sorted(backups, key=lambda b: b.finished_at, reverse=True)
    keep: set[str] = set()
    days: list[str] = []
    months: list[str] = []
    for backup in newest_first:
        day, month = backup.finished_at.strftime("%Y-%m-%d"), backup.finished_at.strftime("%Y-%m")
        if day not in days and len(days) < daily:
            days.append(day)
            keep.add(backup.id)
        if month not in months and len(months) < monthly:
            months.append(month)
            keep.add(backup.id)
    newest_verified = next((b for b in newest_first if b.verified), None)
    if newest_verified is not None:
        keep.add(newest_verified.id)  # never prune the one backup we know restores
    return keep
