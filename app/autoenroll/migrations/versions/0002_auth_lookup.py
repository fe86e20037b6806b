"""Login lookup across tenants: a SECURITY DEFINER function, the only way around RLS for the app role.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import os

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    app_role = os.environ.get("APP_DB_ROLE", "autoenroll_app")
    # Before sign-in the tenant is unknown, so RLS would hide every user. This function
    # returns exactly one user's id, tenant and hash by e-mail, and nothing else.
    op.execute("""
        CREATE FUNCTION auth_lookup(p_email text)
        RETURNS TABLE (user_id uuid, tenant_id uuid, password_hash text)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS
        $$ SELECT id, tenant_id, password_hash FROM users WHERE lower(email) = lower(p_email) $$""")
    op.execute("REVOKE ALL ON FUNCTION auth_lookup(text) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION auth_lookup(text) TO "{app_role}"')
    op.execute("CREATE UNIQUE INDEX idx_users_email_lower ON users (lower(email))")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS auth_lookup(text)")
    op.execute("DROP INDEX IF EXISTS idx_users_email_lower")
