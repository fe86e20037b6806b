"""BranchStore for the sandbox: branches as databases of its PostgreSQL (Neon's is
ops.adapters.cloud.neon_branch_store).

The refresh use-case needs five things of a store, each idempotent so a re-run after a
crash converges: copy a branch, give a branch's owner URL, replace one branch's data with
another's while preserving the old state under a name, drop, and list preserved states.
"""

from __future__ import annotations

from psycopg import sql

from ops.errors import NotFoundError
from ops.pg import connect, create_database, drop_database, libpq_env, with_database
from ops.pg.tools import tool as pg_tool
from ops.pipeline import Pipeline, Stage
from ops.refresh.masked_copy import Progress, masked_copy
from ops.refresh.policy import preserved_prefix


class LocalBranchStore:
    """Branches as databases of one PostgreSQL cluster (the sandbox)."""

    def __init__(self, admin_url: str, *, progress: Progress = lambda _m: None) -> None:
        self.admin_url = admin_url
        self.progress = progress

    def url(self, name: str) -> str:
        return with_database(self.admin_url, name)

    def _names(self) -> list[str]:
        with connect(self.admin_url, autocommit=True) as conn:
            return [str(r[0]) for r in conn.execute("SELECT datname FROM pg_database ORDER BY datname")]

    def exists(self, name: str) -> bool:
        return name in self._names()

    def copy(self, source: str, name: str, *, masking_key: str | None = None) -> None:
        """With the key, masked in the copy stream (and marked so): personal data never lands unmasked."""
        if not self.exists(source):
            raise NotFoundError(f"branch database {source!r} does not exist")
        create_database(self.admin_url, name)
        if masking_key is not None:
            masked_copy(self.url(source), self.url(name), masking_key, progress=self.progress)
            return
        # pg_dump | pg_restore, not CREATE DATABASE ... TEMPLATE: a template copy needs the
        # source without connections, and the source (main) is serving the app.
        pipe = Pipeline([
            Stage("pg_dump", [pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password"],
                  libpq_env(self.admin_url, database=source)),
            Stage("pg_restore", [pg_tool("pg_restore"), "--exit-on-error", "--no-password", "-d", name],
                  libpq_env(self.admin_url, database=name)),
        ], feed_stdin=False, capture_stdout=False)
        try:
            pipe.check()
        except BaseException:
            pipe.kill()
            raise

    def replace(self, target: str, scratch: str, preserve_as: str) -> None:
        names = self._names()
        if scratch not in names:
            return  # already swapped by an earlier run
        with connect(self.admin_url, autocommit=True) as conn:
            if target in names:
                # Stop new sessions, end current ones, then move the old data aside.
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(target)))
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (target,))
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(target), sql.Identifier(preserve_as)))
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (scratch,))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(scratch), sql.Identifier(target)))
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(target)))

    def drop(self, name: str) -> None:
        drop_database(self.admin_url, name)

    def preserved(self, target: str) -> list[str]:
        return sorted((n for n in self._names() if n.startswith(preserved_prefix(target))), reverse=True)
