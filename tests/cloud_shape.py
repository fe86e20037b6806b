"""A production-shaped environment (stack outputs in a file, credentials in variables) on the sandbox's
real PostgreSQL and S3: the staging/production code path, with nothing but the servers borrowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ops.sandbox.state import SandboxState


def with_port(url: str, port: int) -> str:
    head, tail = url.rsplit("@", 1)
    host_port, path = tail.split("/", 1)
    return f"{head}@{host_port.rsplit(':', 1)[0]}:{port}/{path}"


def outputs(state: SandboxState, *, s3_port: int | None = None, pg_port: int | None = None) -> dict[str, Any]:
    """Outputs shaped like `pulumi stack output --json`; a port given points that dependency at nothing."""
    def url(db: str) -> str:
        plain = state.database_url(db, admin=True)
        return with_port(plain, pg_port) if pg_port else plain

    return {
        "public_url": state.public_url(),
        "r2_endpoint": f"http://127.0.0.1:{s3_port or state.s3.ports['s3']}",
        "buckets": dict(state.s3.buckets),
        # production's branch is main, staging's is staging: the sandbox has both databases
        "connection_strings": {b: {"direct": url(b), "pooled": url(b)} for b in ("main", "staging", "development")},
        "servers": [],
        "neon_project_id": "proj-cloud-shape",
    }


def variables(state: SandboxState, outputs_file: Path) -> dict[str, str]:
    """What CI sets for a cloud environment, here pointing at the sandbox's servers."""
    return {
        "OPS_STACK_OUTPUTS": str(outputs_file),
        "R2_ACCESS_KEY_ID": state.s3.access_key,
        "R2_SECRET_ACCESS_KEY": state.s3.secret_key,
        "BACKUP_AGE_RECIPIENT": state.backup_recipient or "",
        "BACKUP_AGE_IDENTITY_FILE": state.backup_identity_file(),
        "OPS_SCRATCH_DATABASE_URL": state.database_url("postgres", admin=True),
        "MASKING_KEY": "cloud-shape-masking-key",
    }
