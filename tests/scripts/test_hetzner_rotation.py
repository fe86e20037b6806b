"""The load balancer's rotation on Hetzner (ops.adapters.cloud.hetzner_lb) against the Hetzner fake's
load-balancer API through the official SDK, and a rolling deploy driving it: one target removed and
added back at a time, the next removed only once the one before reports healthy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hcloud import Client

from ops.adapters.cloud.hetzner_lb import HetznerRotation
from ops.deploy import usecase
from ops.errors import ConfigError
from stacks.compute import lb_health_check
from tests.hcloud_fake import FakeHetzner, serving
from tests.scripts.test_deploy_rolling import Fleet

pytestmark = pytest.mark.unit

NAMES = ["app-1", "app-2", "app-3"]
LB_ID = 7


@pytest.fixture
def fake() -> Iterator[FakeHetzner]:
    hetzner = FakeHetzner()
    for index, name in enumerate(NAMES):
        hetzner.add_server(11 + index, name, {"role": "primary"})
    hetzner.add_load_balancer(LB_ID, "autoenroll-production-lb", [
        {"protocol": "tcp", "listen_port": 443, "destination_port": 443, "health_check": dict(lb_health_check())}],
        [11, 12, 13])
    with serving(hetzner):
        yield hetzner


def _rotation(fake: FakeHetzner, names: list[str] = NAMES) -> HetznerRotation:
    return HetznerRotation(Client(fake.token, api_endpoint=fake.url, poll_interval=0), str(LB_ID), names)


def test_targets_leave_and_come_back_as_the_api_says(fake: FakeHetzner) -> None:
    rotation = _rotation(fake)
    assert rotation.members() == NAMES and all(rotation.healthy(n) for n in NAMES)
    rotation.take_out("app-2")
    assert rotation.members() == ["app-1", "app-3"] and not rotation.healthy("app-2")
    assert fake.target_history == [("remove_target", 12)]
    checked: set[int] = set()
    # Just added, a target is "unknown" until its health check has run once.
    fake.health = lambda sid: "healthy" if sid in checked else None
    rotation.put_back("app-2")
    assert "app-2" in rotation.members() and not rotation.healthy("app-2")
    checked.add(12)
    assert rotation.healthy("app-2")
    fake.health = lambda sid: "unhealthy" if sid == 13 else "healthy"
    assert not rotation.healthy("app-3")  # the app down on app-3: its check fails, it gets no traffic


def test_a_rolling_deploy_rotates_one_target_at_a_time_through_the_api(fake: FakeHetzner,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DRAIN_SECONDS", "LB_DRAIN_SECONDS", "LB_POLL_SECONDS"):
        monkeypatch.setattr(usecase, name, 0.0)
    fleet = Fleet(3, standby=False)
    unchecked: set[int] = set()

    def health(server_id: int) -> str | None:
        if server_id in unchecked:  # the first look after add_target: not yet checked
            unchecked.discard(server_id)
            return None
        return "healthy"

    fake.health = health
    rotation = _rotation(fake)
    real_put_back = rotation.put_back

    def put_back(role: str) -> None:
        real_put_back(role)
        unchecked.add(11 + NAMES.index(role))

    monkeypatch.setattr(rotation, "put_back", put_back)
    usecase.roll_out(fleet, "v2", rotation=rotation)  # type: ignore[arg-type]
    assert set(fleet.versions().values()) == {"v2"}
    assert fake.target_history == [("remove_target", 11), ("add_target", 11), ("remove_target", 12),
                                   ("add_target", 12), ("remove_target", 13), ("add_target", 13)]
    assert [t["server"]["id"] for t in fake.load_balancers[LB_ID]["targets"]] == [11, 12, 13]


def test_a_host_the_project_does_not_have_is_named(fake: FakeHetzner) -> None:
    rotation = _rotation(fake, ["app-1", "app-9"])
    with pytest.raises(ConfigError, match="no server named app-9"):
        rotation.members()
