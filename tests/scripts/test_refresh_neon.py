"""The Neon path of `ops db refresh` against an HTTP fake of Neon's API v2 (documented shapes:
`{"branch": ...}` envelopes, `operations` to poll, 423 Locked, 429 with Retry-After, a failed
operation). The fake keeps its branches as real databases in the sandbox's PostgreSQL, so
the masking really runs on the "Neon" copy and the restore really swaps data."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import psycopg
import pytest

from ops.adapters.cloud.clients import NeonClient
from ops.adapters.cloud.neon_branch_store import NeonBranchStore
from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.adapters.local.branch_store import LocalBranchStore
from ops.errors import ProviderAPIError
from ops.refresh import usecase
from ops.sandbox.state import SandboxState
from ops.wiring import resolve
from tests.ppsn import is_valid
from tests.seed import clear, seed

pytestmark = pytest.mark.integration
PROJECT = "proj-fake"


class FakeNeon:
    def __init__(self, local: LocalBranchStore) -> None:
        self.local = local
        self.branches: dict[str, str] = {}  # id -> name
        self.calls: list[str] = []
        self.fail_restore_op = False
        self.locked_once = True
        self.rate_limited_once = True
        self.ops: dict[str, tuple[str, str]] = {}  # id -> (final status, action)

    def db(self, name: str) -> str:
        return f"neonfake_{name}"

    def add(self, name: str) -> str:
        branch_id = f"br-{name.replace('_', '-')}"
        self.branches[branch_id] = name
        return branch_id

    def op(self, action: str, final: str = "finished") -> list[dict[str, Any]]:
        op_id = f"op-{len(self.ops) + 1}"
        self.ops[op_id] = (final, action)
        return [{"id": op_id, "action": action, "status": "running"}]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(f"/api/v2/projects/{PROJECT}")
        body = json.loads(request.content) if request.content else {}
        self.calls.append(f"{request.method} {path}")
        if request.method == "GET" and path == "/branches":
            if self.rate_limited_once:
                self.rate_limited_once = False
                return httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "rate limit"})
            return httpx.Response(200, json={"branches": [{"id": i, "name": n} for i, n in self.branches.items()]})
        if request.method == "POST" and path == "/branches":
            parent = self.branches[body["branch"]["parent_id"]]
            name = body["branch"]["name"]
            self.local.copy(self.db(parent), self.db(name))
            branch_id = self.add(name)
            return httpx.Response(201, json={"branch": {"id": branch_id, "name": name},
                                             "endpoints": [{"id": f"ep-{name}", "host": "h", "type": "read_write"}],
                                             "operations": self.op("create_branch")})
        if request.method == "POST" and path.endswith("/restore"):
            if self.locked_once:
                self.locked_once = False
                return httpx.Response(423, json={"message": "project already has running operations"})
            target = self.branches[path.split("/")[2]]
            if self.fail_restore_op:
                return httpx.Response(200, json={"branch": {}, "operations": self.op("restore", "failed")})
            source = self.branches[body["source_branch_id"]]
            preserve = body["preserve_under_name"]
            self.local.replace(self.db(target), self.db(source), self.db(preserve))
            self.local.copy(self.db(target), self.db(source))  # Neon keeps the restore's source branch
            self.add(preserve)
            return httpx.Response(200, json={"branch": {"id": path.split("/")[2]}, "operations": self.op("restore")})
        if request.method == "DELETE" and path.startswith("/branches/"):
            name = self.branches.pop(path.split("/")[2])
            self.local.drop(self.db(name))
            return httpx.Response(200, json={"branch": {}, "operations": self.op("delete")})
        if request.method == "GET" and path.startswith("/operations/"):
            op_id = path.rsplit("/", 1)[1]
            status, action = self.ops[op_id]
            return httpx.Response(200, json={"operation": {"id": op_id, "status": status, "action": action,
                                                           **({"error": "restore failed"} if status == "failed"
                                                              else {})}})
        if request.method == "GET" and path == "/connection_uri":
            query = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
            return httpx.Response(200, json={"uri": self.local.url(self.db(self.branches[query["branch_id"]]))})
        return httpx.Response(404, json={"message": f"no fake route {request.method} {path}"})


@contextlib.contextmanager
def seeded_fake_neon(sandbox: SandboxState, *, employees_per_run: int, tag: str,
                     empty: tuple[str, ...] = ("staging",)) -> Iterator[FakeNeon]:
    """Neon's API faked over the sandbox's PostgreSQL: `main` seeded (2 tenants), each of `empty` an
    empty, migrated branch; every branch database is dropped at the end."""
    local = LocalBranchStore(sandbox.database_url("postgres", admin=True))
    main_url = sandbox.database_url("main", admin=True)
    clear(main_url)
    seed(main_url, tenants=2, employees_per_run=employees_per_run, tag=tag)
    neon = FakeNeon(local)
    try:
        local.copy("main", neon.db("main"))
        neon.add("main")
        for name in empty:
            local.copy("development", neon.db(name))
            neon.add(name)
        yield neon
    finally:
        for name in list(neon.branches.values()):
            local.drop(neon.db(name))


@pytest.fixture()
def fake(sandbox: SandboxState) -> Iterator[FakeNeon]:
    with seeded_fake_neon(sandbox, employees_per_run=40, tag="neon") as neon:
        yield neon


def run(fake: FakeNeon) -> usecase.RefreshReport:
    client = NeonClient("key", transport=httpx.MockTransport(fake), sleep=lambda s: None, poll_interval=0)
    store = NeonBranchStore(client, PROJECT, database="autoenroll", owner_role="autoenroll_owner")
    env = resolve("local")

    def smoke(url: str) -> str:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM employee_results").fetchone()
        return f"{row[0] if row else 0} rows readable"

    return usecase.refresh("neon-fake", store, S3ObjectStore(env.storage, "backups"), target="staging",
                           source="main", masking_key="test-key", smoke=smoke)


def test_neon_refresh_restores_a_masked_copy_and_preserves_the_old_state(fake: FakeNeon) -> None:
    report = run(fake)
    assert report.smoke == "80 rows readable"
    assert report.preserved_as in fake.branches.values()
    assert "staging_refresh_scratch" not in fake.branches.values()
    restores = [c for c in fake.calls if c.endswith("/restore")]
    assert len(restores) == 2  # the first met 423 Locked and was retried
    with psycopg.connect(fake.local.url(fake.db("staging"))) as conn:
        ppsns = [r[0] for r in conn.execute("SELECT ppsn FROM employee_results")]
    with psycopg.connect(fake.local.url(fake.db("main"))) as conn:
        source = {r[0] for r in conn.execute("SELECT ppsn FROM employee_results")}
    assert ppsns and not set(ppsns) & source and all(is_valid(p) for p in ppsns)


def test_a_failed_restore_operation_changes_nothing_and_a_rerun_completes(fake: FakeNeon) -> None:
    with psycopg.connect(fake.local.url(fake.db("staging"))) as conn:
        before = conn.execute("SELECT count(*), max(ppsn) FROM employee_results").fetchone()
    fake.fail_restore_op = True
    with pytest.raises(ProviderAPIError, match=r"Neon operation op-\d+ \(restore\) failed: restore failed"):
        run(fake)
    with psycopg.connect(fake.local.url(fake.db("staging"))) as conn:
        assert conn.execute("SELECT count(*), max(ppsn) FROM employee_results").fetchone() == before
    fake.fail_restore_op = False
    report = run(fake)
    assert report.resumed_from == "mask"
    assert report.smoke == "80 rows readable"
