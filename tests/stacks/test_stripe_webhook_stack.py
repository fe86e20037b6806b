"""The Stripe webhook endpoint: provider CRUD against Stripe's API shapes, and its place in the plan."""

from __future__ import annotations

import json

import pytest

from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH
from clients.errors import AuthError, ClientConfigError
from clients.stripe_api import STRIPE_API_VERSION, StripeClient
from stacks.plan import Plan
from stacks.providers import stripe as stripe_provider
from tests.stripe_fake import FakeStripe


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    fake = FakeStripe()
    monkeypatch.setattr(stripe_provider, "client_factory",
                        lambda: StripeClient(fake.api_key, transport=fake.transport(), sleep=lambda s: None))
    return fake


PROPS = {"url": "https://app.autoenroll.ie/api/billing/stripe-webhook", "enabled_events": list(HANDLED_EVENTS),
         "description": "autoenroll production", "secret": None, "status": None, "api_version": STRIPE_API_VERSION}


def test_every_call_and_the_endpoints_events_carry_the_pinned_api_version(fake: FakeStripe) -> None:
    """Neither our calls nor the events the app receives follow the account's default version."""
    provider = stripe_provider.StripeWebhookProvider()
    created = provider.create(PROPS)
    provider.read(created.id, created.outs)
    provider.update(created.id, created.outs, {**created.outs, "description": "renamed"})
    provider.delete(created.id, created.outs)
    assert len(fake.requests) == 4
    assert {r.headers.get("stripe-version") for r in fake.requests} == {STRIPE_API_VERSION}
    assert created.outs["api_version"] == STRIPE_API_VERSION  # set on create, as Stripe allows only there


def test_another_pinned_version_replaces_the_endpoint() -> None:
    provider = stripe_provider.StripeWebhookProvider()
    same = provider.diff("we_1", PROPS, dict(PROPS))
    assert not same.changes and not same.replaces
    moved = provider.diff("we_1", {**PROPS, "api_version": "2025-03-31.basil"}, dict(PROPS))
    assert moved.changes and moved.replaces == ["api_version"]
    # An endpoint made before the pin (events in the account's default version) is replaced too.
    unpinned = provider.diff("we_1", {k: v for k, v in PROPS.items() if k != "api_version"}, dict(PROPS))
    assert unpinned.replaces == ["api_version"]


def test_create_keeps_the_secret_stripe_returns_only_once(fake: FakeStripe) -> None:
    provider = stripe_provider.StripeWebhookProvider()
    created = provider.create(PROPS)
    assert created.outs["secret"].startswith("whsec_") and created.outs["status"] == "enabled"
    sent = fake.requests[-1]
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.content.decode().count("enabled_events%5B%5D=") == len(HANDLED_EVENTS)
    # A read returns no secret (Stripe omits it); the state's copy must survive.
    read = provider.read(created.id, created.outs)
    assert read.outs["secret"] == created.outs["secret"]
    assert read.outs["enabled_events"] == list(HANDLED_EVENTS)


def test_changed_events_update_in_place_and_keep_the_secret(fake: FakeStripe) -> None:
    provider = stripe_provider.StripeWebhookProvider()
    created = provider.create(PROPS)
    news = {**PROPS, "enabled_events": [*HANDLED_EVENTS, "invoice.paid"]}
    diff = provider.diff(created.id, created.outs, news)
    assert diff.changes and not diff.replaces
    updated = provider.update(created.id, created.outs, news)
    assert updated.outs["secret"] == created.outs["secret"]
    assert fake.endpoints[created.id]["enabled_events"] == news["enabled_events"]
    assert not provider.diff(created.id, updated.outs, news).changes


def test_an_endpoint_disabled_in_the_dashboard_is_re_enabled(fake: FakeStripe) -> None:
    provider = stripe_provider.StripeWebhookProvider()
    created = provider.create(PROPS)
    fake.endpoints[created.id]["status"] = "disabled"
    read = provider.read(created.id, created.outs)
    assert provider.diff(created.id, read.outs, PROPS).changes
    provider.update(created.id, read.outs, PROPS)
    assert fake.endpoints[created.id]["status"] == "enabled"


def test_delete_is_idempotent_and_a_gone_endpoint_reads_as_none(fake: FakeStripe) -> None:
    provider = stripe_provider.StripeWebhookProvider()
    created = provider.create(PROPS)
    provider.delete(created.id, created.outs)
    provider.delete(created.id, created.outs)  # already gone: no error
    assert provider.read(created.id, created.outs).id is None


def test_errors_name_stripe_and_carry_the_request_id() -> None:
    fake = FakeStripe()
    client = StripeClient("sk_test_wrong", transport=fake.transport(), sleep=lambda s: None)
    with pytest.raises(AuthError, match="Invalid API Key") as caught:
        client.create_webhook_endpoint("https://x", ["a"], "d")
    assert caught.value.request_id and caught.value.request_id.startswith("req_")
    assert "sk_test_wrong" not in str(caught.value)


def test_missing_api_key_is_a_named_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ClientConfigError, match="STRIPE_API_KEY"):
        StripeClient.from_environ()


@pytest.mark.parametrize("plan_name", ["staging_plan", "production_plan"])
def test_the_plan_subscribes_the_apps_url_to_the_handled_events(plan_name: str, request: pytest.FixtureRequest) -> None:
    plan: Plan = request.getfixturevalue(plan_name)
    endpoints = [r for r in plan.resources if r.props.get("enabled_events") is not None]
    assert len(endpoints) == 1
    props = endpoints[0].props
    assert props["url"] == plan.outputs["public_url"] + WEBHOOK_PATH
    assert props["enabled_events"] == list(HANDLED_EVENTS)
    # The whole output is secret (it carries the signing secret), and nothing of it leaks in plain.
    assert "stripe_webhook" in plan.secret_outputs
    assert "whsec_" not in json.dumps(plan.to_json())
    # The app's environment carries it as a secret stack output that `ops deploy` writes to each host
    # over SSH; the servers' user data never holds it (secrets left cloud-init).
    assert "app_env" in plan.secret_outputs and "STRIPE_WEBHOOK_SECRET" in plan.outputs["app_env"]
    assert "STRIPE_WEBHOOK_SECRET" not in json.dumps([r.props for r in plan.resources if r.type.startswith("hcloud:")])
