"""Neon API v2 client: projects, branches, endpoints, roles, databases, restore, operations.

Used by the Pulumi dynamic provider (stacks/providers/neon.py) and by `ops db refresh`
(through ops/adapters/cloud/clients.py, which maps its errors into ops's).
The official `neon-api` package lacks branch restore and `connection_uri?branch_id=`, so
this calls the documented routes directly. 423 Locked (conflicting work in progress) is
retried like 429; every mutating call returns `operations`, which `wait` polls until each
is `finished`, raising on `failed`, `error` or `cancelled`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from clients.errors import OperationFailed
from clients.http_api import ProviderClient

BASE_URL = "https://console.neon.tech/api/v2"
TERMINAL_OK = {"finished", "skipped"}
TERMINAL_BAD = {"failed", "error", "cancelled"}


class NeonClient(ProviderClient):
    provider = "Neon API"
    base_url = BASE_URL
    base_url_variable = "OPS_NEON_API_URL"
    credential_variable = "NEON_API_KEY"

    def __init__(self, api_key: str, *, poll_interval: float = 1.0, operation_timeout: float = 600.0,
                 **kwargs: Any) -> None:
        super().__init__(api_key, extra_retry_statuses=frozenset({423}), **kwargs)
        self._poll_interval = poll_interval
        self._operation_timeout = operation_timeout

    # ---------------------------------------------------------------- operations

    def wait(self, project_id: str, operations: Iterable[dict[str, Any]]) -> None:
        """Poll each operation until it finishes; raise naming the first that failed."""
        pending = [op["id"] for op in operations if op.get("status") not in TERMINAL_OK]
        deadline = time.monotonic() + self._operation_timeout
        while pending:
            still = []
            for op_id in pending:
                op = self._send("GET", f"/projects/{project_id}/operations/{op_id}")["operation"]
                status = op.get("status")
                if status in TERMINAL_BAD:
                    raise OperationFailed(
                        f"Neon operation {op_id} ({op.get('action', '?')}) {status}: {op.get('error', 'no detail')}")
                if status not in TERMINAL_OK:
                    still.append(op_id)
            pending = still
            if pending:
                if time.monotonic() > deadline:
                    raise OperationFailed(f"Neon operations still running after {self._operation_timeout:g}s: "
                                           f"{', '.join(pending)}")
                self._sleep(self._poll_interval)

    def _mutate(self, project_id: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self._send(method, path, json=body)
        self.wait(project_id, result.get("operations", []))
        return result

    # ---------------------------------------------------------------- projects

    def create_project(self, *, name: str, org_id: str, region_id: str, pg_version: int,
                       history_retention_seconds: int) -> dict[str, Any]:
        # Projects live in organizations: with a personal API key Neon answers "org_id is required".
        # The default branch's endpoint settings are the branch resource's business (NeonBranch).
        result: dict[str, Any] = self._send("POST", "/projects", json={"project": {
            "name": name, "org_id": org_id, "region_id": region_id, "pg_version": int(pg_version),
            "history_retention_seconds": int(history_retention_seconds),
        }})
        self.wait(result["project"]["id"], result.get("operations", []))
        return result

    def get_project(self, project_id: str) -> dict[str, Any] | None:
        body = self.get_or_none(f"/projects/{project_id}")
        return None if body is None else dict(body["project"])

    def update_project(self, project_id: str, **fields: Any) -> dict[str, Any]:
        return self._mutate(project_id, "PATCH", f"/projects/{project_id}", {"project": fields})

    def delete_project(self, project_id: str) -> None:
        self._send("DELETE", f"/projects/{project_id}")

    # ---------------------------------------------------------------- branches

    def list_branches(self, project_id: str) -> list[dict[str, Any]]:
        return list(self._send("GET", f"/projects/{project_id}/branches")["branches"])

    def find_branch(self, project_id: str, name: str) -> dict[str, Any] | None:
        return next((b for b in self.list_branches(project_id) if b["name"] == name), None)

    def get_branch(self, project_id: str, branch_id: str) -> dict[str, Any] | None:
        body = self.get_or_none(f"/projects/{project_id}/branches/{branch_id}")
        return None if body is None else dict(body["branch"])

    def create_branch(self, project_id: str, *, name: str, parent_id: str | None,
                      endpoint: dict[str, Any] | None, parent_timestamp: str | None = None) -> dict[str, Any]:
        """A branch of `parent_id` as it is now, or as it was at `parent_timestamp` (ISO 8601, within
        the project's history retention)."""
        body: dict[str, Any] = {"branch": {"name": name}}
        if parent_id:
            body["branch"]["parent_id"] = parent_id
        if parent_timestamp:
            body["branch"]["parent_timestamp"] = parent_timestamp
        if endpoint is not None:
            body["endpoints"] = [{"type": "read_write", **endpoint}]
        return self._mutate(project_id, "POST", f"/projects/{project_id}/branches", body)

    def update_branch(self, project_id: str, branch_id: str, **fields: Any) -> dict[str, Any]:
        return self._mutate(project_id, "PATCH", f"/projects/{project_id}/branches/{branch_id}", {"branch": fields})

    def delete_branch(self, project_id: str, branch_id: str) -> None:
        self._mutate(project_id, "DELETE", f"/projects/{project_id}/branches/{branch_id}")

    def restore_branch(self, project_id: str, branch_id: str, *, source_branch_id: str,
                       preserve_under_name: str | None = None, source_timestamp: str | None = None,
                       source_lsn: str | None = None) -> dict[str, Any]:
        """Restore `branch_id` to the state of `source_branch_id` (at a time or LSN), in place.

        The branch keeps its id and its endpoints, so connection strings do not change.
        """
        body: dict[str, Any] = {"source_branch_id": source_branch_id}
        if preserve_under_name:
            body["preserve_under_name"] = preserve_under_name
        if source_timestamp:
            body["source_timestamp"] = source_timestamp
        if source_lsn:
            body["source_lsn"] = source_lsn
        return self._mutate(project_id, "POST", f"/projects/{project_id}/branches/{branch_id}/restore", body)

    # ---------------------------------------------------------------- endpoints, roles, databases

    def branch_endpoints(self, project_id: str, branch_id: str) -> list[dict[str, Any]]:
        return list(self._send("GET", f"/projects/{project_id}/branches/{branch_id}/endpoints")["endpoints"])

    def update_endpoint(self, project_id: str, endpoint_id: str, **fields: Any) -> dict[str, Any]:
        return self._mutate(project_id, "PATCH", f"/projects/{project_id}/endpoints/{endpoint_id}",
                            {"endpoint": fields})

    def create_endpoint(self, project_id: str, branch_id: str, *, endpoint_type: str, **fields: Any) -> dict[str, Any]:
        """A compute on `branch_id`: `endpoint_type` read_only is a read replica (a branch has one read_write)."""
        return self._mutate(project_id, "POST", f"/projects/{project_id}/endpoints",
                            {"endpoint": {"branch_id": branch_id, "type": endpoint_type, **fields}})

    def get_endpoint(self, project_id: str, endpoint_id: str) -> dict[str, Any] | None:
        body = self.get_or_none(f"/projects/{project_id}/endpoints/{endpoint_id}")
        return None if body is None else dict(body["endpoint"])

    def delete_endpoint(self, project_id: str, endpoint_id: str) -> None:
        self._mutate(project_id, "DELETE", f"/projects/{project_id}/endpoints/{endpoint_id}")

    def create_role(self, project_id: str, branch_id: str, name: str) -> dict[str, Any]:
        return self._mutate(project_id, "POST", f"/projects/{project_id}/branches/{branch_id}/roles",
                            {"role": {"name": name}})

    def reveal_password(self, project_id: str, branch_id: str, role: str) -> str:
        path = f"/projects/{project_id}/branches/{branch_id}/roles/{role}/reveal_password"
        return str(self._send("GET", path)["password"])

    def create_database(self, project_id: str, branch_id: str, name: str, owner: str) -> dict[str, Any]:
        return self._mutate(project_id, "POST", f"/projects/{project_id}/branches/{branch_id}/databases",
                            {"database": {"name": name, "owner_name": owner}})

    def connection_uri(self, project_id: str, *, branch_id: str, database: str, role: str, pooled: bool,
                       endpoint_id: str | None = None) -> str:
        """The URI of `database` as `role`, through the branch's read_write endpoint or `endpoint_id`."""
        params = {"branch_id": branch_id, "database_name": database, "role_name": role,
                  "pooled": "true" if pooled else "false"}
        if endpoint_id:
            params["endpoint_id"] = endpoint_id
        return str(self._send("GET", f"/projects/{project_id}/connection_uri", params=params)["uri"])
