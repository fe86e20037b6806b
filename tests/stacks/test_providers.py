"""The dynamic providers against HTTP fakes answering with the shapes in the providers' API docs:
operation polling, 423 Locked, 429 with Retry-After, a failed operation, and CRUD for BetterStack."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from clients.betterstack_api import BetterStackClient
from clients.errors import ClientConfigError, ClientError, OperationFailed, ServerError
from clients.neon_api import NeonClient
from stacks.providers import betterstack as bs_provider
from stacks.providers import neon as neon_provider
from tests.betterstack_fake import FakeBetterStack

pytestmark = pytest.mark.stacks
Handler = Callable[[httpx.Request], httpx.Response]


class FakeNeon:
    """Neon API v2 as documented: resources in `{"project": ...}` envelopes, async `operations`."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self.operation_polls: dict[str, list[str]] = {}
        self.fail_next: dict[str, httpx.Response] = {}
        self.branches: dict[str, dict[str, Any]] = {
            "br-main": {"id": "br-main", "name": "main", "project_id": "p-1", "protected": False}}

    def op(self, op_id: str, action: str, statuses: list[str]) -> dict[str, Any]:
        self.operation_polls[op_id] = statuses
        return {"id": op_id, "action": action, "status": "running", "project_id": "p-1"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path.removeprefix("/api/v2"), request.method
        body = json.loads(request.content) if request.content else None
        self.requests.append((method, path, body))
        key = f"{method} {path}"
        if key in self.fail_next:
            return self.fail_next.pop(key)
        if method == "POST" and path == "/projects":
            return httpx.Response(201, json={
                "project": {"id": "p-1", "name": body["project"]["name"], "region_id": body["project"]["region_id"],
                            "pg_version": body["project"]["pg_version"]},
                "branch": {"id": "br-main", "name": "main"},
                "endpoints": [{"id": "ep-main", "host": "ep-main.eu-central-1.aws.neon.tech", "type": "read_write"}],
                "operations": [self.op("op-1", "create_timeline", ["running", "finished"])]})
        if method == "GET" and path.startswith("/projects/p-1/operations/"):
            op_id = path.rsplit("/", 1)[1]
            status = self.operation_polls[op_id].pop(0)
            op = {"id": op_id, "status": status, "action": "x"}
            if status == "failed":
                op["error"] = "compute start failed"
            return httpx.Response(200, json={"operation": op})
        if method == "POST" and path == "/projects/p-1/branches":
            branch = {"id": "br-staging", "name": body["branch"]["name"], "parent_id": body["branch"].get("parent_id")}
            self.branches[branch["id"]] = branch
            return httpx.Response(201, json={
                "branch": branch,
                "endpoints": [{"id": "ep-staging", "host": "ep-staging.neon.tech", "type": "read_write",
                               **body["endpoints"][0]}],
                "operations": [self.op("op-2", "create_branch", ["finished"])]})
        if method == "PATCH" and path.startswith("/projects/p-1/branches/"):
            return httpx.Response(200, json={"branch": {"id": path.rsplit("/", 1)[1]}, "operations": []})
        if method == "GET" and path == "/projects/p-1/branches/br-main/endpoints":
            return httpx.Response(200, json={"endpoints": [{"id": "ep-main", "type": "read_write",
                                                            "host": "ep-main.eu-central-1.aws.neon.tech"}]})
        if method == "PATCH" and path.startswith("/projects/p-1/endpoints/"):
            return httpx.Response(200, json={"endpoint": {"id": "ep-main"},
                                             "operations": [self.op("op-3", "apply_config", ["finished"])]})
        if method == "POST" and path.endswith("/restore"):
            return httpx.Response(200, json={"branch": {"id": path.split("/")[-2]},
                                             "operations": [self.op("op-4", "restore", ["running", "failed"])]})
        if method == "POST" and path == "/projects/p-1/branches/br-main/roles":
            # Neon: "roles created through the API are members of neon_superuser" (Manage roles).
            role = {"name": body["role"]["name"], "branch_id": "br-main", "password": "npg_owner"}
            return httpx.Response(201, json={"role": role, "operations": []})
        if method == "POST" and path == "/projects/p-1/branches/br-main/databases":
            return httpx.Response(201, json={"database": {**body["database"], "branch_id": "br-main"},
                                             "operations": []})
        if method == "GET" and path == "/projects/p-1/connection_uri":
            q = dict(request.url.params)
            host = "ep-main-pooler.eu-central-1.aws.neon.tech" if q["pooled"] == "true" else "ep-main.neon.tech"
            return httpx.Response(200, json={"uri": f"postgresql://{q['role_name']}:npg_owner@{host}/"
                                                    f"{q['database_name']}?sslmode=require&channel_binding=require"})
        if method == "GET" and path.startswith("/projects/p-1/branches/"):
            branch = self.branches.get(path.rsplit("/", 1)[1])
            if branch is None:
                return httpx.Response(404, json={"code": "", "message": "branch not found"},
                                      headers={"x-neon-ret-request-id": "req-404"})
            return httpx.Response(200, json={"branch": branch})
        return httpx.Response(500, json={"message": f"fake has no route {key}"})


@pytest.fixture()
def neon(monkeypatch: pytest.MonkeyPatch) -> FakeNeon:
    fake = FakeNeon()
    sleeps: list[float] = []
    fake.sleeps = sleeps  # type: ignore[attr-defined]
    serve_neon_fake(monkeypatch, fake, sleep=sleeps.append)
    return fake


def serve_neon_fake(monkeypatch: pytest.MonkeyPatch, fake: FakeNeon,
                    sleep: Callable[[float], None] = lambda _s: None) -> None:
    """The Neon provider's client, talking to `fake` at the HTTP transport (fast polling, fixed seed)."""
    monkeypatch.setattr(neon_provider, "client_factory",
                        lambda: NeonClient("test-key", transport=httpx.MockTransport(fake), sleep=sleep,
                                           poll_interval=0.01, seed=1))


def test_project_create_waits_for_its_operations(neon: FakeNeon) -> None:
    result = neon_provider.NeonProjectProvider().create(
        {"name": "autoenroll", "org_id": "org-1", "region_id": "aws-eu-central-1", "pg_version": 16,
         "history_retention_seconds": 604800})
    assert result.id == "p-1" and result.outs["default_branch_id"] == "br-main"
    polls = [r for r in neon.requests if r[1] == "/projects/p-1/operations/op-1"]
    assert len(polls) == 2  # running, then finished
    sent = neon.requests[0][2]["project"]
    assert sent["region_id"] == "aws-eu-central-1" and sent["history_retention_seconds"] == 604800
    assert sent["org_id"] == "org-1"


def test_branch_create_retries_423_locked_and_429_with_retry_after(neon: FakeNeon) -> None:
    neon.fail_next["POST /projects/p-1/branches"] = httpx.Response(423, json={"message": "project locked"})
    provider = neon_provider.NeonBranchProvider()
    result = provider.create({"project_id": "p-1", "name": "staging", "parent_id": "br-main", "min_cu": 0.25,
                              "max_cu": 1, "suspend_timeout_seconds": 300, "protected": False})
    assert result.outs["endpoint_id"] == "ep-staging"
    assert [r[1] for r in neon.requests].count("/projects/p-1/branches") == 2
    endpoint = [r for r in neon.requests if r[0] == "POST"][-1][2]["endpoints"][0]
    assert endpoint == {"type": "read_write", "autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 1.0,
                        "suspend_timeout_seconds": 300}

    neon.fail_next["GET /projects/p-1/branches/br-staging"] = httpx.Response(
        429, headers={"Retry-After": "7"}, json={"message": "rate limited"})
    read = provider.read("br-staging", result.outs)
    assert read.id == "br-staging"
    assert 7.0 in neon.sleeps  # type: ignore[attr-defined]


def test_adopting_the_default_branch_updates_instead_of_creating(neon: FakeNeon) -> None:
    result = neon_provider.NeonBranchProvider().create(
        {"project_id": "p-1", "name": "main", "parent_id": None, "adopt_id": "br-main", "min_cu": 0.25,
         "max_cu": 2, "suspend_timeout_seconds": 0, "protected": True})
    assert result.id == "br-main"
    assert not any(m == "POST" and p == "/projects/p-1/branches" for m, p, _ in neon.requests)


def test_a_failed_operation_raises_naming_it(neon: FakeNeon) -> None:
    client = neon_provider.client_factory()
    with pytest.raises(OperationFailed, match=r"op-4 .* failed: compute start failed"):
        client.restore_branch("p-1", "br-staging", source_branch_id="br-main", preserve_under_name="staging_old")
    restore = next(r for r in neon.requests if r[1].endswith("/restore"))
    assert restore[2] == {"source_branch_id": "br-main", "preserve_under_name": "staging_old"}


def test_errors_carry_the_request_id_and_reads_of_gone_resources_return_none(neon: FakeNeon) -> None:
    read = neon_provider.NeonBranchProvider().read("br-gone", {"project_id": "p-1"})
    assert read.id is None
    neon.fail_next["GET /projects/p-1/branches/br-main"] = httpx.Response(
        400, json={"message": "bad"}, headers={"x-neon-ret-request-id": "req-42"})
    with pytest.raises(ClientError, match=r"HTTP 400, request id req-42"):
        neon_provider.client_factory().get_branch("p-1", "br-main")


def test_gives_up_after_bounded_retries(neon: FakeNeon) -> None:
    client = NeonClient("k", transport=httpx.MockTransport(lambda r: httpx.Response(503)), sleep=lambda s: None,
                        max_attempts=3)
    with pytest.raises(ServerError, match="HTTP 503"):
        client.list_branches("p-1")
    assert client.retries == 2


def test_diff_replaces_only_what_cannot_change_in_place() -> None:
    provider = neon_provider.NeonProjectProvider()
    olds = {"name": "a", "region_id": "aws-eu-central-1", "pg_version": 16, "history_retention_seconds": 1}
    assert provider.diff("p", olds, {**olds, "history_retention_seconds": 2}).replaces == []
    assert provider.diff("p", olds, {**olds, "pg_version": 17}).replaces == ["pg_version"]
    assert provider.diff("p", olds, dict(olds)).changes is False


def test_api_key_missing_is_a_named_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEON_API_KEY", raising=False)
    with pytest.raises(ClientConfigError, match="NEON_API_KEY"):
        NeonClient.from_environ()


def test_betterstack_heartbeat_crud(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeBetterStack()
    monkeypatch.setattr(bs_provider, "client_factory",
                        lambda: BetterStackClient("t", transport=httpx.MockTransport(fake), sleep=lambda s: None))
    provider = bs_provider.BetterStackProvider()
    props = {"kind": "heartbeats", "attributes": {"name": "nightly backup", "period": 86400, "grace": 7200}}
    created = provider.create(props)
    assert created.outs["url"].startswith("https://uptime.betterstack.com/api/v1/heartbeat/")
    changed = {**props, "attributes": {**props["attributes"], "grace": 3600}}
    assert provider.diff(created.id, created.outs, changed).changes
    provider.update(created.id, created.outs, changed)
    assert provider.read(created.id, changed).outs["attributes"]["grace"] == 3600
    provider.delete(created.id, changed)
    assert provider.read(created.id, changed).id is None
    provider.delete(created.id, changed)  # deleting twice is fine


def test_only_the_owner_role_is_made_through_neons_api(neon: FakeNeon) -> None:
    """Neon makes every API role a member of neon_superuser (BYPASSRLS): the app's role is made in SQL by
    `ops db migrate`, so the stack makes only the owner, and the app's pooled URI carries our role and a
    password of its own, with Neon's TLS parameters."""
    from urllib.parse import urlsplit

    made = neon_provider.NeonDatabaseProvider().create(
        {"project_id": "p-1", "branch_id": "br-main", "database": "autoenroll", "role": "autoenroll_app",
         "owner_role": "autoenroll_owner", "inherited": False})
    roles = [body["role"]["name"] for method, path, body in neon.requests if path.endswith("/roles")]
    assert roles == ["autoenroll_owner"]
    pooled = urlsplit(made.outs["pooled_uri"])
    assert (pooled.username, pooled.hostname) == ("autoenroll_app", "ep-main-pooler.eu-central-1.aws.neon.tech")
    assert pooled.password == made.outs["app_password"] and len(pooled.password or "") >= 32
    assert pooled.query == "sslmode=require&channel_binding=require"
    again = neon_provider.NeonDatabaseProvider().read(made.id, made.outs)
    assert again.outs["pooled_uri"] == made.outs["pooled_uri"]  # the password is kept, not made anew
