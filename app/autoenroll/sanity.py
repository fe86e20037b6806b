"""Sanity queries over the app's schema: each returns the number of problems it finds (0 = sane).

Run by `ops backup verify` on a restored copy and by `ops checklist`; they check what row
counts can't: references that point nowhere, runs stuck mid-way, a schema without a version.
"""

from __future__ import annotations

SANITY_QUERIES: dict[str, str] = {
    "schema_version_present": "SELECT CASE WHEN count(*) = 1 THEN 0 ELSE 1 END FROM alembic_version",
    "users_without_tenant": (
        "SELECT count(*) FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE t.id IS NULL"),
    "uploads_without_user": (
        "SELECT count(*) FROM uploads up LEFT JOIN users u ON u.id = up.user_id WHERE u.id IS NULL"),
    "results_without_run": (
        "SELECT count(*) FROM employee_results r LEFT JOIN validation_runs v ON v.id = r.run_id WHERE v.id IS NULL"),
    "results_in_another_tenant_than_their_run": (
        "SELECT count(*) FROM employee_results r JOIN validation_runs v ON v.id = r.run_id"
        " WHERE v.tenant_id <> r.tenant_id"),
    "runs_stuck_processing_over_a_day": (
        "SELECT count(*) FROM validation_runs WHERE status = 'processing' AND started_at < now() - interval '1 day'"),
}
