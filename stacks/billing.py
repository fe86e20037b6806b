"""Billing: the Stripe webhook endpoint for the app's URL, subscribed to the events the app handles."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from autoenroll.stripe_webhook import HANDLED_EVENTS, WEBHOOK_PATH
from stacks.config import StackNames
from stacks.providers.stripe import StripeWebhookEndpoint


@dataclass(frozen=True)
class BillingArgs:
    names: StackNames
    app_host: str  # edge.app_host: the webhook is on the app's URL


class Billing(pulumi.ComponentResource):
    def __init__(self, name: str, args: BillingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:billing:Billing", name, None, opts)
        self.url = f"https://{args.names.fqdn(args.app_host)}{WEBHOOK_PATH}"
        self.endpoint = StripeWebhookEndpoint(
            f"{name}-stripe-webhook", url=self.url, enabled_events=list(HANDLED_EVENTS),
            description=f"autoenroll {args.names.environment}", opts=pulumi.ResourceOptions(parent=self))
        # Secret even where additional_secret_outputs isn't honoured (e.g. under mocks).
        self.signing_secret: pulumi.Output[str] = pulumi.Output.secret(self.endpoint.secret)
        self.register_outputs({"endpoint_id": self.endpoint.id, "url": self.url})
