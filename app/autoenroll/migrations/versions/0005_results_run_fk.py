"""employee_results: one foreign key, (run_id, tenant_id) -> validation_runs (id, tenant_id), in place of one
to the run and one to the tenant.

Every stored row fired both foreign-key triggers, half the cost of storing a 100,000-row file. The one key
checks as much and more: the row's run exists, and the row belongs to the run's tenant. Erasing a tenant
still reaches the rows, through the run (validation_runs cascades from tenants).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE validation_runs ADD CONSTRAINT validation_runs_id_tenant_key UNIQUE (id, tenant_id)")
    op.execute("ALTER TABLE employee_results ADD CONSTRAINT employee_results_run_tenant_fkey"
               " FOREIGN KEY (run_id, tenant_id) REFERENCES validation_runs (id, tenant_id) ON DELETE CASCADE")
    op.execute("ALTER TABLE employee_results DROP CONSTRAINT employee_results_run_id_fkey")
    op.execute("ALTER TABLE employee_results DROP CONSTRAINT employee_results_tenant_id_fkey")


def downgrade() -> None:
    op.execute("ALTER TABLE employee_results ADD CONSTRAINT employee_results_tenant_id_fkey"
               " FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE")
    op.execute("ALTER TABLE employee_results ADD CONSTRAINT employee_results_run_id_fkey"
               " FOREIGN KEY (run_id) REFERENCES validation_runs (id) ON DELETE CASCADE")
    op.execute("ALTER TABLE employee_results DROP CONSTRAINT employee_results_run_tenant_fkey")
    op.execute("ALTER TABLE validation_runs DROP CONSTRAINT validation_runs_id_tenant_key")
