"""BranchStore: where branches live. Neon in real environments; databases of the sandbox's PostgreSQL locally.

The refresh use-case needs five things of a store, each idempotent so a re-run after a
crash converges: copy a branch, give a branch's owner URL, replace one branch's data with
another's while preserving the old state under a name, drop, and list preserved states.
"""

from __future__ import annotations

from psycopg import sql

from ops.adapters.cloud.clients import NeonClient
from ops.errors import NotFoundError
from ops.paths import pg_tool
from ops.pg import connect, create_database, drop_database, libpq_env, with_database
from ops.pipeline import Pipeline, Stage
from ops.refresh.masked_copy import Progress, masked_copy


def preserved_prefix(target: str) -> str:
    return f"{target}_pre_refresh_"


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


class NeonBranchStore:
    """Branches of one Neon project. `replace` is Neon's branch restore: the target keeps its
    id and endpoint, so the connection strings the apps use don't change."""

    def __init__(self, client: NeonClient, project_id: str, *, database: str, owner_role: str) -> None:
        self.client = client
        self.project_id = project_id
        self.database = database
        self.owner_role = owner_role

    def _id(self, name: str) -> str:
        branch = self.client.find_branch(self.project_id, name)
        if branch is None:
            raise NotFoundError(f"Neon branch {name!r} not found in project {self.project_id}")
        return str(branch["id"])

    def url(self, name: str) -> str:
        return self.client.connection_uri(self.project_id, branch_id=self._id(name), database=self.database,
                                          role=self.owner_role, pooled=False)

    def exists(self, name: str) -> bool:
        return self.client.find_branch(self.project_id, name) is not None

    def copy(self, source: str, name: str, *, masking_key: str | None = None) -> None:
        # A branch is copy-on-write and instant; the mask step then masks it in place.
        del masking_key
        self.client.create_branch(self.project_id, name=name, parent_id=self._id(source),
                                  endpoint={"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 1,
                                            "suspend_timeout_seconds": 300})

    def replace(self, target: str, scratch: str, preserve_as: str) -> None:
        if self.exists(preserve_as):
            return  # restored by an earlier run
        self.client.restore_branch(self.project_id, self._id(target), source_branch_id=self._id(scratch),
                                   preserve_under_name=preserve_as)

    def drop(self, name: str) -> None:
        branch = self.client.find_branch(self.project_id, name)
        if branch is not None:
            self.client.delete_branch(self.project_id, str(branch["id"]))

    def preserved(self, target: str) -> list[str]:
        names = [str(b["name"]) for b in self.client.list_branches(self.project_id)]
        return sorted((n for n in names if n.startswith(preserved_prefix(target))), reverse=True)
