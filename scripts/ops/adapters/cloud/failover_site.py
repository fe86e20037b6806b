"""A cloud environment's failover adapters: Neon point-in-time restore (or the latest verified
backup restored into PostgreSQL on the standby host, for when Neon itself is down), the
standby's containers redeployed over SSH with the one deploy algorithm, and the old live
database asked for its late writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ops.adapters.cloud.clients import NeonClient
from ops.adapters.cloud.ssh_hosts import SshHosts
from ops.deploy.usecase import read_history, recorded_digests, roll_out
from ops.environment import Environment
from ops.errors import ConfigError, ExternalError
from ops.failover.restore import count_late_writes, restore_latest_backup
from ops.output import progress
from ops.pg import with_database
from ops.ports import LiveDatabase, ObjectStore

FAILOVER_DATABASE = "main_failover"
STANDBY_DATABASE_VARIABLE = "OPS_STANDBY_DATABASE_URL"


def standby_server_url() -> str:
    url = os.environ.get(STANDBY_DATABASE_VARIABLE, "")
    if not url:
        raise ConfigError(f"{STANDBY_DATABASE_VARIABLE}: required for --db latest-backup (the owner URL of the "
                          "PostgreSQL on the standby host)", hint="see runbooks/failover.md")
    return url


def standby_app_url(env: Environment, database: str) -> str:
    """The app's URL for `database` on the standby host's PostgreSQL: that server's address, the
    app's own role and password (the ones its Neon URL carries, so one secret serves both), always
    TLS. Never the server's owner URL: the owner of the tables passes row-level security by, and
    one tenant's request could then read every tenant's rows."""
    if env.app_database_url is None:
        raise ConfigError(f"stack outputs for {env.name}: no app database URL (connection_strings.<branch>.pooled)",
                          hint="the app's role on the standby server takes its name and password from it")
    app = urlsplit(env.app_database_url.get_secret_value())
    server = urlsplit(standby_server_url())
    if not app.username or not app.password:
        raise ConfigError(f"stack outputs for {env.name}: the app database URL has no role or password")
    host = server.hostname or ""
    netloc = f"{app.username}:{app.password}@{f'[{host}]' if ':' in host else host}"
    if server.port:
        netloc += f":{server.port}"
    query = dict(parse_qsl(server.query))
    if query.get("sslmode") in (None, "disable", "allow", "prefer"):
        query["sslmode"] = "require"  # the hosts' app refuses a non-local database without TLS
    return urlunsplit((server.scheme, netloc, f"/{database}", urlencode(query), ""))


class CloudSite:
    """FailoverSite for staging/production (and the lab, which is the same code)."""

    def __init__(self, env: Environment, store: ObjectStore, hosts: SshHosts, live: LiveDatabase,
                 neon: Callable[[], NeonClient]) -> None:
        self.env, self.store, self.hosts, self.live, self._neon = env, store, hosts, live, neon
        self.public_url = env.public_url
        self.home_database = env.branch

    def restore_database(self, mode: str, moment: str | None) -> dict[str, Any]:
        if mode == "latest-backup":
            return restore_latest_backup(self.env, self.store, standby_server_url(), FAILOVER_DATABASE, tune=False,
                                         app_url=standby_app_url(self.env, FAILOVER_DATABASE))
        if self.env.neon is None or self.env.branch not in self.env.neon.branch_ids:
            raise ConfigError(f"stack outputs: no Neon branch id for {self.env.branch} (neon_branches)")
        assert moment is not None  # parse_db_mode gives neon-pitr a time
        branch_id = self.env.neon.branch_ids[self.env.branch]
        preserve = f"{self.env.branch}_pre_failover_{datetime.now(UTC):%Y%m%dt%H%M%Sz}"
        with self._neon() as neon:
            # In place, the old state kept under a name: the branch's endpoints and connection
            # strings do not change, so the app's DATABASE_URL stays right.
            neon.restore_branch(self.env.neon.project_id, branch_id, source_branch_id=branch_id,
                                source_timestamp=moment, preserve_under_name=preserve)
        return {"database": self.env.branch, "kind": "branch", "point": moment, "old_state": preserve}

    def set_database(self, role: str, database: str) -> str:
        # The env file written at the redeploy carries it (see wiring.host_env_file).
        return f"{role} hosts -> {database} (written with the next env file)"

    def redeploy(self, role: str) -> str:
        names = [n for n in self.hosts.roles() if self.hosts.host(n).role == role]
        if not names:
            raise ConfigError(f"no {role} host in the stack outputs")
        self.hosts.write_env_files(names)
        version, _address = self.hosts.current(names[0])
        # The digests the history recorded: the image already on the standby is enough if the
        # registry is down during the incident.
        digests = recorded_digests(read_history(self.store, self.env.name), version)
        done = roll_out(self.hosts, version, roles=names, digests=digests, progress=progress)
        return ", ".join(f"{d['role']} {version} on {d['address']}" for d in done)

    def describe_hosts(self, role: str) -> list[dict[str, str]]:
        names = [n for n in self.hosts.roles() if self.hosts.host(n).role == role]
        if not names:
            raise ConfigError(f"no {role} host in the stack outputs")
        return [dict(zip(("host", "version", "address"), (n, *self.hosts.current(n)), strict=True)) for n in names]

    def _url_of(self, database: str) -> str:
        if database == self.env.branch:
            return self.env.database_url()
        if self.env.neon is not None:
            with self._neon() as neon:
                branch = neon.find_branch(self.env.neon.project_id, database)
                if branch is not None:  # a state a Neon restore preserved
                    return neon.connection_uri(self.env.neon.project_id, branch_id=str(branch["id"]),
                                               database=self.env.database_name, role=self.env.owner_role,
                                               pooled=False)
        return with_database(standby_server_url(), database)

    def late_writes(self, point: datetime, database: str) -> dict[str, int] | str:
        try:
            return count_late_writes(self._url_of(database), point)
        except ExternalError:
            return f"the old live database is unreachable: writes after {point.isoformat()} can't be counted"
