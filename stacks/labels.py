"""Labels and names every resource carries, so each is traceable to its stack and app."""

from __future__ import annotations

from stacks.config import APP, StackConfig


def resource_name(config: StackConfig, *parts: str) -> str:
    """`autoenroll-<env>-<part>-...`: the provider-side name of a resource."""
    return "-".join((APP, config.environment, *parts))


def comment(config: StackConfig) -> str:
    """Cloudflare resources have no labels on the free plan: the comment carries them."""
    return f"app={APP} environment={config.environment} managed-by=pulumi"
