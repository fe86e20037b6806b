"""The Pulumi program: read config, build one component per concern, export what `ops` needs.

It creates no provider resource itself. The exported shape is documented in
docs/stack-outputs.md and read by `ops` as its `Environment` (scripts/ops/environment.py).
"""

from __future__ import annotations

from typing import Any

import pulumi

from autoenroll.contract import BRANCH_OF_ENV, REPLICA_ENV_VAR, SECRET_ENV_VARS
from stacks import config as stack_config
from stacks.billing import Billing, BillingArgs
from stacks.cache import Cache, CacheArgs
from stacks.compute import Compute, ComputeArgs
from stacks.config import StackConfig
from stacks.database import Database, DatabaseArgs
from stacks.edge import Edge, EdgeArgs
from stacks.monitoring import Monitoring, MonitoringArgs
from stacks.storage import Storage, StorageArgs


def build(config: StackConfig) -> dict[str, Any]:
    """Register every component of the stack; return the stack outputs."""
    secret = stack_config.secret
    # Each component gets its own section and the stack's names, plus the few values it takes from
    # another section (named in its args), never the whole config.
    names, edge_config = config.names, config.edge
    app_url = f"https://{names.fqdn(edge_config.app_host)}"
    storage = Storage("storage", StorageArgs(config.storage, names, account_id=edge_config.account_id,
                                             app_origin=app_url))
    cache = Cache("cache", CacheArgs(config.cache, names, redis_url=secret("redisUrl")))
    database = Database("database", DatabaseArgs(config.database, names))
    billing = Billing("billing", BillingArgs(names, app_host=edge_config.app_host))
    branch = BRANCH_OF_ENV[config.environment]
    # In SECRET_ENV_VARS order, then the replica's URL (None without one). `ops deploy` writes them to each
    # host's env file over SSH.
    app_env = pulumi.Output.all(
        database.app_database_url(branch), cache.redis_url, secret("r2AccessKeyId"), secret("r2SecretAccessKey"),
        secret("sentryDsn"), secret("authSecret"), billing.signing_secret,
        database.app_replica_url(branch),
    ).apply(lambda v: {
        **dict(zip(SECRET_ENV_VARS, v[:-1], strict=True)),
        # The read replica's URL, only where the branch has one (the app then reads from the primary alone).
        **({REPLICA_ENV_VAR: v[-1]} if v[-1] else {}),
        "S3_ENDPOINT_URL": storage.endpoint, "S3_REGION": "auto", "S3_BUCKET_UPLOADS": storage.bucket_names["uploads"],
        **cache.app_env,
    })
    compute = Compute("compute", ComputeArgs(
        config.compute, names, site_address=names.fqdn(edge_config.app_host),
        extra_site_addresses=(names.fqdn(edge_config.api_host),),
        logs_ingest_host=config.monitoring.logs_ingest_host))
    edge = Edge("edge", EdgeArgs(edge_config, names, origin_ipv4=compute.origin_ipv4()))
    monitoring = Monitoring("monitoring", MonitoringArgs(
        config.monitoring, names, health_hosts=(edge_config.app_host, edge_config.api_host),
        status_host=edge_config.status_host, sentry_dsn=secret("sentryDsn")))

    return {
        "environment": config.environment,
        "public_url": f"https://{config.fqdn(config.edge.app_host)}",
        "servers": compute.servers,
        "load_balancer_ipv4": compute.load_balancer_ipv4,
        "load_balancer_id": compute.load_balancer_id,
        "firewall_id": compute.firewall.id,
        "network_id": compute.network.id,
        "dns": {"zone_id": config.edge.zone_id, "app_record_name": config.fqdn(config.edge.app_host),
                "records": {k: r.id for k, r in edge.records.items()}},
        "buckets": storage.bucket_names,
        "r2_endpoint": storage.endpoint,
        "neon_project_id": database.project_id,
        "neon_branches": database.branch_outputs,
        "connection_strings": database.connection_strings,
        # The app's URL through `main`'s read replica (secret), or null where the stack makes none.
        "read_replica_url": database.app_replica_url(branch),
        "monitor_ids": {h: r.id for h, r in monitoring.monitors.items()},
        "heartbeat_url": monitoring.heartbeat_url,
        "status_page_id": monitoring.status_page.id if monitoring.status_page else None,
        "backup_retention_days": config.storage.backup_retention_days,
        "app_env": pulumi.Output.secret(app_env),
        "stripe_webhook": {"endpoint_id": billing.endpoint.id, "url": billing.url, "secret": billing.signing_secret},
        # The hosts' Cloudflare Origin CA certificate and its key (secret): `ops deploy` installs them.
        "origin_tls": edge.origin_tls,
        # The hosts' registry login (a read-only token, secret): `ops deploy` logs each host in before a pull.
        "registry_login": pulumi.Output.secret(secret("registryReadToken").apply(lambda token: {
            "username": config.compute.registry_username, "token": token})),
        # Vector's BetterStack token (secret): `ops deploy` writes each host's Vector env file with it.
        "betterstack_logs_token": pulumi.Output.secret(secret("betterstackLogsToken")),
    }


if __name__ == "__main__":
    for key, value in build(stack_config.load()).items():
        pulumi.export(key, value)
