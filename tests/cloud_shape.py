"""A production-shaped environment (stack outputs in a file, credentials in variables) on the sandbox's
real PostgreSQL and S3: the staging/production code path, with nothing but the servers borrowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.sandbox.state import SandboxState


def with_port(url: str, port: int) -> str:
    head, tail = url.rsplit("@", 1)
    host_port, path = tail.split("/", 1)
    return f"{head}@{host_port.rsplit(':', 1)[0]}:{port}/{path}"


# Two app hosts on loopback addresses, and the Cloudflare records that point at them: reached over
# SSH through an ssh_config the test writes (a closed port there is "the hosts are unreachable").
HOSTS = ({"id": 1, "name": "primary-host", "role": "primary", "ipv4": "127.0.0.1", "location": "fsn1"},
         {"id": 2, "name": "standby-host", "role": "standby", "ipv4": "127.0.0.2", "location": "nbg1"})
ZONE = "zone-cloud-shape"


def outputs(state: SandboxState, *, s3_port: int | None = None, pg_port: int | None = None,
            hosts: bool = False) -> dict[str, Any]:
    """Outputs shaped like `pulumi stack output --json`; a port given points that dependency at nothing;
    `hosts` adds the app servers and the DNS records (see HOSTS)."""
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
        **({"servers": list(HOSTS), "app_env": {"AUTH_SECRET": "cloud-shape-" + "s" * 32},
            "dns": {"zone_id": ZONE, "app_record_name": "app.autoenroll.ie", "records": {"app": "rec0", "api": "rec1"}}}
           if hosts else {}),
    }


def variables(state: SandboxState, outputs_file: Path) -> dict[str, str]:
    """What CI sets for a cloud environment, here pointing at the sandbox's servers.

    Stack outputs name their environment (ops refuses a file of another one), so each
    environment gets its own copy of the shape, as each stack has its own outputs."""
    per_env = {}
    for name in ("development", "staging", "production"):
        copy = outputs_file.with_name(f"{outputs_file.stem}.{name}.json")
        copy.write_text(json.dumps({**json.loads(outputs_file.read_text()), "environment": name}))
        per_env[f"OPS_STACK_OUTPUTS_{name.upper()}"] = str(copy)
    return {
        **per_env,
        "OPS_STACK_OUTPUTS": str(outputs_file),
        "R2_ACCESS_KEY_ID": state.s3.access_key,
        "R2_SECRET_ACCESS_KEY": state.s3.secret_key,
        "BACKUP_AGE_RECIPIENT": state.backup_recipient or "",
        "BACKUP_AGE_IDENTITY_FILE": state.backup_identity_file(),
        "OPS_SCRATCH_DATABASE_URL": state.database_url("postgres", admin=True),
        "MASKING_KEY": "cloud-shape-masking-key",
    }
