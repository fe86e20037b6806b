"""Cache: Redis Cloud in Frankfurt, consumed as a configured secret `REDIS_URL`.

Why not a Pulumi resource: Redis's own Pulumi provider (`pulumi-rediscloud`) manages paid
"Pro" subscriptions well, but the free/Essentials plan the seed budgets for still needs an
account-level payment method and API keys the team does not hold per environment. One
database per environment, created once in the console in `aws-eu-central-1` and stored
with `pulumi config set --secret redisUrl`, is simpler and costs nothing. The region is
config (`cache.region`), so the EU policy still checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.config import StackConfig


@dataclass(frozen=True)
class CacheArgs:
    config: StackConfig
    redis_url: pulumi.Output[str]


class Cache(pulumi.ComponentResource):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:cache:Cache", name, None, opts)
        self.redis_url: pulumi.Output[str] = pulumi.Output.secret(args.redis_url)
        self.region = args.config.cache.region
        self.register_outputs({"redis_url": self.redis_url, "region": self.region})
