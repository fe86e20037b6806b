"""employee_results' foreign key to its run declared on each monthly partition instead of once on the parent.

The key is the same, (run_id, tenant_id, month) -> validation_runs (id, tenant_id, month) ON DELETE CASCADE,
and so is what it guarantees: every row of every month has its run, and erasing a run (or its tenant) deletes
its rows. What changes is how pg_dump writes it. A key on the partitioned parent is one post-data statement
that pg_restore runs as one job: it checks every month in turn while holding a lock on all of them, so no
other month's index can be built meanwhile (measured at 1.1 GB: the restore's post-data phase was the key
plus the indexes, one after the other). A key per partition is a TOC entry per month, each locking only its
month (and the runs, which the keys share, so the keys still take turns), and pg_restore --jobs builds the
other months' indexes beside them. New months get theirs in the CREATE TABLE that makes them
(partitions.create_statements), so no partition ever exists without it.

In the migration's one transaction: the parent's key is dropped (its per-partition clones with it) and each
partition gets its own, checked over its rows. Uploads (writers of results and runs) wait until the commit;
reads go on (SHARE ROW EXCLUSIVE on validation_runs and each partition). How long at 1 GB is in
runbooks/database-partitions.md.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from alembic import op
from sqlalchemy import text

from autoenroll import partitions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_PARENT_KEY = "employee_results_run_tenant_fkey"


def _partitions() -> list[str]:
    return [str(r[0]) for r in op.get_bind().execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'employee_results'::regclass ORDER BY 1")).fetchall()]


def _key_name(partition: str) -> str:
    month = partitions.month_of_partition(partition)
    return partitions.foreign_key_name(month) if month else f"{partition}_run_fkey"


def upgrade() -> None:
    op.execute(f"ALTER TABLE employee_results DROP CONSTRAINT {_PARENT_KEY}")
    for partition in _partitions():
        op.execute(f"ALTER TABLE {partition} ADD CONSTRAINT {_key_name(partition)} {partitions.FOREIGN_KEY}")


def downgrade() -> None:
    for partition in _partitions():
        op.execute(f"ALTER TABLE {partition} DROP CONSTRAINT IF EXISTS {_key_name(partition)}")
    op.execute(f"ALTER TABLE employee_results ADD CONSTRAINT {_PARENT_KEY} {partitions.FOREIGN_KEY}")
