"""Stripe webhook contract, pure: the path, the events handled, signatures, and what an event changes.

Stripe signs each delivery: `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`
with the endpoint's signing secret. No web framework here, so the stack (which subscribes
the endpoint to HANDLED_EVENTS) and `ops checklist` (which signs a synthetic event) share it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

WEBHOOK_PATH = "/api/billing/stripe-webhook"
TOLERANCE_S = 300  # Stripe's libraries' default

# The events the app handles; the stack subscribes the endpoint to exactly these.
HANDLED_EVENTS = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)

# Stripe's subscription statuses; `billing_status` also has 'none' (never subscribed).
SUBSCRIPTION_STATUSES = ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled",
                         "unpaid", "paused")


class SignatureError(Exception):
    """The delivery is not signed by Stripe with our secret (message says how)."""


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe's v1 signature: hex HMAC-SHA256 of "<timestamp>.<body>" with the signing secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send for `payload` (for tests and `ops checklist`)."""
    return f"t={timestamp},v1={_digest(payload, secret, timestamp)}"


def verify(payload: bytes, header: str | None, secret: str, now: float | None = None) -> None:
    if not header:
        raise SignatureError("no Stripe-Signature header")
    pairs = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in pairs if k.strip() == "t"]
    signatures = [v.strip() for k, v in pairs if k.strip() == "v1"]
    if len(timestamps) != 1 or not timestamps[0].strip().isdigit() or not signatures:
        raise SignatureError("malformed Stripe-Signature header")
    timestamp = int(timestamps[0])
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE_S:
        raise SignatureError("signature timestamp outside the 5-minute tolerance (replayed or clock skew)")
    expected = _digest(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureError("no v1 signature matches the signing secret")


def billing_change(event: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """(tenant id, new billing status, Stripe customer id) for a handled event, else None."""
    kind = event.get("type")
    obj = (event.get("data") or {}).get("object") or {}
    if kind == "checkout.session.completed":
        tenant, status = obj.get("client_reference_id"), "active"
    elif kind in ("customer.subscription.created", "customer.subscription.updated"):
        tenant, status = (obj.get("metadata") or {}).get("tenant_id"), str(obj.get("status", ""))
    elif kind == "customer.subscription.deleted":
        tenant, status = (obj.get("metadata") or {}).get("tenant_id"), "canceled"
    else:
        return None
    if status not in SUBSCRIPTION_STATUSES:
        return None
    try:
        tenant = str(uuid.UUID(str(tenant)))
    except ValueError:
        return None
    customer = obj.get("customer")
    return tenant, status, customer if isinstance(customer, str) else None


