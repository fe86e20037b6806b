"""The sandbox's failover adapters: Caddy as the DNS switch, the sandbox PostgreSQL as the
standby's database server, local processes as the hosts."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ops.adapters.s3_store import S3ObjectStore
from ops.backup import usecases as backups
from ops.deploy.hosts import LocalHosts
from ops.deploy.usecase import DRAIN_SECONDS
from ops.environment import Environment
from ops.errors import ConfigError, ExternalError
from ops.failover.usecase import LATE_WRITE_QUERIES, SEED_SETTINGS, FailoverPorts, require_backup
from ops.migrations import migrate
from ops.pg import connect, create_database, with_database
from ops.sandbox.state import load_state, save_state
from ops.sandbox.traffic_caddy import CaddyTrafficSwitch

FAILOVER_DATABASE = "main_failover"


def _switch_to(root: Path, role: str, address: str | None = None) -> str:
    state = load_state(root)
    target = address or f"127.0.0.1:{state.apps[role].port}"
    with CaddyTrafficSwitch(state.caddy_admin_url()) as switch:
        switch.set_upstreams([target])
    state.caddy.active_app = role
    save_state(root, state)
    return f"Caddy -> {role} ({target})"


def _redeploy(root: Path, role: str) -> str:
    hosts = LocalHosts(root)
    version, _address = hosts.current(role)
    candidate = hosts.start_candidate(role, version)
    problem = hosts.wait_ready(candidate, 30)
    if problem is not None:
        hosts.discard(candidate)
        raise ExternalError(f"{role} did not become ready on its new environment: {problem}")
    _switch_to(root, role, candidate.address)
    time.sleep(DRAIN_SECONDS)  # let requests routed under the old upstream finish
    hosts.promote(candidate)
    return f"{role} {version} on {candidate.address}"


def local_ports(env: Environment, root: Path) -> FailoverPorts:
    state = load_state(root)
    admin = state.database_url("postgres", admin=True)

    def restore(db_mode: str) -> dict[str, Any]:
        if db_mode.startswith("neon-pitr"):
            raise ConfigError("--db neon-pitr@TIME needs Neon; the sandbox restores from backups (--db latest-backup)")
        store = S3ObjectStore(env.storage, "backups")
        manifest = require_backup(backups.list_backups(env.name, store))
        create_database(admin, FAILOVER_DATABASE)
        target = env.model_copy(update={"database_urls": {"main": SecretStr(with_database(admin, FAILOVER_DATABASE))}})
        result = backups.restore(target, store, manifest)
        migrate(with_database(admin, FAILOVER_DATABASE))  # the backup may predate the code now deployed
        with connect(admin, autocommit=True) as conn:
            for name, value in SEED_SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")  # names and values are our constants
            conn.execute("SELECT pg_reload_conf()")
            time.sleep(0.5)  # the reload is a signal: give the postmaster a moment before asking what is pending
            pending = [str(r[0]) for r in conn.execute("SELECT name FROM pg_settings WHERE pending_restart")]
        return {"database": FAILOVER_DATABASE, "backup_id": manifest.id, "point": manifest.finished_at.isoformat(),
                "restored_tables": result["tables"], "settings_applied": len(SEED_SETTINGS),
                "settings_pending_restart": pending}

    def set_database(database: str) -> None:
        current = load_state(root)
        current.apps["standby"].database = database
        save_state(root, current)

    def late_writes(point: datetime) -> dict[str, int] | str:
        try:
            with connect(state.database_url("main", admin=True)) as conn:
                return {table: int(conn.execute(query, (point,)).fetchone()[0])  # type: ignore[index, arg-type]
                        for table, query in LATE_WRITE_QUERIES.items()}
        except ExternalError:
            return f"the old primary's database is unreachable: writes after {point.isoformat()} can't be counted"

    return FailoverPorts(
        move_traffic_to_standby=lambda: _switch_to(root, "standby"),
        restore_database=restore,
        set_standby_database=set_database,
        redeploy_standby=lambda: _redeploy(root, "standby"),
        public_url=state.public_url(),
        late_writes=late_writes,
    )


def failback(root: Path) -> dict[str, Any]:
    """Return traffic to the primary, on the database the standby serves from now."""
    state = load_state(root)
    database = state.apps["standby"].database
    state.apps["primary"].database = database
    save_state(root, state)
    deployed = _redeploy(root, "primary")
    return {"primary": deployed, "database": database,
            "note": "data stays in " + database + "; moving it back to main is planned maintenance "
                    "(ops backup create, then ops backup restore into main)" if database != "main" else ""}
