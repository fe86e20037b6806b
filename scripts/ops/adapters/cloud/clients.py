"""The SaaS clients as `ops` uses them: each raises OpsErrors (client_errors.py maps them once, here).

`ops` imports its SaaS clients from this module, never from `clients` directly, so no ops code sees a
`clients.errors` exception (Caddy's admin client is mapped by its switch, ops/sandbox/traffic_caddy.py,
into the ExternalErrors it always raised; the CLI's guard maps any that still escape). The Pulumi
program maps the same clients into its own tree (stacks/errors.py).
"""

from __future__ import annotations

from clients import betterstack_api, cloudflare_api, http_api, neon_api, stripe_api
from ops.adapters.cloud.client_errors import client_errors, mapped


@mapped
class NeonClient(neon_api.NeonClient):
    """Neon API v2 (clients/neon_api.py), raising OpsErrors."""


@mapped
class BetterStackClient(betterstack_api.BetterStackClient):
    """BetterStack Uptime (clients/betterstack_api.py), raising OpsErrors."""


@mapped
class StripeClient(stripe_api.StripeClient):
    """Stripe webhook endpoints (clients/stripe_api.py), raising OpsErrors."""


@mapped
class CloudflareClient(cloudflare_api.CloudflareClient):
    """The one Cloudflare client (clients/cloudflare_api.py), raising OpsErrors."""


@mapped
class JsonApiClient(http_api.JsonApiClient):
    """A plain JSON API with the retry policy (doctor's Hetzner probe), raising OpsErrors."""


def base_url_override(variable: str) -> str | None:
    """clients.http_api.base_url_override, a malformed value as a ConfigError."""
    with client_errors():
        return http_api.base_url_override(variable)
