"""Billing: a tenant's Stripe status, and the Stripe events already applied (webhook idempotency).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import os

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATUSES = ("none", "incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled", "unpaid",
            "paused")


def upgrade() -> None:
    app_role = os.environ.get("APP_DB_ROLE", "autoenroll_app")
    allowed = ", ".join(f"'{s}'" for s in STATUSES)
    op.execute(f"""
        ALTER TABLE tenants
            ADD COLUMN billing_status text NOT NULL DEFAULT 'none' CHECK (billing_status IN ({allowed})),
            ADD COLUMN stripe_customer_id text UNIQUE,
            ADD COLUMN billing_event_at bigint NOT NULL DEFAULT 0""")
    # billing_event_at: the Stripe `created` time of the newest event applied; older ones
    # arriving late (Stripe does not order deliveries) do not move the status back.
    op.execute("""
        CREATE TABLE stripe_events (
            id text PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            type text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX idx_stripe_events_tenant ON stripe_events (tenant_id)")
    op.execute("ALTER TABLE stripe_events ENABLE ROW LEVEL SECURITY")
    op.execute("""CREATE POLICY tenant_isolation ON stripe_events
                  USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
                  WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)""")
    op.execute(f'GRANT SELECT, INSERT ON stripe_events TO "{app_role}"')


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS stripe_events")
    op.execute("ALTER TABLE tenants DROP COLUMN billing_status, DROP COLUMN stripe_customer_id,"
               " DROP COLUMN billing_event_at")
