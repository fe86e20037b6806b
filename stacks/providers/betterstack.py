"""Pulumi dynamic provider for BetterStack Uptime (monitors, heartbeats, status pages).

One provider serves the three kinds: the resource's `kind` picks the API collection and
`attributes` is the documented request body. The token comes from `BETTERSTACK_API_TOKEN`
when the provider runs, so it never enters state. A heartbeat's ping URL (it embeds a
token) is a secret output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from clients.betterstack_api import BetterStackClient
from stacks.errors import maps_client_errors
from stacks.providers.portable import Portable

client_factory: Callable[[], BetterStackClient] = BetterStackClient.from_environ


def integers(value: Any) -> Any:
    """Whole numbers as JSON integers. Pulumi carries every number as a double (protobuf Struct),
    so `check_frequency: 60` reaches the provider as 60.0; BetterStack's numeric attributes are all
    integers (its Terraform schema: TypeInt), and the API refuses or misreads `60.0`."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [integers(v) for v in value]
    if isinstance(value, dict):
        return {k: integers(v) for k, v in value.items()}
    return value


@maps_client_errors
class BetterStackProvider(Portable, ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        # `create_only` (e.g. monitors made paused) is sent once, never diffed: afterwards the attribute
        # belongs to whoever changes it (`ops monitors resume` after the first deploy).
        attributes = {**props["attributes"], **(props.get("create_only") or {})}
        data = client_factory().create(props["kind"], integers(attributes))
        return CreateResult(id_=str(data["id"]), outs={**props, "url": data["attributes"].get("url")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        data = client_factory().get(props["kind"], id_)
        if data is None:
            return ReadResult(None, {})
        known = {k: data["attributes"].get(k) for k in props["attributes"]}
        return ReadResult(id_, {**props, "attributes": known, "url": data["attributes"].get("url")})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["kind"] if olds.get("kind") != news.get("kind") else []
        changed = bool(replaces) or olds.get("attributes") != news.get("attributes")
        return DiffResult(changes=changed, replaces=replaces, delete_before_replace=bool(replaces))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        data = client_factory().update(news["kind"], id_, integers(news["attributes"]))
        return UpdateResult(outs={**olds, **news, "url": data["attributes"].get("url")})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client_factory().delete(props["kind"], id_)


class BetterStackResource(Resource):
    url: pulumi.Output[str | None]

    def __init__(self, name: str, *, kind: str, attributes: dict[str, Any],
                 create_only: dict[str, Any] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["url"]))
        super().__init__(BetterStackProvider(), name, {"kind": kind, "attributes": attributes,
                                                       "create_only": create_only, "url": None}, opts)
