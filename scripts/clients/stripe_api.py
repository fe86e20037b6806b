"""Stripe API client for webhook endpoints (form-encoded requests, JSON answers).

Stripe returns an endpoint's signing secret (`whsec_...`) only when it is created; every
later read omits it, so the stack keeps it from the create as a secret output.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, ClassVar

from clients.errors import NotFound
from clients.http_api import ProviderClient

BASE_URL = "https://api.stripe.com/v1"
# Pinned, so neither our calls nor the events Stripe sends the app change shape when the account's
# default version moves (docs.stripe.com/api-versions: without a Stripe-Version header a request
# gets the account's default). Events follow the endpoint's own api_version, which Stripe sets
# only when the endpoint is created: changing this pin replaces the endpoint (and its secret).
STRIPE_API_VERSION = "2026-09-30.endive"


def endpoint_form(url: str, events: list[str], description: str) -> list[tuple[str, str]]:
    return [("url", url), ("description", description), *(("enabled_events[]", e) for e in events)]


def creation_form(url: str, events: list[str], description: str) -> list[tuple[str, str]]:
    # api_version is accepted on create only: an update cannot change an endpoint's event shape.
    return [*endpoint_form(url, events, description), ("api_version", STRIPE_API_VERSION)]


class StripeClient(ProviderClient):
    provider = "Stripe API"
    base_url = BASE_URL
    base_url_variable = "OPS_STRIPE_API_URL"
    credential_variable = "STRIPE_API_KEY"
    credential_hint = "a restricted key with write access to Webhook Endpoints is enough"
    default_headers: ClassVar[dict[str, str]] = {"Stripe-Version": STRIPE_API_VERSION}

    def create_webhook_endpoint(self, url: str, events: list[str], description: str) -> dict[str, Any]:
        # One key per logical create: a retry after a timeout returns the first endpoint, not a second.
        return dict(self._send("POST", "/webhook_endpoints", form=creation_form(url, events, description),
                                 idempotency_key=str(uuid.uuid4())))

    def get_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        body = self.get_or_none(f"/webhook_endpoints/{endpoint_id}")
        return None if body is None else dict(body)

    def update_webhook_endpoint(self, endpoint_id: str, url: str, events: list[str],
                                description: str) -> dict[str, Any]:
        form = [*endpoint_form(url, events, description), ("disabled", "false")]
        return dict(self._send("POST", f"/webhook_endpoints/{endpoint_id}", form=form,
                                 idempotency_key=str(uuid.uuid4())))

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        with contextlib.suppress(NotFound):  # already gone is what we wanted
            self._send("DELETE", f"/webhook_endpoints/{endpoint_id}")
