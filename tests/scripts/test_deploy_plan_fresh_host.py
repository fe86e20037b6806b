"""`ops deploy --plan` before the first deploy: a fresh host serves nothing and its Caddy may not
run yet (it starts once the deploy writes its certificate), so the plan must not ask it."""

from __future__ import annotations

import pytest

from ops.deploy.usecase import plan_hosts
from ops.errors import ExternalError
from ops.ports import NOTHING_DEPLOYED

pytestmark = pytest.mark.unit


class Hosts:
    """Two hosts; `current` as the deploy script answers; Caddy's admin API down on fresh ones."""

    def __init__(self, deployed: dict[str, tuple[str, str]]) -> None:
        self.deployed = deployed

    def roles(self) -> list[str]:
        return ["standby-host", "primary-host"]

    def current(self, role: str) -> tuple[str, str]:
        return self.deployed.get(role, (NOTHING_DEPLOYED, "-"))

    def serving(self, role: str) -> list[str]:
        if role not in self.deployed:
            raise ExternalError(f"ssh {role} caddy failed (exit 7): Couldn't connect to localhost port 2019")
        return [self.deployed[role][1]]

    def slots(self, role: str) -> list[tuple[str, str, str]]:
        version, address = self.current(role)
        return [(address, "live", version)] if role in self.deployed else []


def test_a_fresh_host_is_planned_as_a_first_slot_without_asking_its_caddy() -> None:
    steps = plan_hosts(Hosts({}), "1.2.0")  # type: ignore[arg-type]
    assert [(s["role"], s["from"], s["slot"], s["traffic"]) for s in steps] == [
        ("standby-host", NOTHING_DEPLOYED, "a first slot", "none (this host is not serving)"),
        ("primary-host", NOTHING_DEPLOYED, "a first slot", "none (this host is not serving)")]


def test_a_deployed_host_still_has_its_caddy_asked() -> None:
    steps = plan_hosts(Hosts({"primary-host": ("1.1.0", "127.0.0.1:8000")}), "1.2.0")  # type: ignore[arg-type]
    assert "moves 127.0.0.1:8000 -> the 1.2.0 candidate" in steps[1]["traffic"]
    assert steps[0]["slot"] == "a first slot"


class CaddyDownHosts(Hosts):
    """A host with a version recorded whose Caddy is down (its certificate gone): the workflow
    harness met it when an earlier deploy's files outlived the containers."""

    def serving(self, role: str) -> list[str]:
        raise ExternalError(f"ssh {role} caddy failed (exit 7): Couldn't connect to localhost port 2019")


def test_a_deployed_host_whose_caddy_is_down_is_planned_not_refused() -> None:
    steps = plan_hosts(CaddyDownHosts({"primary-host": ("1.1.0", "127.0.0.1:8000")}), "1.2.0")  # type: ignore[arg-type]
    assert steps[1]["from"] == "1.1.0" and steps[1]["slot"] == "the free slot beside 127.0.0.1:8000"
    assert steps[1]["traffic"].startswith("unknown: this host's Caddy does not answer (ssh primary-host caddy failed")
