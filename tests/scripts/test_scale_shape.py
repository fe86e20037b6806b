"""The checklist's auto-scaling item and `ops health` judge the scale shape (issue 30, item 3): every
host on one version, every load balancer target healthy, as the Hetzner fake's load-balancer API
reports them (the hosts a model: their versions, each ready)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hcloud import Client

from ops import checklist
from ops.adapters.cloud.hetzner_lb import HetznerRotation
from ops.checklist import ChecklistPorts
from ops.health import scale_checks
from ops.ports import Candidate
from stacks.compute import lb_health_check
from tests.hcloud_fake import FakeHetzner, serving

pytestmark = pytest.mark.unit

NAMES = ["app-1", "app-2", "app-3"]


class VersionedHosts:
    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions

    def current(self, role: str) -> tuple[str, str]:
        return self.versions[role], "127.0.0.1:8000"

    def wait_ready(self, candidate: Candidate, timeout: float) -> str | None:
        return None


@pytest.fixture
def fake() -> Iterator[FakeHetzner]:
    hetzner = FakeHetzner()
    for index, name in enumerate(NAMES):
        hetzner.add_server(21 + index, name)
    hetzner.add_load_balancer(3, "autoenroll-production-lb", [
        {"protocol": "tcp", "listen_port": 443, "destination_port": 443, "health_check": dict(lb_health_check())}],
        [21, 22, 23])
    with serving(hetzner):
        yield hetzner


def _rotation(fake: FakeHetzner) -> HetznerRotation:
    return HetznerRotation(Client(fake.token, api_endpoint=fake.url, poll_interval=0), "3", NAMES)


def _scaling(versions: dict[str, str], rotation: Any = None) -> tuple[str, str]:
    never: Any = lambda *_a: ("skip", "")  # noqa: E731 - the items this test does not run
    ports = ChecklistPorts(hosts=VersionedHosts(versions), host_names={n: n for n in versions},  # type: ignore[arg-type]
                           objects=None, configuration=never, edge_tls=never, monitoring=never,  # type: ignore[arg-type]
                           stripe_registration=never, dns=never, rotation=rotation)
    return checklist._scaling(None, ports, None)  # type: ignore[arg-type]


def test_hosts_on_two_versions_fail_the_scaling_item_naming_them() -> None:
    status, evidence = _scaling({"app-1": "v2", "app-2": "v2", "app-3": "v1"})
    assert status == "fail" and "hosts differ: v1: app-3; v2: app-1, app-2" in evidence
    status, evidence = _scaling(dict.fromkeys(NAMES, "v2"))
    assert status == "pass" and "one version on every host (v2: app-1, app-2, app-3)" in evidence


def test_an_unhealthy_or_missing_target_fails_the_scaling_item(fake: FakeHetzner) -> None:
    same = dict.fromkeys(NAMES, "v2")
    status, evidence = _scaling(same, _rotation(fake))
    assert status == "pass" and "3/3 load balancer targets healthy" in evidence
    fake.health = lambda server_id: "unhealthy" if server_id == 22 else "healthy"
    status, evidence = _scaling(same, _rotation(fake))
    assert status == "fail" and "unhealthy (their /ready through Caddy fails): app-2" in evidence
    fake.health = lambda _server_id: "healthy"
    fake.load_balancers[3]["targets"].pop()  # app-3 left out of the rotation (an interrupted deploy)
    status, evidence = _scaling(same, _rotation(fake))
    assert status == "fail" and "not targets (out of rotation): app-3" in evidence


def test_ops_health_behind_a_load_balancer_judges_targets_and_versions(fake: FakeHetzner) -> None:
    targets, versions = scale_checks(_rotation(fake), ["v2"] * 6)
    assert targets.ok and versions.ok and versions.detail == "v2 in 6 of 6 answers"
    fake.health = lambda server_id: "unknown" if server_id == 21 else "healthy"
    targets, versions = scale_checks(_rotation(fake), ["v2", "v1", "v2", "v2", "v1", "v2"])
    assert not targets.ok and "app-1" in targets.detail
    assert not versions.ok and versions.detail.startswith("v1 in 2 of 6 answers, v2 in 4 of 6 answers: hosts differ")
