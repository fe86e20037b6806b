"""employee_results' monthly partitions from ops: made ahead (`ops db partitions`), and retention by month
(`ops db retention`), which drops whole months and never one the newest verified backup does not hold.

Retention removes a month's data as a whole: its employee_results partition (dropped, not deleted row by
row), the uploads whose runs are of that month with those runs, and those uploads' stored objects (the
evidence file and its reports). The uploads go too because GDPR erasure finds the files that hold a person
through their result rows: a file kept after its rows were dropped could no longer be erased.

Order, so that a crash or a rerun loses nothing it should keep and leaves nothing it should not: refuse
first (before any change); delete the objects while the rows still list them (a rerun lists them again,
and deleting a missing key is a no-op); then drop the partitions and delete the rows in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from psycopg import sql

from autoenroll import partitions as p
from ops.backup import manifest as m
from ops.errors import ConfigError, RefusedError
from ops.pg import connect, pg_errors
from ops.ports import ObjectStore


@dataclass(frozen=True)
class Partition:
    name: str
    month: date
    rows: int


def list_partitions(url: str) -> list[Partition]:
    """employee_results' partitions with their exact row counts, oldest first."""
    with connect(url) as conn, pg_errors("listing employee_results' partitions"):
        names = [str(r[0]) for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(%s) ORDER BY 1", (f"public.{p.PARENT}",)).fetchall()]
        out = []
        for name in names:
            month = p.month_of_partition(name)
            if month is None:
                raise ConfigError(f"{name}: a partition of {p.PARENT} not named {p.PARENT}_yYYYYmMM",
                                  hint="attach only partitions made by `ops db partitions --ensure`")
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
            out.append(Partition(name, month, int(row[0]) if row else 0))  # type: ignore[call-overload]
    return sorted(out, key=lambda part: part.month)


def missing_months(existing: Sequence[Partition], today: date, ahead: int) -> list[date]:
    """The current month and `ahead` more that have no partition."""
    have = {part.month for part in existing}
    return [month for month in p.months_from(today, ahead + 1) if month not in have]


def ensure(url: str, months: Sequence[date]) -> list[str]:
    """Make the partitions of `months` (idempotent, one transaction, as the tables' owner)."""
    with connect(url) as conn, pg_errors("making employee_results' partitions"):
        for month in months:
            for statement in p.create_statements(month):
                conn.execute(statement.encode())
        conn.commit()
    return [p.partition_name(month) for month in months]


def analyze(url: str) -> str:
    """ANALYZE employee_results itself: the statistics of the partitioned parent over all its months,
    which autovacuum never gathers (it analyzes only the partitions). The planner reads them for
    queries over the parent, and the refresh's masked copy needs them to mask each person once
    (masking.memoized_select's cache). `ops db partitions --ensure`, which the nightly job runs,
    gathers them: a sample per partition, seconds at our sizes."""
    with connect(url) as conn, pg_errors("analyzing employee_results"):
        conn.execute(b"ANALYZE employee_results")
        conn.commit()
    return "employee_results"


@dataclass
class RetentionPlan:
    cutoff: date  # months before this one go
    partitions: list[Partition]
    runs: int
    uploads: int
    backup_id: str | None
    refusals: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff.isoformat(), "backup": self.backup_id, "refusals": self.refusals,
                "drop": [{"partition": part.name, "month": part.month.strftime("%Y-%m"), "rows": part.rows}
                         for part in self.partitions],
                "delete": {"runs": self.runs, "uploads": self.uploads}}

    def steps(self) -> list[str]:
        out = [f"drop partition {part.name} ({part.rows} rows)" for part in self.partitions]
        if self.uploads or self.runs:
            out.append(f"delete {self.uploads} uploads of those months with their {self.runs} runs and stored"
                       " objects (evidence files and reports)")
        return out


def cutoff_for(today: date, older_than: int) -> date:
    """The first month kept: the current month and the `older_than` months before it stay."""
    if older_than < 1:
        raise ConfigError(f"--older-than: must be >= 1 month (got {older_than}); the current month is never dropped")
    return p.add_months(p.month_start(today), -older_than)


def _newest_verified(backups: Sequence[tuple[m.Manifest, m.Verification | None]]) -> m.Manifest | None:
    return next((man for man, ver in backups if ver is not None and ver.ok), None)


def holds(backup: m.Manifest | None, part: Partition) -> str | None:
    """Why `backup` can't stand in for `part` (None when it can): it must have been taken after the month
    ended (so every upload of that month is in it) and list the partition with the rows it has now."""
    if part.rows == 0:
        return None  # an empty month loses nothing
    if backup is None:
        return f"{part.name}: no verified backup exists"
    end = p.add_months(part.month, 1)
    if backup.started_at.date() < end:
        return (f"{part.name}: the newest verified backup ({backup.id}) was taken before "
                f"{part.month:%Y-%m} ended, so it may lack rows written since")
    backed_up = backup.tables.get(f"public.{part.name}")
    if backed_up is None:
        return f"{part.name}: not in the newest verified backup ({backup.id})"
    if backed_up != part.rows:
        return (f"{part.name}: {part.rows} rows now, {backed_up} in the newest verified backup ({backup.id}); "
                "it changed since")
    return None


def retention_plan(url: str, backups: Sequence[tuple[m.Manifest, m.Verification | None]], *, older_than: int,
                   today: date) -> RetentionPlan:
    """What `--older-than` would remove, and the refusals (the plan is only applied when there are none)."""
    cutoff = cutoff_for(today, older_than)
    old = [part for part in list_partitions(url) if part.month < cutoff]
    with connect(url) as conn, pg_errors("counting the runs and uploads to remove"):
        row = conn.execute("SELECT count(*), count(DISTINCT upload_id) FROM validation_runs WHERE month < %s",
                           (cutoff,)).fetchone()
    runs, uploads = (int(row[0]), int(row[1])) if row else (0, 0)  # type: ignore[call-overload]
    backup = _newest_verified(backups)
    refusals = [reason for part in old if (reason := holds(backup, part)) is not None]
    return RetentionPlan(cutoff, old, runs, uploads, backup.id if backup else None, refusals)


def refuse(plan: RetentionPlan) -> None:
    """Exit 3, naming each month refused and why, when the plan has refusals."""
    if plan.refusals:
        raise RefusedError("retention refused, nothing was changed: " + "; ".join(plan.refusals),
                           hint="make and verify a backup first: ops backup create, then ops backup verify --latest")


def apply_retention(url: str, uploads: ObjectStore, plan: RetentionPlan) -> dict[str, int]:
    """Carry out a plan without refusals: objects first, then the partitions and rows in one transaction."""
    refuse(plan)
    with connect(url) as conn, pg_errors("listing the uploads to remove"):
        rows = conn.execute("SELECT u.object_key, v.id FROM validation_runs v JOIN uploads u ON u.id = v.upload_id"
                            " WHERE v.month < %s", (plan.cutoff,)).fetchall()
    deleted = 0
    for object_key, run_id in rows:
        for key in [str(object_key), *uploads.list_keys(f"reports/{run_id}/")]:
            uploads.delete(key)
            deleted += 1
    with connect(url) as conn, pg_errors("dropping partitions"):
        for part in plan.partitions:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(part.name)))
        # The runs go with their uploads (ON DELETE CASCADE); their result rows went with the partitions.
        gone = conn.execute("DELETE FROM uploads WHERE id IN (SELECT upload_id FROM validation_runs"
                            " WHERE month < %s)", (plan.cutoff,)).rowcount
        conn.commit()
    return {"partitions": len(plan.partitions), "uploads": gone, "objects": deleted}
