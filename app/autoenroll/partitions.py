"""Monthly partitions of employee_results: names, bounds, and the SQL that creates them.

employee_results holds nearly all of the database's bytes and grows with every upload. It is
partitioned by RANGE on `month` (the first day of the UTC month its run was made in; the run
carries the same value in validation_runs.month, and the composite foreign key
(run_id, tenant_id, month) -> validation_runs (id, tenant_id, month) keeps the two equal). A month is
then a table of its own: `pg_restore --jobs` and the masked copy take partitions in parallel (a
directory-format `pg_dump --jobs` would too; backups are still one custom-format stream), and retention
drops a month as a whole instead of deleting rows.

Partitions are made ahead, never on demand by the app: the app's role has no DDL rights (and must not:
it is subject to row-level security). The migration that partitions the table makes the current month and
MONTHS_AHEAD more; `ops db partitions --ensure` (nightly, before the backup) keeps that window ahead. An
insert for a month with no partition fails in PostgreSQL (no DEFAULT partition on purpose: rows of a
missing month would pile up there unseen, and attaching that month later would have to move them), and
the app turns that failure into an error that names the month (`is_missing_partition`).

Used by the migration (app layer) and by `ops` (a layer above), so it imports neither.
"""

from __future__ import annotations

import re
from datetime import date

PARENT = "employee_results"
MONTHS_AHEAD = 3
_NAME = re.compile(rf"^{PARENT}_y(\d{{4}})m(\d{{2}})$")


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{PARENT}_y{month.year:04d}m{month.month:02d}"


def month_of_partition(name: str) -> date | None:
    """The month a partition of ours holds, from its name; None for any other table."""
    found = _NAME.match(name)
    return date(int(found[1]), int(found[2]), 1) if found else None


def foreign_key_name(month: date) -> str:
    """The partition's own foreign key to its run (migration 0007)."""
    return f"{partition_name(month)}_run_fkey"


# Each partition's key to its run. Declared per partition, not once on the parent (migration 0007): pg_dump
# writes a parent's key as ONE post-data statement that checks every month in turn while it locks all of
# them (no index of any month can be built meanwhile), whereas a key per partition is a TOC entry of its
# own, locking only its month, so pg_restore --jobs builds other months' indexes beside it.
FOREIGN_KEY = ("FOREIGN KEY (run_id, tenant_id, month) REFERENCES validation_runs (id, tenant_id, month)"
               " ON DELETE CASCADE")


def create_statements(month: date, *, parent: str = PARENT, foreign_key: bool = True) -> list[str]:
    """Idempotent DDL for one month's partition (run by the table's owner).

    The partition gets row-level security enabled and no policy and no grant: the app reaches rows only
    through the parent (whose policy applies), and a direct query of a partition by the app's role is
    refused twice over (no privilege; and RLS with no policy sees nothing). Its foreign key to its run is
    part of the CREATE TABLE itself, so no partition exists without it, even for a moment. `parent`: the
    table being built under another name by the migration that partitions it; `foreign_key=False` only
    for that migration (0006), which keys the parent (the referenced columns do not exist yet) and which
    0007 then re-keys per partition."""
    name = partition_name(month)
    upper = add_months(month, 1)
    key = f" (CONSTRAINT {foreign_key_name(month)} {FOREIGN_KEY})" if foreign_key else ""
    return [
        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent}{key}"
        f" FOR VALUES FROM ('{month.isoformat()}') TO ('{upper.isoformat()}')",
        f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY",
    ]


def months_from(first: date, count: int) -> list[date]:
    start = month_start(first)
    return [add_months(start, i) for i in range(count)]


def is_missing_partition(message: str | None) -> bool:
    """Whether a check violation is PostgreSQL finding no partition for a row (not a CHECK constraint)."""
    return (message or "").startswith(f'no partition of relation "{PARENT}"')
