"""employee_results partitioned by month (RANGE on `month`, the first day of the run's UTC month).

validation_runs gets the same `month` (from started_at for existing runs), and the composite key
(run_id, tenant_id, month) -> validation_runs (id, tenant_id, month) replaces (run_id, tenant_id): a result
row is in its run's month by construction, so retention can drop a month's partition knowing no row of a
later run is in it. The primary key becomes (id, month) (PostgreSQL requires the partition key in it).

Conversion, in the migration's one transaction, so that readers wait only for the end: the old table is
locked in SHARE mode (uploads, its only writers, wait from then on; reads go on), the partitioned table is
built beside it under another name (a partition per month that has rows, the current month and
partitions.MONTHS_AHEAD more; the rows by one INSERT ... SELECT; then the key and indexes in bulk), and only
then validation_runs gets its column, the composite key is checked and the two tables swap (ACCESS EXCLUSIVE
from there to the commit). How long each part locks at a realistic size is in runbooks/database-partitions.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

import os
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

from autoenroll import partitions

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Every column in 0001's order, `month` last (COPY and INSERT name their columns, so order is cosmetic).
_COLUMNS = ("id, tenant_id, run_id, row_number, employee_id, ppsn, first_name, last_name, date_of_birth, email,"
            " gross_pay, pay_frequency, eligibility, employee_contribution, employer_contribution,"
            " state_contribution, errors")
_BODY = """
    id bigint GENERATED ALWAYS AS IDENTITY,
    tenant_id uuid NOT NULL,
    run_id uuid NOT NULL,
    row_number integer NOT NULL,
    employee_id text,
    ppsn text,
    first_name text,
    last_name text,
    date_of_birth date,
    email text,
    gross_pay numeric(12, 2),
    pay_frequency text,
    eligibility text CHECK (eligibility IN ('automatic', 'may_opt_in', 'excluded', 'invalid')),
    employee_contribution numeric(12, 2),
    employer_contribution numeric(12, 2),
    state_contribution numeric(12, 2),
    errors jsonb NOT NULL DEFAULT '[]'::jsonb"""
_POLICY = ("CREATE POLICY tenant_isolation ON employee_results"
           " USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)"
           " WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)")


def _grant(app_role: str) -> None:
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON employee_results TO "{app_role}"')
    op.execute(f'GRANT USAGE, SELECT ON SEQUENCE employee_results_id_seq TO "{app_role}"')


# A run's month: the first day of the UTC month it started in.
_RUN_MONTH = "date_trunc('month', v.started_at AT TIME ZONE 'UTC')::date"


def upgrade() -> None:
    app_role = os.environ.get("APP_DB_ROLE", "autoenroll_app")
    # Uploads (writers of results) wait from here to the commit; readers go on until the short swap at the end.
    op.execute("LOCK TABLE employee_results IN SHARE MODE")
    op.execute(f"CREATE TABLE employee_results_new ({_BODY},\n    month date NOT NULL) PARTITION BY RANGE (month)")
    bind = op.get_bind()
    row = bind.execute(text(
        f"SELECT min({_RUN_MONTH}) FROM validation_runs v WHERE EXISTS"  # noqa: S608 - constants
        " (SELECT 1 FROM employee_results r WHERE r.run_id = v.id)")).fetchone()
    now = partitions.month_start(datetime.now(UTC).date())
    first = min(row[0], now) if row and row[0] else now
    count = (now.year - first.year) * 12 + now.month - first.month + 1 + partitions.MONTHS_AHEAD
    for month in partitions.months_from(first, count):
        for statement in partitions.create_statements(month, parent="employee_results_new",
                                                         foreign_key=False):
            op.execute(statement)
    # Rows first, then the key and indexes in bulk (as pg_restore orders it: faster than maintaining them
    # row by row). The identity continues from the old sequence's value (no row can be added meanwhile).
    source = ", ".join("r." + c.strip() for c in _COLUMNS.split(","))
    op.execute(f"INSERT INTO employee_results_new ({_COLUMNS}, month) OVERRIDING SYSTEM VALUE"  # noqa: S608
               f" SELECT {source}, {_RUN_MONTH} FROM employee_results r JOIN validation_runs v ON v.id = r.run_id")
    op.execute("SELECT setval('employee_results_new_id_seq', last_value, is_called) FROM employee_results_id_seq")
    op.execute("ALTER TABLE employee_results_new ADD CONSTRAINT employee_results_new_pkey PRIMARY KEY (id, month)")
    op.execute("CREATE INDEX idx_results_new_run ON employee_results_new (run_id, row_number)")
    op.execute("CREATE INDEX idx_results_new_tenant_ppsn ON employee_results_new (tenant_id, ppsn)")

    # The exclusive part, from here to the commit: validation_runs gets its month (the same expression), the
    # composite key is checked over every row, the tables swap names.
    op.execute("ALTER TABLE validation_runs ADD COLUMN month date")
    op.execute(f"UPDATE validation_runs v SET month = {_RUN_MONTH}")  # noqa: S608 - constants
    op.execute("ALTER TABLE validation_runs ALTER COLUMN month SET NOT NULL,"
               " ALTER COLUMN month SET DEFAULT date_trunc('month', now() AT TIME ZONE 'UTC')::date,"
               " ADD CONSTRAINT validation_runs_month_first_day CHECK (date_trunc('month', month) = month),"
               " ADD CONSTRAINT validation_runs_id_tenant_month_key UNIQUE (id, tenant_id, month)")
    op.execute("ALTER TABLE employee_results_new ADD CONSTRAINT employee_results_run_tenant_fkey"
               " FOREIGN KEY (run_id, tenant_id, month) REFERENCES validation_runs (id, tenant_id, month)"
               " ON DELETE CASCADE")
    op.execute("DROP TABLE employee_results")  # its sequence, indexes and policy with it
    op.execute("ALTER TABLE validation_runs DROP CONSTRAINT validation_runs_id_tenant_key")
    op.execute("ALTER TABLE employee_results_new RENAME TO employee_results")
    op.execute("ALTER SEQUENCE employee_results_new_id_seq RENAME TO employee_results_id_seq")
    op.execute("ALTER INDEX employee_results_new_pkey RENAME TO employee_results_pkey")
    op.execute("ALTER INDEX idx_results_new_run RENAME TO idx_results_run")
    op.execute("ALTER INDEX idx_results_new_tenant_ppsn RENAME TO idx_results_tenant_ppsn")
    op.execute("ALTER TABLE employee_results ENABLE ROW LEVEL SECURITY")
    op.execute(_POLICY)
    _grant(app_role)


def downgrade() -> None:
    app_role = os.environ.get("APP_DB_ROLE", "autoenroll_app")
    op.execute("ALTER TABLE validation_runs ADD CONSTRAINT validation_runs_id_tenant_key UNIQUE (id, tenant_id)")
    op.execute("ALTER TABLE employee_results RENAME TO employee_results_old")
    op.execute("ALTER SEQUENCE employee_results_id_seq RENAME TO employee_results_old_id_seq")
    op.execute("ALTER INDEX employee_results_pkey RENAME TO employee_results_old_pkey")
    op.execute("ALTER INDEX idx_results_run RENAME TO idx_results_old_run")
    op.execute("ALTER INDEX idx_results_tenant_ppsn RENAME TO idx_results_old_tenant_ppsn")
    op.execute(f"CREATE TABLE employee_results ({_BODY})")
    op.execute(f"INSERT INTO employee_results ({_COLUMNS}) OVERRIDING SYSTEM VALUE"  # noqa: S608 - constants
               f" SELECT {_COLUMNS} FROM employee_results_old")
    op.execute("SELECT setval('employee_results_id_seq', last_value, is_called) FROM employee_results_old_id_seq")
    op.execute("ALTER TABLE employee_results ADD CONSTRAINT employee_results_pkey PRIMARY KEY (id)")
    op.execute("CREATE INDEX idx_results_run ON employee_results (run_id, row_number)")
    op.execute("CREATE INDEX idx_results_tenant_ppsn ON employee_results (tenant_id, ppsn)")
    op.execute("ALTER TABLE employee_results ADD CONSTRAINT employee_results_run_tenant_fkey"
               " FOREIGN KEY (run_id, tenant_id) REFERENCES validation_runs (id, tenant_id) ON DELETE CASCADE")
    op.execute("DROP TABLE employee_results_old")  # its partitions with it
    op.execute("ALTER TABLE employee_results ENABLE ROW LEVEL SECURITY")
    op.execute(_POLICY)
    _grant(app_role)
    op.execute("ALTER TABLE validation_runs DROP CONSTRAINT validation_runs_id_tenant_month_key,"
               " DROP CONSTRAINT validation_runs_month_first_day, DROP COLUMN month")
