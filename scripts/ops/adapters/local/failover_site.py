"""The sandbox's FailoverSite: the sandbox PostgreSQL as the standby's database server, local
processes as the hosts (its traffic switch, Caddy standing in for DNS, is ops.adapters.local.traffic)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from ops.adapters.local.hosts import LocalHosts
from ops.deploy.usecase import roll_out
from ops.environment import Environment
from ops.errors import ConfigError, ExternalError
from ops.failover.restore import count_late_writes, restore_latest_backup
from ops.pg import with_database
from ops.ports import ObjectStore
from ops.sandbox.state import load_state, save_state

FAILOVER_DATABASE = "main_failover"


class SandboxSite:
    """FailoverSite for the sandbox."""

    home_database = "main"

    def __init__(self, env: Environment, root: Path, store: ObjectStore) -> None:
        self.env, self.root, self.store = env, root, store
        self.public_url = load_state(root).public_url()

    def restore_database(self, mode: str, _moment: str | None) -> dict[str, Any]:
        if mode == "neon-pitr":
            raise ConfigError("--db neon-pitr@TIME needs Neon; the sandbox restores from backups (--db latest-backup)")
        admin = load_state(self.root).database_url("postgres", admin=True)
        return restore_latest_backup(self.env, self.store, admin, FAILOVER_DATABASE, tune=True)

    def set_database(self, role: str, database: str) -> str:
        state = load_state(self.root)
        state.apps[role].database = database
        save_state(self.root, state)
        return f"{role} -> {database}"

    def redeploy(self, role: str) -> str:
        hosts = LocalHosts(self.root)
        version, _address = hosts.current(role)
        done = roll_out(hosts, version, roles=[role])
        return f"{role} {version} on {done[0]['address']}"

    def describe_hosts(self, role: str) -> list[dict[str, str]]:
        version, address = LocalHosts(self.root).current(role)
        return [{"host": role, "version": version, "address": address}]

    def late_writes(self, point: datetime, database: str) -> dict[str, int] | str:
        admin = load_state(self.root).database_url("postgres", admin=True)
        try:
            return count_late_writes(with_database(admin, database), point)
        except ExternalError:
            return f"the old primary's database is unreachable: writes after {point.isoformat()} can't be counted"
