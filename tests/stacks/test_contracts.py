"""A contract test per provider call: every request the dynamic providers and the ops API clients
send is checked against the provider's published description (Neon: its OpenAPI v2, vendored and
trimmed in tests/stacks/contracts/) or, where none can be read here, against what the provider's
documentation (Stripe, Cloudflare) or its own Terraform schema (BetterStack) records.

The dynamic providers are driven with the inputs the program really registers (from the plan
under mocks: numbers arrive as doubles, as Pulumi carries them), so `60.0` for an integer fails.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from clients.betterstack_api import BetterStackClient
from clients.cloudflare_api import CloudflareClient
from clients.errors import OutcomeUnknown
from clients.neon_api import NeonClient
from clients.stripe_api import StripeClient
from stacks.plan import Plan
from stacks.policies import DYNAMIC
from stacks.providers import betterstack as betterstack_provider
from stacks.providers import neon as neon_provider
from stacks.providers import stripe as stripe_provider
from tests.stacks.contracts.check import Sent, check_fields, check_openapi, check_recorded, load, sent

pytestmark = pytest.mark.stacks

NEON = load("neon-openapi-v2.json")["openapi"]
BETTERSTACK = load("betterstack-uptime-fields.json")["kinds"]
STRIPE = load("stripe-webhook-endpoints.json")
CLOUDFLARE = load("cloudflare-api-v4.json")

# One answer that has what every route's caller reads: the calls are checked, not the answers.
NEON_ANSWER = {
    "project": {"id": "p-1", "name": "autoenroll", "region_id": "aws-eu-central-1", "pg_version": 16},
    "branch": {"id": "br-1", "name": "main", "protected": False},
    "branches": [{"id": "br-1", "name": "main"}],
    "endpoints": [{"id": "ep-1", "type": "read_write", "host": "ep-1.eu-central-1.aws.neon.tech"}],
    "endpoint": {"id": "ep-1", "host": "ep-1.eu-central-1.aws.neon.tech"},
    "operation": {"id": "op-1", "status": "finished"}, "operations": [],
    "role": {"name": "r"}, "database": {"name": "d"}, "password": "pw", "uri": "postgresql://r:pw@h/d",
}


class Recorder:
    def __init__(self, base_path: str, answer: Any) -> None:
        self.base_path, self.answer, self.requests = base_path, answer, list[Sent]()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(sent(request, self.base_path))
        return httpx.Response(200, json=self.answer)


def _plan_props(plan: Plan, accept: Callable[[dict[str, Any]], bool]) -> Iterator[dict[str, Any]]:
    for r in plan.resources:
        if r.type == DYNAMIC and accept(r.props):
            yield dict(r.props)


def _public_methods(cls: type) -> set[str]:
    return {n for n, f in vars(cls).items() if inspect.isfunction(f) and not n.startswith("_")}


def _called(recorder: Recorder, check: Callable[[Sent], list[str]]) -> None:
    assert recorder.requests
    problems = [p for r in recorder.requests for p in check(r)]
    assert problems == []


@pytest.fixture()
def neon(monkeypatch: pytest.MonkeyPatch) -> tuple[Recorder, NeonClient]:
    recorder = Recorder("/api/v2", NEON_ANSWER)
    client = NeonClient("key", transport=httpx.MockTransport(recorder), sleep=lambda _s: None, poll_interval=0)
    monkeypatch.setattr(neon_provider, "client_factory", lambda: client)
    return recorder, client


def test_neon_provider_and_client_calls_fit_neons_openapi(neon: tuple[Recorder, NeonClient], production_plan: Plan,
                                                          staging_plan: Plan) -> None:
    recorder, client = neon
    project = next(_plan_props(production_plan, lambda p: "region_id" in p))
    created = neon_provider.NeonProjectProvider().create(project)
    neon_provider.NeonProjectProvider().update(created.id, created.outs, {**created.outs, "name": "renamed"})
    neon_provider.NeonProjectProvider().read(created.id, created.outs)
    branches = [*_plan_props(production_plan, lambda p: "min_cu" in p),
                *_plan_props(staging_plan, lambda p: "min_cu" in p)]
    assert any(b.get("adopt_id") for b in branches) and any(not b.get("adopt_id") for b in branches)
    for props in branches:
        props = {**props, "project_id": "p-1", "parent_id": props.get("parent_id") and "br-1"}
        made = neon_provider.NeonBranchProvider().create(props)
        neon_provider.NeonBranchProvider().update(made.id, made.outs, made.outs)
        neon_provider.NeonBranchProvider().read(made.id, made.outs)
        neon_provider.NeonBranchProvider().delete(made.id, made.outs)
    for props in _plan_props(production_plan, lambda p: "database" in p):
        neon_provider.NeonDatabaseProvider().create({**props, "project_id": "p-1", "branch_id": "br-1"})
    replicas = list(_plan_props(production_plan, lambda p: p.get("endpoint_type") == "read_only"))
    assert len(replicas) == 1  # `main`'s, in the pre-revenue phase (Neon Free allows 3)
    for props in replicas:
        props = {**props, "project_id": "p-1", "branch_id": "br-1", "app_password": "pw"}
        made = neon_provider.NeonReadReplicaProvider().create(props)
        neon_provider.NeonReadReplicaProvider().update(made.id, made.outs, made.outs)
        neon_provider.NeonReadReplicaProvider().read(made.id, made.outs)
        neon_provider.NeonReadReplicaProvider().delete(made.id, made.outs)
    # What ops calls beyond the provider (refresh, restore, passwords).
    client.find_branch("p-1", "staging")
    client.restore_branch("p-1", "br-2", source_branch_id="br-1", preserve_under_name="staging_old",
                          source_timestamp="2026-12-01T00:00:00Z")
    client.reveal_password("p-1", "br-1", "autoenroll_owner")
    client.delete_project("p-1")
    used = {r.path for r in recorder.requests}
    assert "/projects" in used and "/projects/p-1/connection_uri" in used
    assert {(r.method, r.path) for r in recorder.requests} >= {
        ("POST", "/projects/p-1/endpoints"), ("GET", "/projects/p-1/endpoints/ep-1"),
        ("DELETE", "/projects/p-1/endpoints/ep-1")}
    _called(recorder, lambda r: check_openapi(NEON, r))


def test_every_neon_client_method_is_exercised_above() -> None:
    exercised = {"wait", "create_project", "get_project", "update_project", "delete_project", "list_branches",
                 "find_branch", "get_branch", "create_branch", "update_branch", "delete_branch", "restore_branch",
                 "branch_endpoints", "update_endpoint", "create_endpoint", "get_endpoint", "delete_endpoint",
                 "create_role", "reveal_password", "create_database", "connection_uri"}
    assert _public_methods(NeonClient) == exercised, "a new Neon call needs its contract check"


def test_a_neon_body_the_description_refuses_is_caught() -> None:
    bad = Sent("POST", "/projects", [], {}, b'{"project": {"name": "a", "history_retention_seconds": 21600.0, '
                                           b'"region": "eu"}}')
    problems = check_openapi(NEON, bad)
    assert any("history_retention_seconds: 21600.0 is not an integer" in p for p in problems)
    assert any("project.region: not in the description" in p for p in problems)


def test_betterstack_calls_fit_its_terraform_schema(monkeypatch: pytest.MonkeyPatch, production_plan: Plan) -> None:
    recorder = Recorder("/api/v2", {"data": {"id": "1", "attributes": {"url": "https://uptime.betterstack.com/x"}}})
    client = BetterStackClient("token", transport=httpx.MockTransport(recorder), sleep=lambda _s: None)
    monkeypatch.setattr(betterstack_provider, "client_factory", lambda: client)
    resources = list(_plan_props(production_plan, lambda p: p.get("kind") in BETTERSTACK))
    assert {p["kind"] for p in resources} == {"monitors", "heartbeats", "status-pages"}
    assert any(isinstance(v, float) for p in resources for v in p["attributes"].values())  # as Pulumi sends them
    for props in resources:
        made = betterstack_provider.BetterStackProvider().create(props)
        betterstack_provider.BetterStackProvider().update(made.id, made.outs, props)
        betterstack_provider.BetterStackProvider().read(made.id, made.outs)
        betterstack_provider.BetterStackProvider().delete(made.id, made.outs)
    _called(recorder, lambda r: check_fields(BETTERSTACK, r))
    assert _public_methods(BetterStackClient) == {"create", "get", "update", "delete"}


def test_stripe_calls_fit_its_documented_parameters(monkeypatch: pytest.MonkeyPatch, production_plan: Plan) -> None:
    recorder = Recorder("", {"id": "we_1", "secret": "whsec_x", "status": "enabled", "url": "u",
                                "enabled_events": [], "description": "d"})
    client = StripeClient("sk_test", transport=httpx.MockTransport(recorder), sleep=lambda _s: None)
    monkeypatch.setattr(stripe_provider, "client_factory", lambda: client)
    props = next(_plan_props(production_plan, lambda p: "enabled_events" in p))
    made = stripe_provider.StripeWebhookProvider().create(props)
    stripe_provider.StripeWebhookProvider().update(made.id, made.outs, props)
    stripe_provider.StripeWebhookProvider().read(made.id, made.outs)
    stripe_provider.StripeWebhookProvider().delete(made.id, made.outs)
    _called(recorder, lambda r: check_recorded(STRIPE, r))
    assert _public_methods(StripeClient) == {"create_webhook_endpoint", "get_webhook_endpoint",
                                             "update_webhook_endpoint", "delete_webhook_endpoint"}


def test_cloudflare_calls_fit_its_documented_parameters() -> None:
    recorder = Recorder("/client/v4", {"success": True, "errors": [], "result": [{"id": "r"}]})
    client = CloudflareClient("token", transport=httpx.MockTransport(recorder))
    client.dns_records("zone", "app.autoenroll.ie", "A")
    recorder.answer = {"success": True, "errors": [], "result": {"id": "ssl", "value": "strict"}}
    client.zone_setting("zone", "ssl")
    recorder.answer = {"success": True, "errors": [], "result": {"id": "r", "name": "app.autoenroll.ie",
                                                                   "type": "A", "content": "192.0.2.1",
                                                                   "proxied": True, "ttl": 1}}
    client.dns_record("zone", "r")
    client.edit_dns_record("zone", "r", name="app.autoenroll.ie", content="192.0.2.2", proxied=True)
    _called(recorder, lambda r: check_recorded(CLOUDFLARE, r))
    # get/get_or_none: doctor's read-only probes by path (token, R2, Pages, rulesets), checked in test_doctor.
    typed = {"dns_records", "dns_record", "edit_dns_record", "zone_setting"}
    assert _public_methods(CloudflareClient) == typed | {"get", "get_or_none", "close"}, \
        "a new call needs its contract"


def test_a_post_that_timed_out_is_retried_only_with_an_idempotency_key() -> None:
    attempts: list[httpx.Request] = []

    def first_times_out(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"id": "we_1", "secret": "whsec_x", **NEON_ANSWER})

    stripe = StripeClient("sk_test", transport=httpx.MockTransport(first_times_out), sleep=lambda _s: None)
    stripe.create_webhook_endpoint("https://x/y", ["a"], "d")
    assert len(attempts) == 2
    assert attempts[0].headers["idempotency-key"] == attempts[1].headers["idempotency-key"]

    attempts.clear()
    neon = NeonClient("key", transport=httpx.MockTransport(first_times_out), sleep=lambda _s: None)
    with pytest.raises(OutcomeUnknown, match="not retried"):
        neon.create_branch("p-1", name="staging", parent_id="br-1", endpoint=None)
    assert len(attempts) == 1  # Neon has no idempotency key: a second POST could make a second branch
    attempts.clear()
    neon.list_branches("p-1")  # a GET is retried as before
    assert len(attempts) == 2
