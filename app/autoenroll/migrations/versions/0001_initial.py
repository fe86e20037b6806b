"""Initial schema: tenants, users, uploads, validation runs, per-employee results, with RLS.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import os

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TENANT_TABLES = ("users", "uploads", "validation_runs", "employee_results")


def upgrade() -> None:
    app_role = os.environ.get("APP_DB_ROLE", "autoenroll_app")
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{app_role}') THEN
                CREATE ROLE "{app_role}" NOLOGIN;
            END IF;
        END $$""")
    op.execute("""
        CREATE TABLE tenants (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            name text NOT NULL,
            storage_quota_bytes bigint NOT NULL DEFAULT 1073741824,
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("""
        CREATE TABLE users (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            email text NOT NULL UNIQUE,
            full_name text NOT NULL,
            password_hash text NOT NULL,
            role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("""
        CREATE TABLE uploads (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            object_key text NOT NULL UNIQUE,
            original_filename text NOT NULL,
            content_type text NOT NULL,
            size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
            sha256 text NOT NULL,
            status text NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'processing', 'validated', 'failed')),
            created_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("CREATE INDEX idx_uploads_user_created ON uploads (user_id, created_at DESC)")
    op.execute("CREATE INDEX idx_uploads_status ON uploads (status)")
    op.execute("CREATE INDEX idx_uploads_tenant ON uploads (tenant_id)")
    op.execute("""
        CREATE TABLE validation_runs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            upload_id uuid NOT NULL REFERENCES uploads(id) ON DELETE CASCADE,
            status text NOT NULL DEFAULT 'processing'
                CHECK (status IN ('processing', 'completed', 'failed')),
            assessment_date date NOT NULL DEFAULT current_date,
            row_count integer NOT NULL DEFAULT 0,
            error_count integer NOT NULL DEFAULT 0,
            summary jsonb NOT NULL DEFAULT '{}'::jsonb,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )""")
    op.execute("CREATE INDEX idx_runs_tenant_started ON validation_runs (tenant_id, started_at DESC)")
    op.execute("""
        CREATE TABLE employee_results (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            run_id uuid NOT NULL REFERENCES validation_runs(id) ON DELETE CASCADE,
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
            errors jsonb NOT NULL DEFAULT '[]'::jsonb
        )""")
    op.execute("CREATE INDEX idx_results_run ON employee_results (run_id, row_number)")
    op.execute("CREATE INDEX idx_results_tenant_ppsn ON employee_results (tenant_id, ppsn)")

    # Row-level security: the app role sees only the tenant named in the session setting
    # `app.tenant_id`, even if a query forgets its WHERE clause. The owner (migrations,
    # ops backups and masking) is not subject to it.
    op.execute("ALTER TABLE tenants ENABLE ROW LEVEL SECURITY")
    op.execute("""CREATE POLICY tenant_isolation ON tenants
                  USING (id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)""")
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"""CREATE POLICY tenant_isolation ON {table}
                       USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)
                       WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid)""")
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{app_role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{app_role}"')
    op.execute(f'REVOKE ALL ON alembic_version FROM "{app_role}"')
    op.execute(f'GRANT SELECT ON alembic_version TO "{app_role}"')


def downgrade() -> None:
    for table in ("employee_results", "validation_runs", "uploads", "users", "tenants"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
