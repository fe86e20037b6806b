"""The Stripe webhook route in the running app (through Caddy): only signed events change anything,
each event applies once, late ones never move a tenant's status back, erasure takes them along."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import psycopg
import pytest

from autoenroll.stripe_webhook import WEBHOOK_PATH, sign
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account, sign_up

pytestmark = pytest.mark.integration


def subscription_event(tenant_id: str, status: str, created: int | None = None,
                       kind: str = "customer.subscription.updated", customer: str | None = None) -> dict[str, Any]:
    return {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
            "created": created if created is not None else int(time.time()),
            "data": {"object": {"id": "sub_1", "object": "subscription", "status": status,
                                "customer": customer or f"cus_{tenant_id[:8]}", "metadata": {"tenant_id": tenant_id}}}}


def deliver(api: httpx.Client, event: dict[str, Any], secret: str | None, at: int | None = None) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Stripe-Signature"] = sign(body, secret, at if at is not None else int(time.time()))
    return api.post(WEBHOOK_PATH, content=body, headers=headers)


def billing_status(account: Account) -> str:
    return str(account.client.get("/api/me", headers=account.auth).json()["tenant"]["billing_status"])


def test_unsigned_forged_and_stale_deliveries_are_refused_and_change_nothing(
        api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    event = subscription_event(account.tenant_id, "active")
    assert deliver(api, event, None).status_code == 400
    assert deliver(api, event, "whsec_forged").status_code == 400
    stale = deliver(api, event, sandbox.stripe_webhook_secret, at=int(time.time()) - 600)
    assert stale.status_code == 400 and "tolerance" in stale.json()["error"]
    assert billing_status(account) == "none"


def test_a_signed_event_applies_once_and_redelivery_is_acknowledged(
        api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    event = subscription_event(account.tenant_id, "active")
    first = deliver(api, event, sandbox.stripe_webhook_secret)
    assert first.status_code == 200 and first.json()["outcome"] == "applied"
    assert billing_status(account) == "active"  # the tenant cache was invalidated
    again = deliver(api, event, sandbox.stripe_webhook_secret)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"


def test_an_older_event_arriving_late_does_not_move_the_status_back(
        api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    now = int(time.time())
    newer = subscription_event(account.tenant_id, "canceled", created=now, kind="customer.subscription.deleted")
    older = subscription_event(account.tenant_id, "past_due", created=now - 60)
    assert deliver(api, newer, sandbox.stripe_webhook_secret).json()["outcome"] == "applied"
    assert deliver(api, older, sandbox.stripe_webhook_secret).json()["outcome"] == "stale"
    assert billing_status(account) == "canceled"


def test_checkout_completion_records_the_customer(api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    event = {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": "checkout.session.completed",
             "created": int(time.time()),
             "data": {"object": {"id": "cs_1", "object": "checkout.session", "client_reference_id": account.tenant_id,
                                 "customer": f"cus_{uuid.uuid4().hex[:8]}", "status": "complete"}}}
    assert deliver(api, event, sandbox.stripe_webhook_secret).json()["outcome"] == "applied"
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        row = conn.execute("SELECT billing_status, stripe_customer_id FROM tenants WHERE id = %s",
                           (account.tenant_id,)).fetchone()
    assert row == ("active", event["data"]["object"]["customer"])


def test_events_for_unknown_or_erased_tenants_are_acknowledged_and_ignored(
        api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    unknown = deliver(api, subscription_event(str(uuid.uuid4()), "active"), sandbox.stripe_webhook_secret)
    assert unknown.status_code == 200 and unknown.json()["outcome"] == "ignored"
    applied = deliver(api, subscription_event(account.tenant_id, "active"), sandbox.stripe_webhook_secret)
    assert applied.json()["outcome"] == "applied"
    erased = account.client.delete("/api/tenant", headers=account.auth).json()
    assert erased["erased"] and erased["deleted"]["rows"]["stripe_events"] == 1
    assert erased["remaining"]["rows"]["stripe_events"] == 0
    late = deliver(api, subscription_event(account.tenant_id, "active"), sandbox.stripe_webhook_secret)
    assert late.json()["outcome"] == "ignored"
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        assert conn.execute("SELECT count(*) FROM stripe_events WHERE tenant_id = %s",
                            (account.tenant_id,)).fetchone() == (0,)


def test_a_customer_claimed_by_two_tenants_is_a_logged_conflict_not_a_retry_loop(
        api: httpx.Client, account: Account, sandbox: SandboxState) -> None:
    other = sign_up(api, "Other Payroll Ltd")
    shared = f"cus_{uuid.uuid4().hex[:8]}"
    assert deliver(api, subscription_event(account.tenant_id, "active", customer=shared),
                   sandbox.stripe_webhook_secret).json()["outcome"] == "applied"
    clash = deliver(api, subscription_event(other.tenant_id, "active", customer=shared), sandbox.stripe_webhook_secret)
    assert clash.status_code == 200 and clash.json()["outcome"] == "conflict"
    assert billing_status(other) == "none"
