"""The Stripe webhook route: verified deliveries set a tenant's billing status.

A delivery without a valid v1 signature (stripe_webhook.verify, with STRIPE_WEBHOOK_SECRET,
a secret output of the stack's webhook endpoint) within five minutes is refused with 400
before its body is parsed, so a replayed or forged event changes nothing.

Stripe delivers at least once and in no particular order: each event id is recorded with
its effect in one transaction (a redelivery is acknowledged and ignored), and a tenant's
status only moves forward in event time. The tenant is named by the checkout session's
`client_reference_id` or the subscription's `metadata.tenant_id`, which the app sets when
it creates them; an event naming no tenant of ours is acknowledged (Stripe would otherwise
retry it for three days) and logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from psycopg.errors import UniqueViolation
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from autoenroll import keys
from autoenroll.api import error
from autoenroll.db import tenant_tx
from autoenroll.resources import Resources
from autoenroll.stripe_webhook import WEBHOOK_PATH, SignatureError, billing_change, verify

log = logging.getLogger("autoenroll.billing")

MAX_BODY_BYTES = 1024 * 1024


async def apply(resources: Resources, event: dict[str, Any]) -> str:
    """Record the event and its effect atomically; say what happened (applied/duplicate/stale/ignored/conflict)."""
    change = billing_change(event)
    if change is None:
        return "ignored"
    tenant, status, customer = change
    created = int(event.get("created") or 0)
    try:
        async with tenant_tx(resources, tenant) as conn:
            if await (await conn.execute("SELECT 1 FROM tenants")).fetchone() is None:
                return "ignored"  # RLS: no such tenant (erased, or not ours)
            first = await (await conn.execute(
                "INSERT INTO stripe_events (id, tenant_id, type) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING"
                " RETURNING id", (str(event["id"]), tenant, str(event["type"])))).fetchone()
            if first is None:
                return "duplicate"
            updated = await conn.execute(
                "UPDATE tenants SET billing_status = %s, stripe_customer_id = COALESCE(%s, stripe_customer_id),"
                " billing_event_at = %s WHERE billing_event_at <= %s", (status, customer, created, created))
            outcome = "applied" if updated.rowcount else "stale"
    except UniqueViolation:
        # One Stripe customer already belongs to another tenant: nothing is recorded (so a
        # redelivery after the data is put right applies), and someone must look.
        log.error("stripe event %s: customer %s already belongs to another tenant", event.get("id"), customer)
        return "conflict"
    await resources.redis.delete(keys.cache("tenant", tenant))
    return outcome


async def stripe_webhook(request: Request) -> Response:
    resources: Resources = request.app.state.resources
    secret = resources.settings.stripe_webhook_secret
    if not secret:
        # 503, not 4xx: Stripe retries, so nothing is lost while the secret is being set.
        return error(503, "billing webhooks are not configured (STRIPE_WEBHOOK_SECRET)")
    payload = await request.body()
    if len(payload) > MAX_BODY_BYTES:
        return error(413, "webhook body too large")
    try:
        verify(payload, request.headers.get("stripe-signature"), secret)
    except SignatureError as exc:
        return error(400, f"invalid signature: {exc}")
    try:
        event = json.loads(payload)
        event_id, event_type = str(event["id"]), str(event["type"])
    except (ValueError, KeyError, TypeError):
        return error(400, "the body is not a Stripe event")
    outcome = await apply(resources, event)
    log.info("stripe event %s (%s): %s", event_id, event_type, outcome)
    return JSONResponse({"received": True, "event": event_id, "outcome": outcome})


ROUTES = [Route(WEBHOOK_PATH, stripe_webhook, methods=["POST"])]
