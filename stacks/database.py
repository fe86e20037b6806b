"""Database: the Neon project (Frankfurt, point-in-time history), branches, the app's role and database.

Ownership: the production stack owns the project and the `main` branch (and so the app's
role and database, which child branches inherit, and `main`'s read replica when there is one).
The staging stack owns `staging` (child of main) and `development` (child of staging); it reads
the project and main's ids from production through a StackReference. `pulumi destroy` on staging can never touch main.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from stacks.config import DatabaseConfig, StackNames
from stacks.providers.neon import NeonBranch, NeonDatabase, NeonProject, NeonReadReplica


@dataclass(frozen=True)
class DatabaseArgs:
    database: DatabaseConfig
    names: StackNames


class Database(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("autoenroll:database:Database", name, None, opts)
        d = args.database
        data_opts = pulumi.ResourceOptions(parent=self, protect=args.names.protect)
        endpoint: dict[str, Any] = {"min_cu": d.autoscaling_min_cu, "max_cu": d.autoscaling_max_cu,
                                    "suspend_timeout_seconds": d.suspend_timeout_seconds}
        self.branches: dict[str, NeonBranch] = {}
        self.databases: dict[str, NeonDatabase] = {}
        self.replicas: dict[str, NeonReadReplica] = {}

        if d.owns_project:
            project = NeonProject(f"{name}-project", project_name=d.project_name, org_id=d.org_id,
                                  region_id=d.region_id, pg_version=d.pg_version,
                                  history_retention_seconds=d.history_retention_seconds, opts=data_opts)
            self.project_id: pulumi.Output[str] = project.project_id
            main = NeonBranch(f"{name}-main", project_id=project.project_id, branch_name="main", parent_id=None,
                              protected=d.protect_main, adopt_id=project.default_branch_id, opts=data_opts,
                              **endpoint)
            self.branches["main"] = main
            self.databases["main"] = NeonDatabase(f"{name}-main-db", project_id=project.project_id,
                                                  branch_id=main.branch_id, database=d.database_name,
                                                  role=d.role_name, owner_role=d.owner_role_name, inherited=False,
                                                  opts=data_opts)
            if d.read_replica:
                # Scale to zero as Neon's default (300 s) where the plan lets us set it, even when `main` never
                # suspends: the replica serves browsing, and a read it is too slow to wake for goes to the
                # primary (autoenroll.db.lag_tolerant_read). On Free nothing is sent (refused there).
                replica_suspend = None if d.suspend_timeout_seconds is None else 300
                self.replicas["main"] = NeonReadReplica(
                    f"{name}-main-replica", project_id=project.project_id, branch_id=main.branch_id,
                    min_cu=d.autoscaling_min_cu, max_cu=d.autoscaling_max_cu, suspend_timeout_seconds=replica_suspend,
                    database=d.database_name, app_role=d.role_name, owner_role=d.owner_role_name,
                    app_password=self.databases["main"].app_password, opts=data_opts)
        else:
            # Staging reads production's outputs, so production comes up first (README: deploy order).
            # The name is built from the running stack's organization and project: on Pulumi Cloud
            # that is the real organization, on a self-managed backend the literal `organization`,
            # so one name is right on both (a hard-coded `organization/...` is valid only on the latter).
            reference = d.production_stack or f"{pulumi.get_organization()}/{pulumi.get_project()}/production"
            production = pulumi.StackReference(f"{name}-production", stack_name=reference,
                                               opts=pulumi.ResourceOptions(parent=self))
            self.project_id = production.require_output("neon_project_id")
            main_id = production.require_output("neon_branches").apply(lambda b: b["main"]["id"])
            staging = NeonBranch(f"{name}-staging", project_id=self.project_id, branch_name="staging",
                                 parent_id=main_id, protected=False, opts=data_opts, **endpoint)
            development = NeonBranch(f"{name}-development", project_id=self.project_id,
                                     branch_name="development", parent_id=staging.branch_id, protected=False,
                                     opts=data_opts, **endpoint)
            self.branches.update(staging=staging, development=development)
            for branch_name, branch in self.branches.items():
                # Role and database come down from main; only the connection strings are read.
                self.databases[branch_name] = NeonDatabase(
                    f"{name}-{branch_name}-db", project_id=self.project_id, branch_id=branch.branch_id,
                    database=d.database_name, role=d.role_name, owner_role=d.owner_role_name, inherited=True,
                    opts=data_opts)

        branch_outputs: dict[str, Any] = {
            b: pulumi.Output.all(r.branch_id, r.endpoint_id, r.endpoint_host).apply(
                lambda v: {"id": v[0], "endpoint_id": v[1], "host": v[2]})
            for b, r in self.branches.items()
        }
        if not d.owns_project:
            # main belongs to production; its id is here so `ops db refresh staging --from main` can name it.
            branch_outputs["main"] = main_id.apply(lambda i: {"id": i, "endpoint_id": None, "host": None})
        self.branch_outputs: pulumi.Output[dict[str, Any]] = pulumi.Output.all(**branch_outputs)
        self.connection_strings: pulumi.Output[dict[str, Any]] = pulumi.Output.secret(pulumi.Output.all(**{
            b: pulumi.Output.all(db.direct_uri, db.pooled_uri).apply(lambda v: {"direct": v[0], "pooled": v[1]})
            for b, db in self.databases.items()
        }))
        self.register_outputs({"project_id": self.project_id, "branches": self.branch_outputs,
                               "connection_strings": self.connection_strings})

    def app_replica_url(self, branch: str) -> pulumi.Output[str] | None:
        """The app's pooled URL through the branch's read replica (secret), or None when it has none."""
        replica = self.replicas.get(branch)
        return None if replica is None else pulumi.Output.secret(replica.pooled_uri)

    def app_database_url(self, branch: str) -> pulumi.Output[str]:
        """The pooled connection string the app uses (PgBouncer, as the seed asks)."""
        return pulumi.Output.secret(self.databases[branch].pooled_uri)
