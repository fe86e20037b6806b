"""Neon's API v2, the routes a failover and `ops db restore-to` use (branch restore at a timestamp with
the old state preserved under a name, a branch created from a parent at a timestamp, operations,
branches, connection_uri), faked at the HTTP transport and backed by real PostgreSQL: a branch is a
database of the sandbox's server, and the history Neon keeps (its point-in-time window) is snapshots
the test takes with `snapshot()`; a restore to TIME (or a branch from a parent at TIME) puts back the
newest snapshot of that branch at or before TIME, as Neon puts back the WAL up to TIME. Request and
response shapes follow Neon's published API (restoreProjectBranch, createProjectBranch)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
from psycopg import sql

from ops.adapters.local.branch_store import LocalBranchStore


class FakeNeonPitr:
    def __init__(self, local: LocalBranchStore, project: str) -> None:
        self.local, self.project = local, project
        self.branches: dict[str, str] = {}  # id -> name (= database name)
        self.history: list[tuple[datetime, str, str]] = []  # (moment, snapshot database, branch name)
        self.restores: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.ops = 0

    def add(self, name: str) -> str:
        branch_id = f"br-{name.replace('_', '-')}"
        self.branches[branch_id] = name
        return branch_id

    def snapshot(self, name: str, moment: datetime) -> None:
        database = f"neonpitr_{name}_{len(self.history)}"
        self.local.copy(name, database)
        self.history.append((moment, database, name))

    def _at(self, name: str, stamp: str) -> str | None:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        earlier = [db for at, db, branch in self.history if branch == name and at <= moment]
        return earlier[-1] if earlier else None

    def cleanup(self) -> None:
        for _moment, database, _name in self.history:
            self.local.drop(database)
        for branch_id, name in list(self.branches.items()):
            if branch_id != "br-main":
                self.local.drop(name)

    def _restore_from_another(self, branch_id: str, body: dict[str, Any]) -> httpx.Response:
        """A branch restored from another branch's head (or its state at a time): how a refresh puts
        its masked scratch branch in place, keeping the target's id and endpoints; the old state
        kept as a branch when preserve_under_name is given."""
        source_id = str(body.get("source_branch_id", ""))
        if source_id not in self.branches:
            return httpx.Response(400, json={"message": f"source branch {source_id!r} not found"})
        stamp = body.get("source_timestamp")
        source = self._at(self.branches[source_id], stamp) if stamp else self.branches[source_id]
        if source is None:
            return httpx.Response(400, json={"message": "timestamp is outside the history retention window"})
        scratch = f"neonpitr_restore_{self.ops}"
        self.local.copy(source, scratch)
        target = self.branches[branch_id]
        preserve = body.get("preserve_under_name") or f"neonpitr_discarded_{self.ops}"
        self.local.replace(target, scratch, preserve)
        if body.get("preserve_under_name"):
            with psycopg.connect(self.local.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(preserve)))
            self.add(preserve)
        else:
            self.local.drop(preserve)
        self.restores.append(body)
        return httpx.Response(200, json={"branch": {"id": branch_id}, "operations": self._op()})

    def _op(self) -> list[dict[str, Any]]:
        self.ops += 1
        return [{"id": f"op-{self.ops}", "action": "restore_branch", "status": "running"}]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer neon-lab-key":
            return httpx.Response(401, json={"message": "authentication required"})
        path = request.url.path.removeprefix("/api/v2").removeprefix(f"/projects/{self.project}")
        body = json.loads(request.content) if request.content else {}
        if request.method == "POST" and path.endswith("/restore"):
            branch_id = path.split("/")[2]
            if branch_id not in self.branches:
                return httpx.Response(404, json={"message": f"branch {branch_id} not found"})
            if body.get("source_branch_id") != branch_id:
                return self._restore_from_another(branch_id, body)
            if "source_timestamp" not in body:
                return httpx.Response(400, json={"message": "a restore from the branch itself needs a source_timestamp"
                                                            " or source_lsn"})
            if not body.get("preserve_under_name"):  # Neon requires it for a restore from the branch's own history
                return httpx.Response(400, json={"message": "preserve_under_name is required"})
            snapshot = self._at(self.branches[branch_id], body["source_timestamp"])
            if snapshot is None:
                return httpx.Response(400, json={"message": "timestamp is outside the history retention window"})
            scratch = f"neonpitr_restore_{self.ops}"
            self.local.copy(snapshot, scratch)
            preserve = body["preserve_under_name"]
            self.local.replace(self.branches[branch_id], scratch, preserve)
            # Neon's preserved branch takes connections (the sandbox store closes the old one off).
            with psycopg.connect(self.local.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(preserve)))
            self.add(preserve)
            self.restores.append(body)
            return httpx.Response(200, json={"branch": {"id": branch_id}, "operations": self._op()})
        if request.method == "POST" and path == "/branches":
            branch = body.get("branch", {})
            parent = self.branches.get(branch.get("parent_id", ""))
            if parent is None or not branch.get("name"):
                return httpx.Response(400, json={"message": "fake: a named branch of a known parent"})
            if branch["name"] in self.branches.values():
                return httpx.Response(409, json={"message": f"branch {branch['name']} already exists"})
            stamp = branch.get("parent_timestamp")
            source = self._at(parent, stamp) if stamp else parent
            if source is None:
                return httpx.Response(400, json={"message": "timestamp is outside the history retention window"})
            self.local.copy(source, branch["name"])
            new_id = self.add(branch["name"])
            self.created.append(body)
            made = {"id": new_id, "name": branch["name"], "parent_id": branch["parent_id"],
                    **({"parent_timestamp": stamp} if stamp else {})}
            endpoints = [{"id": f"ep-{new_id}", "branch_id": new_id, "type": e.get("type", "read_write")}
                         for e in body.get("endpoints", [])]
            return httpx.Response(201, json={"branch": made, "endpoints": endpoints, "operations": self._op()})
        if request.method == "DELETE" and path.startswith("/branches/") and path.count("/") == 2:
            branch_id = path.split("/")[2]
            if branch_id not in self.branches:
                return httpx.Response(404, json={"message": f"branch {branch_id} not found"})
            if branch_id == "br-main":  # Neon refuses to delete a project's default branch
                return httpx.Response(400, json={"message": "cannot delete the project's default branch"})
            name = self.branches.pop(branch_id)
            self.local.drop(name)
            return httpx.Response(200, json={"branch": {"id": branch_id, "name": name}, "operations": self._op()})
        if request.method == "GET" and path.startswith("/operations/"):
            op_id = path.rsplit("/", 1)[1]
            return httpx.Response(200, json={"operation": {"id": op_id, "status": "finished",
                                                           "action": "restore_branch"}})
        if request.method == "GET" and path == "/branches":
            return httpx.Response(200, json={"branches": [{"id": i, "name": n} for i, n in self.branches.items()]})
        if request.method == "GET" and path == "/connection_uri":
            query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
            return httpx.Response(200, json={"uri": self.local.url(self.branches[query["branch_id"]])})
        return httpx.Response(404, json={"message": f"no fake route {request.method} {path}"})
