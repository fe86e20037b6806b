"""Pulumi dynamic provider for a Stripe webhook endpoint.

The key comes from `STRIPE_API_KEY` when the provider runs, so it never enters state.
Stripe returns the endpoint's signing secret only on create: it is kept from then on as
a secret output (encrypted in state) and handed to the app as STRIPE_WEBHOOK_SECRET.
A changed URL or event list is updated in place, which keeps the secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from clients.stripe_api import STRIPE_API_VERSION, StripeClient
from stacks.errors import maps_client_errors
from stacks.providers.portable import Portable

client_factory: Callable[[], StripeClient] = StripeClient.from_environ
FIELDS = ("url", "enabled_events", "description")


@maps_client_errors
class StripeWebhookProvider(Portable, ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        data = client_factory().create_webhook_endpoint(props["url"], list(props["enabled_events"]),
                                                        props["description"])
        return CreateResult(id_=str(data["id"]), outs={**props, "secret": data["secret"],
                                                       "status": data.get("status"),
                                                       "api_version": data.get("api_version")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        data = client_factory().get_webhook_endpoint(id_)
        if data is None:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, **{k: data.get(k) for k in FIELDS}, "status": data.get("status")})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Stripe sets an endpoint's api_version on create only: another pin is a new endpoint.
        replaces = ["api_version"] if olds.get("api_version") != news.get("api_version") else []
        changed = (bool(replaces) or any(olds.get(k) != news.get(k) for k in FIELDS)
                   or olds.get("status") == "disabled")
        return DiffResult(changes=changed, replaces=replaces)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        data = client_factory().update_webhook_endpoint(id_, news["url"], list(news["enabled_events"]),
                                                        news["description"])
        return UpdateResult(outs={**news, "secret": olds.get("secret"), "status": data.get("status")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client_factory().delete_webhook_endpoint(id_)


class StripeWebhookEndpoint(Resource):
    secret: pulumi.Output[str]
    status: pulumi.Output[str | None]

    def __init__(self, name: str, *, url: str, enabled_events: list[str], description: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["secret"]))
        super().__init__(StripeWebhookProvider(), name, {"url": url, "enabled_events": enabled_events,
                                                         "description": description, "secret": None,
                                                         "status": None, "api_version": STRIPE_API_VERSION},
                         opts)
