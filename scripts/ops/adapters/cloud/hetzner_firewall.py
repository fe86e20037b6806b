"""How a release reaches the hosts from CI: the runner's address is let through the Hetzner
firewall for SSH for the length of one command, then taken out again (official `hcloud` SDK).

CI runners are not in the admin CIDRs the firewall admits on port 22, and a standing rule
for "GitHub's ranges" would admit every GitHub user's runner. So the rule is one /32,
labelled with the run, added just before the deploy and removed in a `finally`; a rule left
behind by a killed run is removed by the next one (it carries the same description prefix).

This firewall is the one gate on which sources may try SSH: the hosts' own nftables admits SSH
from any source under a per-source rate limit (stacks/host_role.py `nftables_conf` says why), so
the runner this rule admits is not dropped again on the host.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hcloud import APIException, Client
from hcloud.firewalls import FirewallRule

from ops.errors import ConfigError, ExternalError

DESCRIPTION_PREFIX = "ops: SSH from CI runner"


def _set_rules(client: Client, firewall_id: int, keep: Callable[[FirewallRule], bool],
               extra: list[FirewallRule]) -> None:
    firewall = client.firewalls.get_by_id(firewall_id)
    rules = [r for r in firewall.rules or [] if keep(r)] + extra
    for action in client.firewalls.set_rules(firewall, rules):
        action.wait_until_finished()


def _ours(rule: FirewallRule) -> bool:
    return (rule.description or "").startswith(DESCRIPTION_PREFIX)


@contextmanager
def ssh_opened_for(client: Client, firewall_id: str, runner_ip: str, run: str) -> Iterator[str]:
    """SSH from `runner_ip` admitted for the block; the rule is gone afterwards, whatever happens."""
    try:
        address = ipaddress.ip_address(runner_ip)
    except ValueError:
        raise ConfigError(f"--open-ssh-from: {runner_ip!r} is not an IP address") from None
    if not address.is_global:
        raise ConfigError(f"--open-ssh-from: {runner_ip} is not a public address")
    cidr = f"{address}/{32 if address.version == 4 else 128}"
    rule = FirewallRule(direction="in", protocol="tcp", port="22", source_ips=[cidr],
                        description=f"{DESCRIPTION_PREFIX} {run}"[:255])
    try:
        # Stale rules of killed runs go in the same call.
        _set_rules(client, int(firewall_id), lambda r: not _ours(r), [rule])
    except APIException as exc:
        raise ExternalError(f"Hetzner API: could not open SSH for {cidr} on firewall {firewall_id}: {exc.message}",
                            hint="HCLOUD_TOKEN needs read/write on the project") from None
    try:
        yield cidr
    finally:
        try:
            _set_rules(client, int(firewall_id), lambda r: not _ours(r), [])
        except APIException as exc:
            raise ExternalError(f"Hetzner API: could not remove the CI SSH rule for {cidr} from firewall "
                                f"{firewall_id}: {exc.message}; remove the rule named {DESCRIPTION_PREFIX!r} by hand",
                                hint="the next CI deploy also removes it") from None
