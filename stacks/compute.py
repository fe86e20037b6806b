"""Compute: SSH keys, the Hetzner firewall, a private network, app servers, standby, load balancer."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi
import pulumi_hcloud as hcloud

from stacks.config import ComputeConfig, StackNames, ssh_fingerprint
from stacks.data import cloudflare_ranges
from stacks.host_role import LB_HEALTH_HOST, LB_HEALTH_PATH, HostRoleArgs, render_user_data
from stacks.labels import resource_name


@dataclass(frozen=True)
class ComputeArgs:
    # No secret here: the hosts' secrets (the app's env file, the BetterStack token, the origin key)
    # reach them over SSH at deploy time, from the stack's outputs, never through user data.
    compute: ComputeConfig
    names: StackNames
    site_address: str  # the app's host name (edge.app_host) Caddy serves, and the API's beside it
    extra_site_addresses: tuple[str, ...]
    logs_ingest_host: str  # monitoring.logs_ingest_host: where each host's Vector ships its logs


class ComputeScope(Protocol):
    """What `firewall_rules` reads: the compute section (a `ComputeArgs` or the whole `StackConfig`)."""

    @property
    def compute(self) -> ComputeConfig: ...


def firewall_rules(config: ComputeScope) -> list[Any]:
    """Ingress: 80/443 from Cloudflare only, SSH from admin CIDRs only, ICMP; nothing else."""
    edge = list(cloudflare_ranges())
    return [
        {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": list(config.compute.admin_cidrs),
         "description": "SSH from admin networks"},
        {"direction": "in", "protocol": "tcp", "port": "80", "source_ips": edge, "description": "HTTP from Cloudflare"},
        {"direction": "in", "protocol": "tcp", "port": "443", "source_ips": edge,
         "description": "HTTPS from Cloudflare"},
        {"direction": "in", "protocol": "icmp", "source_ips": ["0.0.0.0/0", "::/0"], "description": "ICMP"},
    ]


# Hetzner's defaults (interval 15 s, timeout 10 s, retries 3) made tighter: a host whose app is down
# leaves rotation within interval x retries (+ timeout), about 35 s.
LB_HEALTH_INTERVAL_S = 10
LB_HEALTH_TIMEOUT_S = 5
LB_HEALTH_RETRIES = 3


def lb_health_check() -> hcloud.LoadBalancerServiceHealthCheckArgsDict:
    """The load balancer's health check: the app's `/ready` through each host's Caddy.

    Port 80 over the private network, asking for `LB_HEALTH_HOST`, answered only with 200: Caddy
    proxies it to the app (stacks/host_role.py lb_health_site says why not 443: the origin requires
    Cloudflare's client certificate, which the checker cannot show). The old check asked port 80 for
    `/health` and took any 3xx: Caddy's HTTP->HTTPS redirect, which answers with the app stopped."""
    return {"protocol": "http", "port": 80, "interval": LB_HEALTH_INTERVAL_S, "timeout": LB_HEALTH_TIMEOUT_S,
            "retries": LB_HEALTH_RETRIES,
            "http": {"domain": LB_HEALTH_HOST, "path": LB_HEALTH_PATH, "status_codes": ["200"], "tls": False}}


class Compute(pulumi.ComponentResource):
    servers: pulumi.Output[list[dict[str, Any]]]

    def __init__(self, name: str, args: ComputeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:compute:Compute", name, None, opts)
        names = args.names
        c = args.compute
        labels = dict(names.labels)
        child = pulumi.ResourceOptions(parent=self)

        # Hetzner refuses a second key with the same fingerprint in a project (uniqueness_error), and
        # both stacks share one project: the owner (production) creates the keys, the other finds them.
        key_ids: list[pulumi.Input[str]]
        if c.owns_ssh_keys:
            key_ids = [hcloud.SshKey(f"{name}-key-{key_name}", name=resource_name(names, key_name), public_key=key,
                                     labels=labels, opts=child).id for key_name, key in c.ssh_keys]
        else:
            key_ids = [hcloud.get_ssh_key_output(fingerprint=ssh_fingerprint(key)).id.apply(str)
                       for _, key in c.ssh_keys]
        self.firewall = hcloud.Firewall(f"{name}-firewall", name=resource_name(names, "app"),
                                        rules=firewall_rules(args), labels=labels, opts=child)
        self.network = hcloud.Network(f"{name}-network", name=resource_name(names, "net"),
                                      ip_range=c.network_ip_range, labels=labels, opts=child)
        subnet_range = next(ipaddress.IPv4Network(c.network_ip_range).subnets(new_prefix=24))
        subnet = hcloud.NetworkSubnet(f"{name}-subnet", network_id=self.network.id.apply(int), type="cloud",
                                      network_zone="eu-central", ip_range=str(subnet_range), opts=child)
        placement = None
        if c.replicas > 1:
            placement = hcloud.PlacementGroup(f"{name}-spread", name=resource_name(names, "spread"), type="spread",
                                              labels=labels, opts=child)

        hosts: list[tuple[str, str, str]] = [(f"app-{i + 1}", "primary", c.location) for i in range(c.replicas)]
        if c.standby:
            hosts.append(("standby", "standby", c.standby_location))

        self.server_resources: list[tuple[hcloud.Server, str, str]] = []
        for index, (host, role, location) in enumerate(hosts):
            server_name = resource_name(names, host)
            user_data = render_user_data(HostRoleArgs(
                hostname=server_name, environment=names.environment, role=role,
                site_address=args.site_address, extra_site_addresses=args.extra_site_addresses, app_image=c.app_image,
                app_version=c.app_version, admin_cidrs=c.admin_cidrs, cloudflare_ranges=cloudflare_ranges(),
                ssh_public_keys=tuple(k for _, k in c.ssh_keys), logs_ingest_host=args.logs_ingest_host,
                private_network=c.network_ip_range if c.replicas > 1 else ""))
            network: Any = {"network_id": self.network.id.apply(int), "ip": str(subnet_range[10 + index])}
            server = hcloud.Server(
                f"{name}-{host}",
                name=server_name,
                server_type=c.server_type,
                image=c.image,
                location=location,
                ssh_keys=key_ids,
                firewall_ids=[self.firewall.id.apply(int)],
                networks=[network],
                public_nets=[{"ipv4_enabled": True, "ipv6_enabled": True}],
                placement_group_id=placement.id.apply(int) if placement and role == "primary" else None,
                user_data=user_data,
                backups=c.backups,
                delete_protection=names.protect,
                rebuild_protection=names.protect,  # Hetzner requires both equal
                labels={**labels, "role": role},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[subnet],
                                            ignore_changes=["user_data", "ssh_keys"]),
            )
            self.server_resources.append((server, role, location))

        self.load_balancer_ipv4: pulumi.Output[str] | None = None
        self.load_balancer_id: pulumi.Output[str] | None = None
        if c.replicas > 1:
            lb = hcloud.LoadBalancer(f"{name}-lb", name=resource_name(names, "lb"),
                                     load_balancer_type=c.load_balancer_type, location=c.location,
                                     algorithm={"type": "round_robin"}, labels=labels,
                                     delete_protection=names.protect, opts=child)
            lb_net = hcloud.LoadBalancerNetwork(f"{name}-lb-net", load_balancer_id=lb.id.apply(int),
                                                network_id=self.network.id.apply(int), opts=child)
            # One server target per primary, not a label selector: `ops deploy` takes one host out of
            # the rotation at a time (remove_target/add_target), which Hetzner allows only for server
            # targets (ops.adapters.cloud.hetzner_lb). A private-IP target needs the load balancer on
            # the network first: Hetzner refuses it otherwise, and nothing in the inputs orders the two.
            for (host, role, _location), (server, _role, _loc) in zip(hosts, self.server_resources, strict=True):
                if role != "primary":
                    continue
                hcloud.LoadBalancerTarget(f"{name}-lb-{host}", load_balancer_id=lb.id.apply(int),
                                          type="server", server_id=server.id.apply(int), use_private_ip=True,
                                          opts=pulumi.ResourceOptions(parent=self, depends_on=[lb_net]))
            # One service, 443, passed through as TCP (TLS ends at each host's Caddy, with Cloudflare's
            # client certificate required). No port 80: Cloudflare (SSL strict, Always Use HTTPS) only
            # ever connects on 443, so a port-80 service would carry only traffic that skipped Cloudflare,
            # and would let it reach the health check's site below.
            hcloud.LoadBalancerService(
                f"{name}-lb-443", load_balancer_id=lb.id, protocol="tcp", listen_port=443, destination_port=443,
                health_check=lb_health_check(), opts=child)
            self.load_balancer_ipv4 = lb.ipv4
            self.load_balancer_id = lb.id

        def describe(values: list[Any], role: str, location: str) -> dict[str, Any]:
            server_id, server_name, ipv4, networks = values
            private = networks[0].get("ip") if networks else None
            return {"id": int(server_id), "name": server_name, "ipv4": ipv4, "role": role, "location": location,
                    "private_ip": private}

        self.servers = pulumi.Output.all(*[
            pulumi.Output.all(s.id, s.name, s.ipv4_address, s.networks).apply(
                functools.partial(describe, role=role, location=location))
            for s, role, location in self.server_resources
        ])
        self.register_outputs({"servers": self.servers, "firewall_id": self.firewall.id,
                               "network_id": self.network.id, "load_balancer_ipv4": self.load_balancer_ipv4,
                               "load_balancer_id": self.load_balancer_id})

    def origin_ipv4(self) -> pulumi.Output[str]:
        """Where public traffic goes: the load balancer when there is one, else the first primary."""
        if self.load_balancer_ipv4 is not None:
            return self.load_balancer_ipv4
        return self.server_resources[0][0].ipv4_address

    def standby_ipv4(self) -> pulumi.Output[str] | None:
        return next((s.ipv4_address for s, role, _ in self.server_resources if role == "standby"), None)
