"""Monitoring: BetterStack uptime monitors on /health, the nightly-backup heartbeat, the status page."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from stacks.config import MonitoringConfig, StackNames
from stacks.providers.betterstack import BetterStackResource


@dataclass(frozen=True)
class MonitoringArgs:
    monitoring: MonitoringConfig
    names: StackNames
    health_hosts: tuple[str, ...]  # edge.app_host and edge.api_host: each gets a /health monitor
    status_host: str  # edge.status_host: the status page's custom domain (production)
    sentry_dsn: pulumi.Output[str]


class Monitoring(pulumi.ComponentResource):
    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:monitoring:Monitoring", name, None, opts)
        names = args.names
        m = args.monitoring
        child = pulumi.ResourceOptions(parent=self)
        self.monitors = {
            host: BetterStackResource(f"{name}-{host}-health", kind="monitors", attributes={
                "monitor_type": "expected_status_code",
                "url": f"https://{names.fqdn(host)}/health",
                "pronounceable_name": f"{names.environment} {host} /health",
                "check_frequency": m.check_frequency_seconds,
                "regions": list(m.regions),
                "request_timeout": 15,
                "expected_status_codes": [200],
                "verify_ssl": True,
                "ssl_expiration": 14,
                "confirmation_period": 60,
            # Made paused: before the first deploy nothing serves these URLs, and an unpaused monitor
            # would page on-call from the first `pulumi up`. release.yml resumes them after `ops deploy`
            # (`ops monitors resume`); a later `pulumi up` leaves `paused` alone (sent on create only).
            }, create_only={"paused": True}, opts=child)
            for host in args.health_hosts
        }
        self.backup_heartbeat = BetterStackResource(f"{name}-backup-heartbeat", kind="heartbeats", attributes={
            "name": f"autoenroll {names.environment} nightly backup",
            "period": m.heartbeat_period_seconds,
            "grace": m.heartbeat_grace_seconds,
        }, opts=child)
        self.status_page = None
        if names.is_production:
            self.status_page = BetterStackResource(f"{name}-status-page", kind="status-pages", attributes={
                "company_name": m.status_page_company,
                "company_url": f"https://{names.domain}",
                "subdomain": f"{names.environment}-{m.status_page_company.lower().replace(' ', '-')}",
                "custom_domain": names.fqdn(args.status_host),
                "timezone": "Dublin",
            }, opts=child)
        self.sentry_dsn: pulumi.Output[str] = pulumi.Output.secret(args.sentry_dsn)
        # The ping URL embeds a token: secret even where additional_secret_outputs isn't honoured.
        self.heartbeat_url: pulumi.Output[str | None] = pulumi.Output.secret(self.backup_heartbeat.url)
        self.register_outputs({
            "monitor_ids": {h: r.id for h, r in self.monitors.items()},
            "heartbeat_url": self.heartbeat_url,
            "status_page_id": self.status_page.id if self.status_page else None,
        })
