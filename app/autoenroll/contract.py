"""Names the app, the Pulumi stack and `ops` must agree on, defined once here.

The app ships alone in its image, so the definitions live on its side; `stacks/` and `ops`
import them (they may import the app; the app never imports them).
"""

from __future__ import annotations

DATABASE_NAME = "autoenroll"
APP_DATABASE_ROLE = "autoenroll_app"  # the app's role: DML only (migrations grant it)
OWNER_DATABASE_ROLE = "autoenroll_owner"  # owns the schema: migrations, dumps, restores, masking

# The app's environment (app/autoenroll/config.py reads these). Secrets reach a host's env
# file over SSH at deploy time (`ops deploy`), never through cloud-init user data.
SECRET_ENV_VARS = ("DATABASE_URL", "REDIS_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "SENTRY_DSN",
                   "AUTH_SECRET", "STRIPE_WEBHOOK_SECRET")
# The read replica's URL (secret): in the app's environment only where the stack made a replica.
REPLICA_ENV_VAR = "DATABASE_REPLICA_URL"
PLAIN_ENV_VARS = ("APP_ENV", "APP_ROLE", "APP_VERSION", "HOST", "PORT", "S3_ENDPOINT_URL", "S3_REGION",
                  "S3_BUCKET_UPLOADS")

# Object-store buckets: one per role (uploads, agents, backups) in each environment.
APP_NAME = "autoenroll"
BUCKET_ROLES = ("uploads", "agents", "backups")


def bucket_name(environment: str, role: str) -> str:
    """Bucket for `role` (uploads, agents, backups) in `environment`: `autoenroll-<env>-<role>`."""
    return f"{APP_NAME}-{environment}-{role}"


# The Neon branch each environment's app uses (the environment strategy; `local` is the
# sandbox, whose "branches" are databases of the same names).
BRANCH_OF_ENV = {"local": "main", "development": "development", "staging": "staging", "production": "main"}
