"""Names shared by the Pulumi program and `ops`, so neither hard-codes the other's."""

from __future__ import annotations

APP_NAME = "autoenroll"


def bucket_name(environment: str, role: str) -> str:
    """Bucket for `role` (uploads, agents, backups) in `environment`: `autoenroll-<env>-<role>`."""
    return f"{APP_NAME}-{environment}-{role}"


BUCKET_ROLES = ("uploads", "agents", "backups")

# The Neon branch each environment's app uses (the environment strategy; `local` is the
# sandbox, whose "branches" are databases of the same names).
BRANCH_OF_ENV = {"local": "main", "development": "development", "staging": "staging", "production": "main"}
