"""The CI path to the hosts: the runner's /32 is admitted on port 22 for one command and removed
after, even when the command fails; a rule a killed run left behind is cleaned up."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hcloud import Client

from ops.adapters.cloud.hetzner_firewall import DESCRIPTION_PREFIX, ssh_opened_for
from ops.errors import ConfigError, ExternalError
from tests.hcloud_fake import FakeHetzner, firewall_ruleset, serving

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


def test_the_labs_firewall_stand_in_follows_every_set_rules(hetzner: FakeHetzner, tmp_path: Path) -> None:
    """What the lab applies in front of its hosts (tests/drills/lab.py): the runner's /32 on 22 while
    the block runs, gone after; the rendered table is one nft accepts."""
    seen: list[str] = []
    hetzner.listeners.append(lambda _id, rules: seen.append(firewall_ruleset(rules, "eth0")))
    with ssh_opened_for(client(hetzner), "42", "20.42.0.7", "run 1"):
        assert "ip saddr { 20.42.0.7/32 } meta l4proto tcp tcp dport 22 accept" in seen[-1]
    assert len(seen) == 2 and "20.42.0.7" not in seen[-1]
    assert "ip saddr { 198.51.100.0/28 } meta l4proto tcp tcp dport 22 accept" in seen[-1]
    assert seen[-1].rstrip().endswith("drop\n  }\n}")  # the rest is dropped, as Hetzner does
    if shutil.which("nft"):
        ruleset = tmp_path / "hcloud.nft"
        ruleset.write_text(seen[-1])
        checked = subprocess.run(["nft", "-c", "-f", str(ruleset)], capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
