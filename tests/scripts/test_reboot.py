"""`ops hosts reboot` (ops.reboot) against hosts and a traffic switch that keep a timeline: the
non-serving host first, the serving host only with its traffic on a ready host, never two hosts down,
a host without the reboot-required flag left alone, and a host that does not come back stopping the
command with traffic on the other. The lab drill (tests/drills/test_lab_reboot.py) does it over SSH."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ops.errors import ExternalError, RefusedError
from ops.reboot import plan_reboot, reboot_hosts
from tests.scripts.test_backup_units import MemoryStore

pytestmark = pytest.mark.unit


class Timeline:
    """Two hosts and the DNS switch; `events` is what happened, in order; a reboot takes the host down
    for `down_polls` questions, then it is back with its flag gone (unless it never comes back)."""

    def __init__(self, flags: dict[str, list[str]], *, serving: str = "primary",
                 ready: dict[str, bool] | None = None, comes_back: bool = True, down_polls: int = 2) -> None:
        self.flags = dict(flags)
        self.serving_role = serving
        self.ready_of = {"primary": True, "standby": True, **(ready or {})}
        self.down: dict[str, int] = {}
        self.comes_back, self.down_polls = comes_back, down_polls
        self.events: list[str] = []

    # RebootableHosts (names are the roles here, as in the lab's outputs)
    def names(self) -> list[str]:
        return sorted(["primary", "standby"], key=lambda n: n == self.serving_role)

    def role(self, name: str) -> str:
        return name

    def _check_up(self, name: str) -> None:
        if name in self.down:
            if self.down[name] > 0 or not self.comes_back:
                self.down[name] -= 1
                raise ExternalError(f"cannot reach the host {name} over SSH (reboot-required): refused")
            del self.down[name]
            self.flags.pop(name, None)  # /run is tmpfs: a boot clears the flag
            self.events.append(f"{name} up")

    def pending(self, name: str) -> list[str] | None:
        self._check_up(name)
        return self.flags.get(name)

    def reboot(self, name: str) -> str:
        if name not in self.flags:
            return "not required"
        others_down = [n for n in self.down if n != name]
        assert not others_down, f"{name} rebooted while {others_down} was down"
        assert self.serving_role != name, f"{name} rebooted while serving traffic"
        self.down[name] = self.down_polls
        self.events.append(f"{name} down")
        return "rebooting"

    def ready(self, name: str, _timeout: float) -> str | None:
        self._check_up(name)
        return None if self.ready_of[name] else "/ready answered 503"

    # TrafficSwitch
    def serving(self) -> str:
        return self.serving_role

    def records(self) -> dict[str, str]:
        return {"app": self.serving_role, "api": self.serving_role}

    def move_to(self, role: str, on_edit: Callable[[dict[str, Any]], None] = lambda _e: None) -> str:
        assert role not in self.down, f"traffic moved to {role}, which is down"
        self.serving_role = role
        self.events.append(f"traffic -> {role}")
        return role


def _run(timeline: Timeline) -> list[dict[str, Any]]:
    return reboot_hosts("staging", timeline, timeline, MemoryStore(), poll=0, timeout=5)  # type: ignore[arg-type]


def test_the_plan_names_what_asks_for_a_reboot_and_what_happens_to_traffic() -> None:
    timeline = Timeline({"primary": ["linux-image-6.1.0-30-amd64", "libc6"]})
    plan = plan_reboot("staging", timeline, timeline)
    assert [h["host"] for h in plan["hosts"]] == ["standby", "primary"]  # the serving host last
    standby, primary = plan["hosts"]
    assert not standby["required"] and standby["action"].startswith("no reboot required")
    assert primary["required"] and primary["serving"] and primary["packages"] == ["linux-image-6.1.0-30-amd64",
                                                                                  "libc6"]
    assert "move traffic to standby" in primary["action"] and "move traffic back" in primary["action"]
    assert timeline.events == []  # a plan changes nothing


def test_both_hosts_reboot_one_at_a_time_the_serving_one_with_its_traffic_away() -> None:
    timeline = Timeline({"primary": ["libc6"], "standby": ["libc6"]})
    done = _run(timeline)
    assert timeline.events == ["standby down", "standby up", "traffic -> standby", "primary down", "primary up",
                               "traffic -> primary"]
    assert [(h["host"], h["outcome"]) for h in done] == [("standby", "rebooted, ready"), ("primary", "rebooted, ready")]
    assert done[1]["traffic_moved_to"] == "standby"
    assert timeline.flags == {}


def test_a_host_no_update_asked_to_reboot_is_left_alone() -> None:
    timeline = Timeline({"standby": ["linux-image-6.1.0-30-amd64"]})
    done = _run(timeline)
    assert timeline.events == ["standby down", "standby up"]  # no traffic move: the primary was never touched
    assert done[1] == {"host": "primary", "role": "primary", "outcome": "no reboot required"}


def test_the_serving_host_is_not_rebooted_when_no_other_host_is_ready() -> None:
    timeline = Timeline({"primary": ["libc6"]}, ready={"standby": False})
    with pytest.raises(RefusedError, match="primary serves staging's traffic and no other host answers ready"):
        _run(timeline)
    assert timeline.events == [] and timeline.serving_role == "primary"


def test_the_standby_is_not_rebooted_while_the_serving_host_is_not_ready() -> None:
    timeline = Timeline({"standby": ["libc6"]}, ready={"primary": False})
    with pytest.raises(RefusedError, match="the serving host primary is not ready"):
        _run(timeline)
    assert timeline.events == []


def test_a_host_that_does_not_come_back_stops_the_command_with_traffic_on_the_other() -> None:
    timeline = Timeline({"primary": ["libc6"], "standby": ["libc6"]}, serving="standby", comes_back=False)
    with pytest.raises(ExternalError, match=r"primary is not back within 5s of its reboot: unreachable .*"
                                            r"traffic is still on standby; no other host was rebooted"):
        _run(timeline)
    assert timeline.events == ["primary down"]  # the serving standby was never touched
    assert timeline.serving_role == "standby"
