"""`main`'s read replica: where the phase's Neon plan has read replicas (plans.json `read_replicas`), the
production stack makes a read_only endpoint on `main`, exports the app's URL through it (secret) and puts
it in the app's environment as DATABASE_REPLICA_URL; staging (which does not own `main`) makes none. The
provider is driven against a Neon fake at the HTTP transport answering with Neon's published shapes."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from autoenroll.contract import REPLICA_ENV_VAR
from stacks import plans
from stacks.config import StackConfigError, parse_config
from stacks.plan import Plan, namespaced_config
from stacks.policies import DYNAMIC, ResourceView, fits_the_plan
from stacks.providers import neon as neon_provider
from tests.stacks.test_providers import FakeNeon, serve_neon_fake

pytestmark = pytest.mark.stacks


def replicas(plan: Plan) -> list[Any]:
    return [r for r in plan.resources if r.type == DYNAMIC and r.props.get("endpoint_type") == "read_only"]


def test_the_plan_table_says_which_neon_plans_have_read_replicas() -> None:
    assert plans.plan_limit("neon", "free", "read_replicas").value == 3
    assert plans.plan_limit("neon", "launch", "read_replicas").value is None  # no limit stated
    assert "read-replica" in plans.plan_limit("neon", "free", "read_replicas").source


def test_production_makes_a_read_only_endpoint_on_main_and_gives_the_app_its_url(production_plan: Plan) -> None:
    made = replicas(production_plan)
    assert [r.name for r in made] == ["database-main-replica"]
    main = next(r for r in production_plan.resources if r.name == "database-main")
    replica = made[0]
    assert replica.props["branch_id"] == main.props["adopt_id"] and replica.protect  # on `main`, protected
    # Free refuses any explicit scale-to-zero delay: none is sent for the replica either.
    assert replica.props.get("suspend_timeout_seconds") is None
    url = production_plan.outputs["read_replica_url"]
    assert production_plan.outputs["app_env"][REPLICA_ENV_VAR] == url
    parts = urlsplit(url)
    assert parts.username == "autoenroll_app" and "replica" in (parts.hostname or "")
    assert parts.hostname != urlsplit(production_plan.outputs["app_env"]["DATABASE_URL"]).hostname
    assert "read_replica_url" in production_plan.secret_outputs and "app_env" in production_plan.secret_outputs
    assert production_plan.passed  # fits the plan, no secret in clear text


def test_staging_makes_none_and_its_app_reads_from_its_branch_alone(staging_plan: Plan) -> None:
    assert replicas(staging_plan) == []
    assert staging_plan.outputs["read_replica_url"] is None
    assert REPLICA_ENV_VAR not in staging_plan.outputs["app_env"]


def test_a_replica_asked_of_a_stack_that_does_not_own_main_is_refused_naming_the_key() -> None:
    raw = copy.deepcopy(namespaced_config("staging"))
    raw["database"] = {**raw["database"], "read_replica": True}
    with pytest.raises(StackConfigError, match=r"^database\.read_replica: needs database\.owns_project"):
        parse_config(raw, "staging")


def test_more_read_replicas_than_the_free_plan_holds_fail_fits_the_plan() -> None:
    phase = ResourceView("hcloud:index/network:Network", "net", {"labels": {"phase": "pre-revenue"}})
    made = [ResourceView(DYNAMIC, f"replica-{n}", {"endpoint_type": "read_only", "project_id": "p"}) for n in range(4)]
    violations = fits_the_plan("production", [phase, *made])
    assert [v for v in violations if v.startswith("replica-3: read replicas in the project = 4")
            and "neon free read_replicas" in v], violations
    assert fits_the_plan("production", [phase, *made[:3]]) == []
    growth = ResourceView("hcloud:index/network:Network", "net", {"labels": {"phase": "growth"}})
    assert fits_the_plan("production", [growth, *made]) == []


class ReplicaNeon(FakeNeon):
    """FakeNeon plus Neon's endpoint routes: POST /projects/{id}/endpoints answers {endpoint, operations}
    (EndpointOperations in Neon's OpenAPI), GET/DELETE /endpoints/{id}, and connection_uri's endpoint_id."""

    def __init__(self) -> None:
        super().__init__()
        self.endpoints: dict[str, dict[str, Any]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path.removeprefix("/api/v2"), request.method
        if method == "POST" and path == "/projects/p-1/endpoints":
            self.requests.append((method, path, json.loads(request.content)))
            body = json.loads(request.content)["endpoint"]
            endpoint = {"id": "ep-replica-1", "host": "ep-replica-1.eu-central-1.aws.neon.tech",
                        "project_id": "p-1", "region_id": "aws-eu-central-1", "current_state": "init",
                        "pending_state": "active", "pooler_mode": "transaction", **body}
            self.endpoints[str(endpoint["id"])] = endpoint
            return httpx.Response(201, json={"endpoint": endpoint,
                                             "operations": [self.op("op-9", "start_compute", ["finished"])]})
        if path.startswith("/projects/p-1/endpoints/") and method in ("GET", "DELETE"):
            self.requests.append((method, path, None))
            endpoint = self.endpoints.get(path.rsplit("/", 1)[1])
            if endpoint is None:
                return httpx.Response(404, json={"code": "", "message": "endpoint not found"})
            if method == "DELETE":
                del self.endpoints[endpoint["id"]]
                return httpx.Response(200, json={"endpoint": endpoint, "operations": []})
            return httpx.Response(200, json={"endpoint": endpoint})
        if method == "GET" and path == "/projects/p-1/connection_uri" and "endpoint_id" in request.url.params:
            self.requests.append((method, path, dict(request.url.params)))
            q = dict(request.url.params)
            host = self.endpoints[q["endpoint_id"]]["host"]
            if q["pooled"] == "true":
                host = host.replace(".", "-pooler.", 1)
            return httpx.Response(200, json={"uri": f"postgresql://{q['role_name']}:npg_owner@{host}/"
                                                    f"{q['database_name']}?sslmode=require&channel_binding=require"})
        return super().__call__(request)


@pytest.fixture()
def neon(monkeypatch: pytest.MonkeyPatch) -> ReplicaNeon:
    fake = ReplicaNeon()
    serve_neon_fake(monkeypatch, fake)
    return fake


PROPS = {"project_id": "p-1", "branch_id": "br-main", "endpoint_type": "read_only", "autoscaling_limit_min_cu": 0.25,
         "autoscaling_limit_max_cu": 2, "suspend_timeout_seconds": None, "database_name": "autoenroll",
         "app_role": "autoenroll_app", "owner_role_name": "autoenroll_owner", "app_password": "app-pw/+1"}


def test_the_provider_creates_a_read_only_endpoint_and_the_apps_url_through_it(neon: ReplicaNeon) -> None:
    provider = neon_provider.NeonReadReplicaProvider()
    made = provider.create(dict(PROPS))
    outs = made.outs
    assert outs is not None
    sent = next(b for m, p, b in neon.requests if m == "POST" and p == "/projects/p-1/endpoints")
    assert sent == {"endpoint": {"branch_id": "br-main", "type": "read_only", "autoscaling_limit_min_cu": 0.25,
                                 "autoscaling_limit_max_cu": 2.0}}  # no suspend_timeout_seconds: Free refuses it
    assert any(p == "/projects/p-1/operations/op-9" for _m, p, _b in neon.requests)  # waited for the compute
    assert made.id == "ep-replica-1"
    url = urlsplit(outs["pooled_uri"])
    assert (url.username, url.password) == ("autoenroll_app", "app-pw%2F%2B1")  # the app's role, never the owner's
    assert url.hostname == "ep-replica-1-pooler.eu-central-1.aws.neon.tech" and "channel_binding=require" in url.query
    assert "npg_owner" not in outs["pooled_uri"]
    assert provider.read(made.id, outs).outs["pooled_uri"] == outs["pooled_uri"]
    assert provider.diff(made.id, outs, {**outs, "branch_id": "br-other"}).replaces == ["branch_id"]
    assert provider.diff(made.id, outs, {**outs, "autoscaling_limit_max_cu": 1}).replaces == []
    provider.delete(made.id, outs)
    assert provider.read(made.id, outs).id is None  # gone: Pulumi drops it from state
