"""Stripe's webhook signature scheme and what each handled event changes (pure functions)."""

from __future__ import annotations

import uuid

import pytest

from autoenroll.stripe_webhook import HANDLED_EVENTS, SignatureError, billing_change, sign, verify

pytestmark = pytest.mark.unit

SECRET = "whsec_test_secret"
BODY = b'{"id": "evt_1", "type": "customer.subscription.updated"}'


def test_a_signature_made_with_the_secret_verifies() -> None:
    verify(BODY, sign(BODY, SECRET, 1_800_000_000), SECRET, now=1_800_000_010)


@pytest.mark.parametrize("header, now, message", [
    (None, 1_800_000_000, "no Stripe-Signature"),
    ("garbage", 1_800_000_000, "malformed"),
    ("t=abc,v1=00", 1_800_000_000, "malformed"),
    ("t=1800000000", 1_800_000_000, "malformed"),
    (sign(BODY, "whsec_someone_else", 1_800_000_000), 1_800_000_000, "no v1 signature matches"),
    (sign(BODY, SECRET, 1_800_000_000), 1_800_000_301, "tolerance"),
    (sign(BODY, SECRET, 1_800_000_000), 1_799_999_699, "tolerance"),
])
def test_bad_signatures_are_refused_naming_why(header: str | None, now: int, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify(BODY, header, SECRET, now=now)


def test_a_changed_body_no_longer_verifies() -> None:
    header = sign(BODY, SECRET, 1_800_000_000)
    with pytest.raises(SignatureError):
        verify(BODY.replace(b"updated", b"deleted"), header, SECRET, now=1_800_000_000)


def test_any_matching_v1_among_several_is_enough_and_v0_is_ignored() -> None:
    good = sign(BODY, SECRET, 1_800_000_000).split("v1=")[1]
    header = f"t=1800000000,v1={'0' * 64},v0={good},v1={good}"
    verify(BODY, header, SECRET, now=1_800_000_000)
    with pytest.raises(SignatureError):
        verify(BODY, f"t=1800000000,v0={good}", SECRET, now=1_800_000_000)


TENANT = str(uuid.uuid4())


@pytest.mark.parametrize("event, change", [
    ({"type": "checkout.session.completed", "data": {"object": {"client_reference_id": TENANT, "customer": "cus_1",
                                                                 "status": "complete"}}},
     (TENANT, "active", "cus_1")),
    ({"type": "customer.subscription.updated", "data": {"object": {"metadata": {"tenant_id": TENANT},
                                                                    "status": "past_due", "customer": "cus_1"}}},
     (TENANT, "past_due", "cus_1")),
    ({"type": "customer.subscription.deleted", "data": {"object": {"metadata": {"tenant_id": TENANT},
                                                                    "status": "active"}}},
     (TENANT, "canceled", None)),
    ({"type": "customer.subscription.updated", "data": {"object": {"metadata": {"tenant_id": TENANT},
                                                                    "status": "bogus"}}}, None),
    ({"type": "customer.subscription.updated", "data": {"object": {"metadata": {"tenant_id": "not-a-uuid"},
                                                                    "status": "active"}}}, None),
    ({"type": "customer.subscription.created", "data": {"object": {"status": "active"}}}, None),
    ({"type": "invoice.paid", "data": {"object": {"metadata": {"tenant_id": TENANT}}}}, None),
])
def test_what_each_event_changes(event: dict[str, object], change: tuple[str, str, str | None] | None) -> None:
    assert billing_change(event) == change


def test_every_handled_event_has_an_effect() -> None:
    for kind in HANDLED_EVENTS:
        obj = {"client_reference_id": TENANT, "metadata": {"tenant_id": TENANT}, "status": "active"}
        assert billing_change({"type": kind, "data": {"object": obj}}) is not None, kind
