"""Stored reports count toward the tenant's storage quota: each run records the bytes of its reports.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE validation_runs ADD COLUMN report_bytes bigint NOT NULL DEFAULT 0"
               " CHECK (report_bytes >= 0)")


def downgrade() -> None:
    op.execute("ALTER TABLE validation_runs DROP COLUMN report_bytes")
