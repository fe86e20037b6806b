"""Cache: Redis Cloud in Frankfurt, consumed as a configured secret `REDIS_URL`.

Why not a Pulumi resource: Redis's own Pulumi provider (`pulumi-rediscloud`) manages paid
"Pro" subscriptions well, but the free/Essentials plan the seed budgets for still needs an
account-level payment method and API keys the team does not hold per environment. One
database per environment, created once in the console in `aws-eu-central-1` and stored
with `pulumi config set --secret redisUrl`, is simpler and costs nothing. The region is
config (`cache.region`), so the EU policy still checks it.

TLS: the free plan has none (stacks/data/plans.json), so production is on a paid one with TLS on and
its `redisUrl` is rediss://; `pulumi up` refuses a redis:// URL unless the stack sets
`cache.allow_plaintext` (staging only), and the app refuses it at start too (app/autoenroll/config.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Protocol

import pulumi

from stacks.config import CacheConfig, StackConfigError, StackNames


@dataclass(frozen=True)
class CacheArgs:
    cache: CacheConfig
    names: StackNames
    redis_url: pulumi.Output[str]


class CacheScope(Protocol):
    """What the helpers below read: the cache section and the stack's names (a `CacheArgs` or the
    whole `StackConfig`)."""

    @property
    def cache(self) -> CacheConfig: ...

    @property
    def names(self) -> StackNames: ...


def require_tls(url: str, config: CacheScope) -> str:
    """The stack's Redis URL, refused if it is redis:// (no TLS) and the stack does not allow that.
    The message names the config key, never the URL (it holds the password)."""
    if url.startswith("redis://") and not config.cache.allow_plaintext:
        raise StackConfigError(f"redisUrl: must be rediss:// (TLS) in {config.names.environment}: redis:// sends "
                               "sessions in clear" + ("" if config.names.is_production else
                                                      " (or set cache.allow_plaintext: true)"))
    return url


def app_env(config: CacheScope) -> dict[str, str]:
    """What the app's env file needs besides REDIS_URL: the CA (base64, one line) and the opt-out."""
    env = {"REDIS_CA_CERT": base64.b64encode(config.cache.ca_cert.encode()).decode()} if config.cache.ca_cert else {}
    if config.cache.allow_plaintext:
        env["REDIS_ALLOW_PLAINTEXT"] = "true"
    return env


class Cache(pulumi.ComponentResource):
    def __init__(self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:cache:Cache", name, None, opts)
        self.redis_url: pulumi.Output[str] = pulumi.Output.secret(args.redis_url.apply(
            lambda url: require_tls(url, args)))
        self.app_env = app_env(args)
        self.region = args.cache.region
        self.register_outputs({"redis_url": self.redis_url, "region": self.region})
