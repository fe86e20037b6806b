"""The load balancer's rotation on Hetzner (ops.ports.Rotation), through the official `hcloud` SDK.

A host is in the rotation while it is one of the load balancer's server targets (stacks/compute.py
adds one per primary); `take_out` removes that target and `put_back` adds it again, the two target
actions of Hetzner's API (docs.hetzner.cloud, Load Balancer Actions: add_target, remove_target).
A target is healthy when every service's health check reports "healthy" for it (the target's
`health_status`); "unknown" (just added, not yet checked) is not healthy.

The hosts are named as the environment names them (the server names, stack output `servers`); the
server ids come from the API by name, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hcloud import APIException, Client
from hcloud.load_balancers import BoundLoadBalancer, LoadBalancerTarget
from hcloud.servers import BoundServer

from ops.errors import ConfigError, ExternalError

T = TypeVar("T")


class HetznerRotation:
    def __init__(self, client: Client, load_balancer_id: str, primaries: Sequence[str]) -> None:
        self._client = client
        self._lb_id = int(load_balancer_id)
        self._primaries = list(primaries)
        self._ids: dict[str, int] = {}

    def _api(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except APIException as exc:
            raise ExternalError(f"Hetzner API: {what} on load balancer {self._lb_id}: {exc.message}",
                                hint="HCLOUD_TOKEN needs read/write on the project") from None

    def _server_id(self, name: str) -> int:
        if name not in self._ids:
            server = self._api(f"finding server {name}", lambda: self._client.servers.get_by_name(name))
            if server is None or server.id is None:
                raise ConfigError(f"load balancer {self._lb_id}: no server named {name} in the Hetzner project")
            self._ids[name] = int(server.id)
        return self._ids[name]

    def _load_balancer(self) -> BoundLoadBalancer:
        return self._api("reading its targets", lambda: self._client.load_balancers.get_by_id(self._lb_id))

    def _target_ids(self) -> dict[int, list[str]]:
        """Server id -> the statuses its health checks report (one per service)."""
        out: dict[int, list[str]] = {}
        for target in self._load_balancer().targets or []:
            if target.type == "server" and target.server is not None and target.server.id is not None:
                out[int(target.server.id)] = [str(h.status) for h in target.health_status or []]
        return out

    def expected(self) -> list[str]:
        return list(self._primaries)

    def members(self) -> list[str]:
        targets = self._target_ids()
        return [name for name in self._primaries if self._server_id(name) in targets]

    def healthy(self, role: str) -> bool:
        statuses = self._target_ids().get(self._server_id(role))
        return bool(statuses) and all(s == "healthy" for s in statuses or [])

    def _target(self, role: str) -> LoadBalancerTarget:
        server = BoundServer(self._client.servers, {"id": self._server_id(role)}, complete=False)
        return LoadBalancerTarget(type="server", server=server, use_private_ip=True)

    def take_out(self, role: str) -> None:
        action = self._api(f"removing {role} from its targets",
                           lambda: self._client.load_balancers.remove_target(self._load_balancer(), self._target(role)))
        self._api(f"waiting for {role}'s removal", action.wait_until_finished)

    def put_back(self, role: str) -> None:
        action = self._api(f"adding {role} to its targets",
                           lambda: self._client.load_balancers.add_target(self._load_balancer(), self._target(role)))
        self._api(f"waiting for {role}'s addition", action.wait_until_finished)
