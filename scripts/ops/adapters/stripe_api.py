"""Stripe API client for webhook endpoints (form-encoded requests, JSON answers).

Stripe returns an endpoint's signing secret (`whsec_...`) only when it is created; every
later read omits it, so the stack keeps it from the create as a secret output.
"""

from __future__ import annotations

import uuid
from typing import Any

from ops.adapters.http_api import ProviderClient
from ops.errors import ProviderAPIError

BASE_URL = "https://api.stripe.com/v1"


def endpoint_form(url: str, events: list[str], description: str) -> list[tuple[str, str]]:
    return [("url", url), ("description", description), *(("enabled_events[]", e) for e in events)]


class StripeClient(ProviderClient):
    provider = "Stripe API"
    base_url = BASE_URL
    base_url_variable = "OPS_STRIPE_API_URL"
    credential_variable = "STRIPE_API_KEY"
    credential_hint = "a restricted key with write access to Webhook Endpoints is enough"

    def create_webhook_endpoint(self, url: str, events: list[str], description: str) -> dict[str, Any]:
        # One key per logical create: a retry after a timeout returns the first endpoint, not a second.
        return dict(self.request("POST", "/webhook_endpoints", form=endpoint_form(url, events, description),
                                 idempotency_key=str(uuid.uuid4())))

    def get_webhook_endpoint(self, endpoint_id: str) -> dict[str, Any] | None:
        body = self.get_or_none(f"/webhook_endpoints/{endpoint_id}")
        return None if body is None else dict(body)

    def update_webhook_endpoint(self, endpoint_id: str, url: str, events: list[str],
                                description: str) -> dict[str, Any]:
        form = [*endpoint_form(url, events, description), ("disabled", "false")]
        return dict(self.request("POST", f"/webhook_endpoints/{endpoint_id}", form=form,
                                 idempotency_key=str(uuid.uuid4())))

    def delete_webhook_endpoint(self, endpoint_id: str) -> None:
        try:
            self.request("DELETE", f"/webhook_endpoints/{endpoint_id}")
        except ProviderAPIError as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise
