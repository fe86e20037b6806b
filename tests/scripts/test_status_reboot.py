"""`ops status` says which host waits for a reboot (issue 29: the role never reboots by itself, so a
pending libc or kernel update is something on-call must see), without a host whose reboot verb fails
looking unreachable. The hosts are a recording stand-in of the `Hosts` port; the lab drill
(tests/drills/test_lab_reboot.py) reads the same through the deploy script over SSH."""

from __future__ import annotations

from typing import Any

import pytest

from ops.errors import ExternalError
from ops.status import HostRef, StatusPorts, hosts_part

pytestmark = pytest.mark.unit

REFS = (HostRef("app-primary", "app-primary", "primary", "10.0.0.2"),
        HostRef("app-standby", "app-standby", "standby", "10.0.0.3"))


class Hosts:
    def current(self, key: str) -> tuple[str, str]:
        return "v1", "127.0.0.1:8001"

    def slots(self, key: str) -> list[tuple[str, str, str]]:
        return [("127.0.0.1:8001", "live", "v1")]

    def serving(self, key: str) -> list[str]:
        return ["127.0.0.1:8001"]


def ports(pending: Any) -> StatusPorts:
    unused: Any = None
    return StatusPorts(env_name="production", home_database="main", hosts=Hosts, host_refs=REFS,
                       app_ready=lambda ref, address: None, objects=unused, live=unused, serving=None,
                       serving_source="", records=None, database_ping=unused, monitors=unused,
                       monitors_source="", dependencies={}, reboot_pending=pending)


def test_a_host_whose_update_waits_for_a_reboot_is_named_with_its_packages() -> None:
    part = hosts_part(ports(lambda ref: ["libc6", "libssl3"] if ref.role == "primary" else None))
    by_name = {h["host"]: h for h in part["hosts"]}
    assert by_name["app-primary"]["reboot_required"] is True
    assert by_name["app-primary"]["reboot_packages"] == ["libc6", "libssl3"]
    assert by_name["app-standby"]["reboot_required"] is False
    assert part["attention"] == ["host app-primary: an update waits for a reboot (libc6, libssl3): "
                                 "`ops hosts reboot --env production` moves its traffic first"]


def test_a_reboot_verb_that_fails_is_unknown_not_an_unreachable_host() -> None:
    def failing(ref: HostRef) -> list[str] | None:
        raise ExternalError("app-primary: `autoenroll-deploy reboot-required` answered 'usage: ...'")

    part = hosts_part(ports(failing))
    primary = part["hosts"][0]
    assert primary["reachable"] is True and primary["version"] == "v1"
    assert primary["reboot_required"] is None
    assert any("whether a reboot is pending is unknown" in a for a in part["attention"]), part["attention"]


def test_the_sandbox_has_no_reboot_column() -> None:
    part = hosts_part(ports(None))
    assert all("reboot_required" not in h for h in part["hosts"]) and part["attention"] == []
