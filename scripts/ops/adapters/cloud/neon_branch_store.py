"""BranchStore for real environments: branches of one Neon project (the sandbox's is
ops.adapters.local.branch_store)."""

from __future__ import annotations

from ops.adapters.cloud.clients import NeonClient
from ops.errors import NotFoundError
from ops.refresh.policy import preserved_prefix


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
