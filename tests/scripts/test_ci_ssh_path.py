"""The CI path to the hosts: the runner's /32 is admitted on port 22 for one command and removed
after, even when the command fails; a rule a killed run left behind is cleaned up."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hcloud import Client

from ops.adapters.hetzner_firewall import DESCRIPTION_PREFIX, ssh_opened_for
from ops.errors import ConfigError, ExternalError
from tests.hcloud_fake import FakeHetzner, serving

pytestmark = pytest.mark.unit

ADMIN = {"direction": "in", "protocol": "tcp", "port": "22", "source_ips": ["198.51.100.0/28"],
         "description": "SSH from admin networks"}
WEB = {"direction": "in", "protocol": "tcp", "port": "443", "source_ips": ["173.245.48.0/20"],
       "description": "HTTPS from Cloudflare"}


@pytest.fixture()
def hetzner() -> Iterator[FakeHetzner]:
    fake = FakeHetzner()
    fake.add_firewall(42, [ADMIN, WEB])
    with serving(fake):
        yield fake


def client(fake: FakeHetzner) -> Client:
    return Client(fake.token, api_endpoint=fake.url, poll_interval=0.01)


def sources(fake: FakeHetzner) -> list[list[str]]:
    return [r["source_ips"] for r in fake.firewalls[42]["rules"]]


def test_the_runner_is_admitted_for_the_block_only(hetzner: FakeHetzner) -> None:
    with ssh_opened_for(client(hetzner), "42", "20.42.0.7", "run 1") as cidr:
        assert cidr == "20.42.0.7/32"
        assert sources(hetzner) == [["198.51.100.0/28"], ["173.245.48.0/20"], ["20.42.0.7/32"]]
    assert sources(hetzner) == [["198.51.100.0/28"], ["173.245.48.0/20"]]


def test_the_rule_goes_even_when_the_deploy_fails(hetzner: FakeHetzner) -> None:
    with pytest.raises(ExternalError, match="deploy failed"), ssh_opened_for(client(hetzner), "42", "20.42.0.7", "r"):
        raise ExternalError("deploy failed")
    assert len(hetzner.rule_history) == 2 and sources(hetzner) == [["198.51.100.0/28"], ["173.245.48.0/20"]]


def test_a_rule_left_by_a_killed_run_is_replaced_not_kept(hetzner: FakeHetzner) -> None:
    stale = {**ADMIN, "source_ips": ["192.0.2.9/32"], "description": f"{DESCRIPTION_PREFIX} run 0"}
    hetzner.firewalls[42]["rules"].append(hetzner.rule(stale))
    with ssh_opened_for(client(hetzner), "42", "20.42.0.7", "run 1"):
        assert ["192.0.2.9/32"] not in sources(hetzner)
    assert ["192.0.2.9/32"] not in sources(hetzner)


@pytest.mark.parametrize("bad", ["not-an-ip", "10.0.0.5"])
def test_a_bad_or_private_runner_address_is_refused_before_any_call(hetzner: FakeHetzner, bad: str) -> None:
    with pytest.raises(ConfigError, match="--open-ssh-from"), ssh_opened_for(client(hetzner), "42", bad, "r"):
        pass
    assert hetzner.rule_history == []
