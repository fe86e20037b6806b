"""`ops checklist`'s Stripe item against a cloud-shaped environment: Stripe's API (faked at the
transport) says how the endpoint is registered, the sandbox's app answers the signed probes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from pydantic import SecretStr

from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH
from ops import checklist, wiring
from ops.adapters.cloud import checklist as checklist_cloud
from ops.adapters.cloud.clients import StripeClient
from ops.environment import Environment, StripeWebhook
from ops.sandbox.state import SandboxState
from ops.wiring import resolve
from tests.stripe_fake import FakeStripe

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_rate_limits(sandbox: SandboxState) -> None:
    """Each probe signs in once; earlier tests' sign-ins (same address, same minute) must not count."""
    import redis

    client = redis.Redis.from_url(sandbox.redis_url())
    for key in client.scan_iter("rate:*"):
        client.delete(key)


@pytest.fixture()
def stripe(monkeypatch: pytest.MonkeyPatch) -> FakeStripe:
    fake = FakeStripe()
    monkeypatch.setattr(StripeClient, "from_environ",
                        classmethod(lambda cls: StripeClient(fake.api_key, transport=fake.transport(),
                                                             sleep=lambda s: None)))
    return fake


def stripe_item(env: Environment) -> tuple[str, str]:
    """The Stripe item on the sandbox's app, its registration asked of Stripe as a cloud environment's is."""
    ports = replace(wiring.checklist_ports(env),
                    stripe_registration=lambda endpoint_id: checklist_cloud.stripe_registration(env, endpoint_id))
    return checklist.run_item(checklist._stripe, env, ports)


def cloud_like(sandbox: SandboxState, endpoint_id: str) -> Environment:
    hook = StripeWebhook(endpoint_id=endpoint_id, secret=SecretStr(sandbox.stripe_webhook_secret))
    return resolve("local").model_copy(update={"stripe_webhook": hook})


def test_a_registered_endpoint_and_a_verifying_app_pass(sandbox: SandboxState, stripe: FakeStripe) -> None:
    endpoint = stripe.add(sandbox.public_url() + WEBHOOK_PATH, list(HANDLED_EVENTS))
    status, evidence = stripe_item(cloud_like(sandbox, endpoint["id"]))
    assert status == "pass", evidence
    assert f"Stripe endpoint {endpoint['id']}" in evidence
    assert "unsigned -> 400, wrong secret -> 400" in evidence and "redelivered -> duplicate" in evidence


@pytest.mark.parametrize("breakage, named", [
    (lambda e: e.update(status="disabled"), "status disabled"),
    (lambda e: e.update(enabled_events=list(HANDLED_EVENTS)[1:]), HANDLED_EVENTS[0]),
    (lambda e: e.update(url="https://old.autoenroll.ie" + WEBHOOK_PATH), "is not"),
], ids=["disabled", "missing-event", "wrong-url"])
def test_a_misregistered_endpoint_fails_naming_what_is_wrong(
        sandbox: SandboxState, stripe: FakeStripe, breakage: Callable[[dict[str, object]], None], named: str) -> None:
    endpoint = stripe.add(sandbox.public_url() + WEBHOOK_PATH, list(HANDLED_EVENTS))
    breakage(stripe.endpoints[endpoint["id"]])
    status, evidence = stripe_item(cloud_like(sandbox, endpoint["id"]))
    assert status == "fail" and named in evidence, evidence


def test_an_endpoint_deleted_in_stripe_fails(sandbox: SandboxState, stripe: FakeStripe) -> None:
    status, evidence = stripe_item(cloud_like(sandbox, "we_deleted"))
    assert status == "fail" and "no webhook endpoint we_deleted" in evidence


def test_an_app_with_the_wrong_secret_fails(sandbox: SandboxState, stripe: FakeStripe) -> None:
    endpoint = stripe.add(sandbox.public_url() + WEBHOOK_PATH, list(HANDLED_EVENTS))
    env = cloud_like(sandbox, endpoint["id"])
    assert env.stripe_webhook is not None
    rotated = env.stripe_webhook.model_copy(update={"secret": SecretStr("whsec_rotated_but_app_not_redeployed")})
    status, evidence = stripe_item(env.model_copy(update={"stripe_webhook": rotated}))
    assert status == "fail" and "signed -> 400" in evidence, evidence
