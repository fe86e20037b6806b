"""Schema migrations (Alembic): `python -m autoenroll.migrate upgrade|current|heads`.

Run with DATABASE_URL pointing at the database *owner* (migrations create tables and
policies); APP_DB_ROLE names the role the app connects as, which receives grants and is
subject to row-level security.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlalchemy_url(database_url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url


def alembic_config(database_url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = database_url or os.environ.get("DATABASE_URL", "")
    # ConfigParser interpolation would choke on '%' in URL-encoded passwords.
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


@cache
def _scripts() -> ScriptDirectory:
    # The migration scripts are part of the image: read once per process (`/ready` asks on every probe).
    return ScriptDirectory.from_config(alembic_config("postgresql://x/y"))


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


@cache
def known_revisions() -> frozenset[str]:
    """Every revision this release's scripts know. A database at a revision outside it was migrated
    by a later release (migrations run before the deploy, and a rollback runs the older image over
    the newer schema), which this release's code is written to tolerate (expand, then contract)."""
    return frozenset(script.revision for script in _scripts().walk_revisions())


def main(argv: list[str]) -> int:
    if not os.environ.get("DATABASE_URL"):
        print("configuration error: DATABASE_URL: required but not set", file=sys.stderr)
        return 2
    action = argv[0] if argv else "upgrade"
    cfg = alembic_config()
    if action == "upgrade":
        command.upgrade(cfg, argv[1] if len(argv) > 1 else "head")
    elif action == "current":
        command.current(cfg)
    elif action == "heads":
        print(head_revision())
    else:
        print(f"unknown action {action!r}: use upgrade, current or heads", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
