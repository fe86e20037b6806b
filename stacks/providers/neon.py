"""Pulumi dynamic providers for Neon (no maintained Python Pulumi provider exists).

Four resources, each with create, read, update, delete and diff over the Neon API v2
(`clients.neon_api`, which retries 423/429/5xx and polls operations; its errors reach Pulumi as
`stacks.errors`, mapped by `maps_client_errors`):
- `NeonProject`: the project in Frankfurt with its point-in-time history window;
- `NeonBranch`: a branch with its read-write endpoint and autoscaling limits (`adopt` takes
  over the project's default branch instead of creating one);
- `NeonDatabase`: the owner role (migrations, ops) and the database on a branch, the direct
  connection string (owner) and the pooled one (the app's role) as secret outputs. Only the
  owner is made through the API: Neon makes every API role a member of `neon_superuser`
  (BYPASSRLS, CREATEROLE, CREATEDB; ../shared/reference/providers.md §10), so an app role made
  here could `SET ROLE neon_superuser` and read every tenant around row-level security. The
  app's role is made in SQL by the owner (`ops db migrate`, with the password generated here),
  which gives it default privileges and only the grants the migrations give;
- `NeonReadReplica`: a read_only endpoint on a branch (a read replica) and the app's pooled URL
  through it (secret), for the app's lag-tolerant reads (DATABASE_REPLICA_URL).
The API key comes from `NEON_API_KEY` when the provider runs, so it never enters state.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from clients.neon_api import NeonClient
from stacks.errors import maps_client_errors
from stacks.providers.portable import Portable

# Tests replace this with a client on an HTTP fake.
client_factory: Callable[[], NeonClient] = NeonClient.from_environ


def _diff(olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...], replace_on: tuple[str, ...]) -> DiffResult:
    changed = [k for k in keys if olds.get(k) != news.get(k)]
    replaces = [k for k in changed if k in replace_on]
    return DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=bool(replaces))


# --------------------------------------------------------------------------- project

PROJECT_KEYS = ("name", "org_id", "region_id", "pg_version", "history_retention_seconds")


@maps_client_errors
class NeonProjectProvider(Portable, ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_factory()
        result = client.create_project(name=props["name"], org_id=props["org_id"], region_id=props["region_id"],
                                       pg_version=int(props["pg_version"]),
                                       history_retention_seconds=int(props["history_retention_seconds"]))
        project, branch = result["project"], result["branch"]
        return CreateResult(id_=project["id"], outs={**props, "project_id": project["id"],
                                                     "default_branch_id": branch["id"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        project = client_factory().get_project(id_)
        if project is None:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, "name": project["name"], "region_id": project["region_id"],
                                "pg_version": project["pg_version"],
                                "history_retention_seconds": project.get("history_retention_seconds")})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A project's organization, region and major version can't change in place.
        return _diff(olds, news, PROJECT_KEYS, ("org_id", "region_id", "pg_version"))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client_factory().update_project(id_, name=news["name"],
                                        history_retention_seconds=int(news["history_retention_seconds"]))
        return UpdateResult(outs={**olds, **news})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        client_factory().delete_project(id_)


class NeonProject(Resource):
    project_id: pulumi.Output[str]
    default_branch_id: pulumi.Output[str]

    def __init__(self, name: str, *, project_name: str, org_id: str, region_id: str, pg_version: int,
                 history_retention_seconds: int, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NeonProjectProvider(), name, {
            "name": project_name, "org_id": org_id, "region_id": region_id, "pg_version": pg_version,
            "history_retention_seconds": history_retention_seconds,
            "project_id": None, "default_branch_id": None,
        }, opts)


# --------------------------------------------------------------------------- branch

BRANCH_KEYS = ("project_id", "name", "parent_id", "min_cu", "max_cu", "suspend_timeout_seconds", "protected")


def _endpoint_settings(props: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's compute settings. No suspend_timeout_seconds when the stack sets none: Neon's Free
    plan refuses any explicit value ("suspend interval changing is not allowed for your account")."""
    settings: dict[str, Any] = {"autoscaling_limit_min_cu": float(props["min_cu"]),
                                "autoscaling_limit_max_cu": float(props["max_cu"])}
    if props.get("suspend_timeout_seconds") is not None:
        settings["suspend_timeout_seconds"] = int(props["suspend_timeout_seconds"])
    return settings


@maps_client_errors
class NeonBranchProvider(Portable, ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_factory()
        project_id = props["project_id"]
        if props.get("adopt_id"):
            branch_id = props["adopt_id"]
            client.update_branch(project_id, branch_id, name=props["name"], protected=bool(props["protected"]))
            endpoints = client.branch_endpoints(project_id, branch_id)
            endpoint = next(e for e in endpoints if e["type"] == "read_write")
            client.update_endpoint(project_id, endpoint["id"], **_endpoint_settings(props))
        else:
            result = client.create_branch(project_id, name=props["name"], parent_id=props.get("parent_id"),
                                          endpoint=_endpoint_settings(props))
            branch_id = result["branch"]["id"]
            endpoint = result["endpoints"][0]
            if props.get("protected"):
                client.update_branch(project_id, branch_id, protected=True)
        return CreateResult(id_=branch_id, outs={**props, "branch_id": branch_id, "endpoint_id": endpoint["id"],
                                                 "endpoint_host": endpoint["host"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        branch = client_factory().get_branch(props["project_id"], id_)
        if branch is None:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, "name": branch["name"], "protected": branch.get("protected", False)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Moving a branch to another project or parent means a new branch.
        return _diff(olds, news, BRANCH_KEYS, ("project_id", "parent_id"))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = client_factory()
        client.update_branch(news["project_id"], id_, name=news["name"], protected=bool(news["protected"]))
        client.update_endpoint(news["project_id"], olds["endpoint_id"], **_endpoint_settings(news))
        return UpdateResult(outs={**olds, **news})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        if props.get("adopt_id"):
            return  # the project's default branch goes with the project
        client_factory().delete_branch(props["project_id"], id_)


class NeonBranch(Resource):
    branch_id: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    endpoint_host: pulumi.Output[str]

    def __init__(self, name: str, *, project_id: pulumi.Input[str], branch_name: str,
                 parent_id: pulumi.Input[str] | None, min_cu: float, max_cu: float, suspend_timeout_seconds: int | None,
                 protected: bool, adopt_id: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(NeonBranchProvider(), name, {
            "project_id": project_id, "name": branch_name, "parent_id": parent_id, "min_cu": min_cu,
            "max_cu": max_cu, "suspend_timeout_seconds": suspend_timeout_seconds, "protected": protected,
            "adopt_id": adopt_id, "branch_id": None, "endpoint_id": None, "endpoint_host": None,
        }, opts)


# --------------------------------------------------------------------------- role + database

DATABASE_KEYS = ("project_id", "branch_id", "database", "role", "owner_role")


@maps_client_errors
class NeonDatabaseProvider(Portable, ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_factory()
        project_id, branch_id = props["project_id"], props["branch_id"]
        if not props.get("inherited"):
            client.create_role(project_id, branch_id, props["owner_role"])
            client.create_database(project_id, branch_id, props["database"], props["owner_role"])
        # Each branch's app role gets its own password: `ops db migrate --env E` sets it on E's branch
        # (a branch has its own copy of the roles), so staging never holds production's.
        props = {**props, "app_password": props.get("app_password") or secrets.token_urlsafe(32)}
        return CreateResult(id_=f"{branch_id}/{props['database']}", outs={**props, **self._uris(client, props)})

    @staticmethod
    def _uris(client: NeonClient, props: dict[str, Any]) -> dict[str, str]:
        common = {"branch_id": props["branch_id"], "database": props["database"]}
        pooled = urlsplit(client.connection_uri(props["project_id"], pooled=True, role=props["owner_role"], **common))
        # Neon's connection_uri knows only API roles' passwords; the app's role is ours, so its URI is the
        # owner's pooled one (host, database, sslmode and channel_binding as Neon gives them) with our role.
        netloc = f"{quote(props['role'], safe='')}:{quote(props['app_password'], safe='')}@{pooled.hostname}"
        if pooled.port:
            netloc += f":{pooled.port}"
        return {"direct_uri": client.connection_uri(props["project_id"], pooled=False, role=props["owner_role"],
                                                    **common),
                "pooled_uri": pooled._replace(netloc=netloc).geturl()}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_, {**props, **self._uris(client_factory(), props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _diff(olds, news, DATABASE_KEYS, DATABASE_KEYS)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return  # dropped with its branch; deleting data on a rename is never what anyone wants


class NeonDatabase(Resource):
    direct_uri: pulumi.Output[str]
    pooled_uri: pulumi.Output[str]
    app_password: pulumi.Output[str]

    def __init__(self, name: str, *, project_id: pulumi.Input[str], branch_id: pulumi.Input[str], database: str,
                 role: str, owner_role: str, inherited: bool, opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["direct_uri", "pooled_uri", "app_password"]))
        super().__init__(NeonDatabaseProvider(), name, {
            "project_id": project_id, "branch_id": branch_id, "database": database, "role": role,
            "owner_role": owner_role, "inherited": inherited,
            "direct_uri": None, "pooled_uri": None, "app_password": None,
        }, opts)


# --------------------------------------------------------------------------- read replica

REPLICA_KEYS = ("project_id", "branch_id", "autoscaling_limit_min_cu", "autoscaling_limit_max_cu",
                "suspend_timeout_seconds", "database_name", "app_role", "owner_role_name")


def _replica_settings(props: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {"autoscaling_limit_min_cu": float(props["autoscaling_limit_min_cu"]),
                                "autoscaling_limit_max_cu": float(props["autoscaling_limit_max_cu"])}
    if props.get("suspend_timeout_seconds") is not None:  # none sent on Free (see _endpoint_settings)
        settings["suspend_timeout_seconds"] = int(props["suspend_timeout_seconds"])
    return settings


@maps_client_errors
class NeonReadReplicaProvider(Portable, ResourceProvider):
    """A read_only compute endpoint on a branch (Neon's read replica: same storage, no copy of the data),
    and the app's pooled URL through it: the branch's app role and password (NeonDatabase made them;
    a replica serves the same roles), on the replica's host."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        client = client_factory()
        result = client.create_endpoint(props["project_id"], props["branch_id"], endpoint_type="read_only",
                                        **_replica_settings(props))
        endpoint = result["endpoint"]
        outs = {**props, "endpoint_id": endpoint["id"], "endpoint_host": endpoint["host"]}
        return CreateResult(id_=endpoint["id"], outs={**outs, "pooled_uri": self._uri(client, outs)})

    @staticmethod
    def _uri(client: NeonClient, props: dict[str, Any]) -> str:
        pooled = urlsplit(client.connection_uri(props["project_id"], branch_id=props["branch_id"],
                                                endpoint_id=props["endpoint_id"], database=props["database_name"],
                                                role=props["owner_role_name"], pooled=True))
        netloc = f"{quote(props['app_role'], safe='')}:{quote(props['app_password'], safe='')}@{pooled.hostname}"
        if pooled.port:
            netloc += f":{pooled.port}"
        return pooled._replace(netloc=netloc).geturl()

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        client = client_factory()
        endpoint = client.get_endpoint(props["project_id"], id_)
        if endpoint is None:
            return ReadResult(None, {})
        outs = {**props, "endpoint_id": id_, "endpoint_host": endpoint["host"]}
        return ReadResult(id_, {**outs, "pooled_uri": self._uri(client, outs)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Another project or branch is another endpoint; sizes and the URL's parts change in place.
        return _diff(olds, news, (*REPLICA_KEYS, "app_password"), ("project_id", "branch_id"))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        client = client_factory()
        client.update_endpoint(news["project_id"], id_, **_replica_settings(news))
        outs = {**olds, **news, "endpoint_id": id_, "endpoint_host": olds["endpoint_host"]}
        return UpdateResult(outs={**outs, "pooled_uri": self._uri(client, outs)})

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        client_factory().delete_endpoint(props["project_id"], id_)


class NeonReadReplica(Resource):
    endpoint_id: pulumi.Output[str]
    endpoint_host: pulumi.Output[str]
    pooled_uri: pulumi.Output[str]

    def __init__(self, name: str, *, project_id: pulumi.Input[str], branch_id: pulumi.Input[str], min_cu: float,
                 max_cu: float, suspend_timeout_seconds: int | None, database: str, app_role: str, owner_role: str,
                 app_password: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            additional_secret_outputs=["pooled_uri", "app_password"]))
        super().__init__(NeonReadReplicaProvider(), name, {
            "project_id": project_id, "branch_id": branch_id, "endpoint_type": "read_only",
            "autoscaling_limit_min_cu": min_cu, "autoscaling_limit_max_cu": max_cu,
            "suspend_timeout_seconds": suspend_timeout_seconds, "database_name": database, "app_role": app_role,
            "owner_role_name": owner_role, "app_password": app_password,
            "endpoint_id": None, "endpoint_host": None, "pooled_uri": None,
        }, opts)
