"""Labels and names every resource carries, so each is traceable to its stack and app."""

from __future__ import annotations

from stacks.config import APP, StackNames


def resource_name(names: StackNames, *parts: str) -> str:
    """`autoenroll-<env>-<part>-...`: the provider-side name of a resource."""
    return "-".join((APP, names.environment, *parts))


def comment(names: StackNames) -> str:
    """Cloudflare resources have no labels on the free plan: the comment carries them."""
    return f"app={APP} environment={names.environment} managed-by=pulumi"
