"""The one place that turns an `Environment` into the ports a use-case needs.

It is the only code that branches on the kind of environment (tests/scripts/test_wiring.py
scans for any other): the sandbox (`local`) gets its local stand-ins, every other
environment (staging, production, and the lab, which is the same path with the SaaS control
planes faked) gets the cloud adapters. Commands parse flags, ask here for ports, call a
use-case and render; they never choose an adapter themselves.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ops.environment import ENV_NAMES, AppHost, Environment, from_outputs, read_outputs
from ops.errors import ConfigError
from ops.paths import sandbox_dir
from ops.ports import (
    BranchStore,
    FailoverSite,
    Heartbeat,
    Hosts,
    LiveDatabase,
    ObjectStore,
    Rotation,
    TrafficSwitch,
)

if TYPE_CHECKING:
    from ops.adapters.cloud.ssh_hosts import SshHosts
    from ops.checklist import ChecklistPorts

SANDBOX = "local"


def _sandbox(env: Environment) -> bool:
    return env.name == SANDBOX


def resolve(name: str, *, root: Path | None = None, live: bool = True) -> Environment:
    """The one way every command turns `--env NAME` into an Environment: the sandbox's state file
    or the stack's outputs. With `live`, its own branch's URL is the recorded live database;
    without (read-only views that must not need the bucket's credentials), the sources alone."""
    if name not in ENV_NAMES:
        raise ConfigError(f"--env: unknown environment {name!r}", hint=f"one of: {', '.join(ENV_NAMES)}")
    if name == SANDBOX:
        from ops.sandbox.state import environment as sandbox_environment

        env = sandbox_environment(root or sandbox_dir())
    else:
        env = from_outputs(name, read_outputs(name))  # type: ignore[arg-type]
    return with_live_database(env) if live else env


def resolve_from_sources(name: str) -> Environment:
    """The Environment from its sources alone, without the recorded live database."""
    return resolve(name, live=False)


def public_view(env: Environment) -> dict[str, Any]:
    """The environment without secrets (`ops env show`), with the traffic switch wiring picks for it."""
    traffic = "caddy" if _sandbox(env) else "cloudflare"
    view = env.public_view()
    # Where `ops env show` always listed it: after the hosts, before the heartbeat.
    return {**{k: v for k, v in view.items() if k != "heartbeat"}, "traffic": traffic, "heartbeat": view["heartbeat"]}


def objects(env: Environment, bucket: str = "backups") -> ObjectStore:
    """One of the environment's buckets: by default the one that holds backups and ops' own state
    (locks, journals, history); `uploads` is the app's."""
    from ops.adapters.cloud.s3_store import S3ObjectStore

    return S3ObjectStore(env.storage, bucket)


def heartbeat(env: Environment) -> Heartbeat | None:
    """Where a finished backup reports it ran (BetterStack, or the sandbox's recorder); None without one."""
    from ops.adapters.cloud.heartbeat import HttpHeartbeat

    return HttpHeartbeat(env.heartbeat_url.get_secret_value()) if env.heartbeat_url else None


def live_database(env: Environment) -> LiveDatabase:
    from ops.live_state import RecordedLiveDatabase

    return RecordedLiveDatabase(objects(env), env.name, env.branch)


def _live_url(env: Environment, database: str, kind: str) -> str:
    from ops.pg import with_database

    if _sandbox(env) or kind == "branch":
        return with_database(env.database_urls[env.branch].get_secret_value(), database)
    from ops.adapters.cloud.failover_site import standby_server_url

    return with_database(standby_server_url(), database)


def with_live_database(env: Environment) -> Environment:
    """The environment with its branch's URLs pointing at the database recorded as live."""
    record = live_database(env).get()
    if record["database"] == env.branch or env.branch not in env.database_urls:
        return env
    url = _live_url(env, record["database"], record["kind"])
    return env.model_copy(update={"database_urls": {**env.database_urls, env.branch: SecretStr(url)},
                                  "app_database_url": _live_app_url(env, record["database"], record["kind"])})


def _live_app_url(env: Environment, database: str, kind: str) -> SecretStr | None:
    """The app's own URL for the live database: the app's role and password, only the database
    changed. Never the owner's URL: `ops db migrate` gives the app's role the password of the URL
    it is handed, and the owner's would lock every running app out (and, on the standby host's
    server, serve every tenant as the tables' owner, past row-level security)."""
    from ops.pg import with_database

    if env.app_database_url is None:
        return None
    if _sandbox(env) or kind == "branch":
        return SecretStr(with_database(env.app_database_url.get_secret_value(), database))
    from ops.adapters.cloud.failover_site import standby_app_url

    return SecretStr(standby_app_url(env, database))


# --------------------------------------------------------------------------- database branches


def branch_store(env: Environment) -> BranchStore:
    from ops.adapters.cloud.neon_branch_store import NeonBranchStore
    from ops.adapters.local.branch_store import LocalBranchStore

    if _sandbox(env):
        if env.scratch_database_url is None:
            raise ConfigError("the sandbox state has no scratch database URL: run `ops sandbox up`")
        from ops.output import progress

        return LocalBranchStore(env.scratch_database_url.get_secret_value(), progress=progress)
    if env.neon is None:
        raise ConfigError(f"stack outputs for {env.name}: no neon_project_id")
    return NeonBranchStore(neon_client(), env.neon.project_id, database=env.database_name,
                           owner_role=env.owner_role)


def point_in_time(env: Environment) -> tuple[Any, str, str]:
    """`ops db restore-to`'s ports: (Neon client, project id, the environment's branch id).

    The sandbox is refused here, by what it lacks: no history to restore from."""
    if _sandbox(env):
        raise ConfigError("the sandbox keeps no history of its databases (its PostgreSQL archives no WAL), so it "
                          "cannot restore to a point in time, and a backup is not one",
                          hint="the newest backup: ops backup restore --env local --latest; a point in time: "
                               "--env development, staging or production (Neon)")
    if env.neon is None:
        raise ConfigError(f"stack outputs for {env.name}: no neon_project_id")
    if env.branch not in env.neon.branch_ids:
        raise ConfigError(f"stack outputs for {env.name}: no Neon branch id for {env.branch} (neon_branches)")
    return neon_client(), env.neon.project_id, env.neon.branch_ids[env.branch]


def smoke_check(env: Environment) -> Callable[[str], str]:
    """Prove the app works against a refreshed branch: the sandbox starts an app process on it;
    a real environment asks its running app's /ready (its connection string is unchanged)."""
    from ops.health import remote_ready, sandbox_app_ready

    if _sandbox(env):
        from ops.adapters.local.hosts import LocalHosts

        return lambda owner_url: sandbox_app_ready(owner_url, LocalHosts(sandbox_dir()))
    return lambda _owner_url: remote_ready(env.public_url)


# --------------------------------------------------------------------------- hosts and traffic


def ssh() -> Any:
    """How this runner reaches the hosts: OPS_SSH_CONFIG (an ssh_config file), OPS_HOST_COMMAND
    (the deploy script's command line; the lab prefixes its test hosts' paths) and
    OPS_HOST_ROOT_COMMAND (the same as root: sudo on a server; the lab's deploy user has no sudo)."""
    from ops.adapters.cloud.ssh_hosts import DEFAULT_ROOT_SCRIPT, DEFAULT_SCRIPT, Ssh

    root = os.environ.get("OPS_HOST_ROOT_COMMAND")
    return Ssh(config_file=os.environ.get("OPS_SSH_CONFIG") or None,
               script=tuple(shlex.split(os.environ.get("OPS_HOST_COMMAND") or DEFAULT_SCRIPT)),
               root_script=tuple(shlex.split(root)) if root else DEFAULT_ROOT_SCRIPT)


def host_env_file(env: Environment, host_role: str, database_url: str | None) -> str:
    """The app's env file for one host: the stack's secret outputs plus the host's own values."""
    from autoenroll.contract import REPLICA_ENV_VAR
    from stacks.host_role import APP_PORT, env_file

    if not env.app_env:
        raise ConfigError(f"stack outputs for {env.name}: no app_env (the app's secret environment)")
    values = {k: v.get_secret_value() for k, v in env.app_env.items()}
    values.update({"APP_ENV": env.name, "APP_ROLE": host_role, "HOST": "0.0.0.0", "PORT": str(APP_PORT)})
    if database_url:
        values["DATABASE_URL"] = database_url
        # The stack's read replica follows the stack's branch, not this database (a failover's standby):
        # its listings would miss every write made here, so the app reads from DATABASE_URL alone.
        values.pop(REPLICA_ENV_VAR, None)
    return env_file(values)


def traffic(env: Environment) -> TrafficSwitch:
    """Where the public names send traffic: Cloudflare's DNS records, or the sandbox's Caddy."""
    if _sandbox(env):
        from ops.adapters.local.traffic import SandboxEdge

        return SandboxEdge(sandbox_dir())
    from ops.adapters.cloud.clients import CloudflareClient, base_url_override
    from ops.adapters.cloud.cloudflare_dns import CloudflareDnsSwitch, client_from_token

    if env.dns is None:
        raise ConfigError(f"stack outputs for {env.name}: no dns (zone and record ids)")
    token = os.environ.get("CLOUDFLARE_API_TOKEN", "")
    if not token:
        raise ConfigError("CLOUDFLARE_API_TOKEN: required to switch DNS but not set",
                          hint="a token with DNS:Edit on the zone")
    # The same override as CloudflareClient's (the lab's loopback fake); unset in real use.
    client = client_from_token(token, base_url=base_url_override(CloudflareClient.base_url_variable))
    return CloudflareDnsSwitch(client, env.dns, {h.name: h for h in env.app_hosts},
                               load_balancer_ipv4=env.load_balancer_ipv4)


def traffic_reader(env: Environment) -> tuple[Callable[[], str] | None, str]:
    """How a read-only command asks where traffic goes, and what answers: the switch itself, or
    (without a DNS token, as a diagnostic needs only the credentials it uses) nothing, so the
    state recorded at the last switch answers."""
    try:
        switch = traffic(env)
    except ConfigError as exc:
        return None, f"the recorded state (DNS not asked: {exc.message.split(':')[0]})"
    return switch.serving, ("the sandbox's Caddy" if _sandbox(env) else "Cloudflare DNS")


def neon_client() -> Any:
    from ops.adapters.cloud.clients import NeonClient

    return NeonClient.from_environ()  # OPS_NEON_API_URL moves it (ProviderClient.base_url_variable)


def _cloud_hosts(env: Environment, switch: TrafficSwitch | None = None, *,
                 cloud_init_timeout: float | None = None) -> SshHosts:
    from ops.adapters.cloud.ssh_hosts import SshHosts

    secrets = [v.get_secret_value() for v in env.app_env.values()]

    def env_file(host: AppHost) -> str:
        # Read when the file is written: a failover records a new live database mid-command.
        live = live_database(env).get()
        if live["kind"] != "standby":
            return host_env_file(env, host.role, None)
        from ops.adapters.cloud.failover_site import standby_app_url

        return host_env_file(env, host.role, standby_app_url(env, live["database"]))

    def serving_role() -> str:
        return (switch or traffic(env)).serving()

    from ops.adapters.cloud.ssh_hosts import CLOUD_INIT_TIMEOUT

    return SshHosts(env.app_hosts, ssh(), serving_role=serving_role, env_file=env_file, secrets=secrets,
                    origin_tls=env.origin_tls, registry_login=env.registry_login, logs_token=env.logs_token,
                    cloud_init_timeout=CLOUD_INIT_TIMEOUT if cloud_init_timeout is None else cloud_init_timeout)


def deploy_ports(env: Environment) -> tuple[Hosts, Callable[[], None]]:
    """The hosts, and what a deploy does under its lock before touching one: the cloud rewrites
    each host's env file from the stack's secrets (so rotating a secret is a deploy); the
    sandbox's apps read theirs from the sandbox state."""
    if _sandbox(env):
        from ops.adapters.local.hosts import LocalHosts

        return LocalHosts(sandbox_dir()), lambda: None
    cloud = _cloud_hosts(env)

    def write_env_files() -> None:
        cloud.write_env_files()

    return cloud, write_env_files


def _hcloud_client(what: str) -> Any:
    from hcloud import Client

    from ops.adapters.cloud.clients import base_url_override

    token = os.environ.get("HCLOUD_TOKEN", "")
    if not token:
        raise ConfigError(f"HCLOUD_TOKEN: required by {what} but not set")
    # OPS_HCLOUD_API_URL: the tests' loopback fake of Hetzner's API; unset in real use.
    return Client(token, api_endpoint=base_url_override("OPS_HCLOUD_API_URL") or "https://api.hetzner.cloud/v1")


def rotation(env: Environment) -> Rotation | None:
    """The load balancer's rotation a deploy takes hosts out of one at a time: Hetzner's, when the
    stack has one (replicas > 1); None otherwise (the sandbox; one host, its Caddy the whole set)."""
    if _sandbox(env) or env.load_balancer_id is None:
        return None
    from ops.adapters.cloud.hetzner_lb import HetznerRotation

    primaries = [h.name for h in env.app_hosts if h.role == "primary"]
    return HetznerRotation(_hcloud_client("a deploy behind the load balancer"), env.load_balancer_id, primaries)


def ssh_access(env: Environment, runner_ip: str | None) -> AbstractContextManager[object]:
    """With `--open-ssh-from IP` (CI), this runner's address admitted through the Hetzner firewall
    on port 22 for the command and removed after; otherwise nothing to do (admin networks)."""
    if runner_ip is None or _sandbox(env):
        return nullcontext()
    from ops.adapters.cloud.hetzner_firewall import ssh_opened_for

    if env.firewall_id is None:
        raise ConfigError(f"stack outputs for {env.name}: no firewall_id")
    client = _hcloud_client("--open-ssh-from")
    run = os.environ.get("GITHUB_RUN_ID", "manual")
    return ssh_opened_for(client, env.firewall_id, runner_ip, f"run {run}")


def preflight(env: Environment) -> None:
    """A quick check that what a failback stands on answers, before it takes a lock or waits on a
    redeploy: the sandbox's servers (exit 9, as `ops sandbox status`). The apps are left out, as a
    dead primary app is what a failback redeploys; the cloud's hosts fail fast already (SSH's
    ConnectTimeout)."""
    if not _sandbox(env):
        return
    from ops.errors import SandboxError
    from ops.sandbox import manager

    bad = [f"{h.name} {h.state}" for h in manager.status(sandbox_dir()) if not h.name.startswith("app-")
           and h.state != "up"]
    if bad:
        raise SandboxError(f"the sandbox is not healthy ({', '.join(bad)}): nothing was changed",
                           hint="run: ops sandbox up, then the same command again")


def failover_site(env: Environment) -> FailoverSite:
    if _sandbox(env):
        from ops.adapters.local.failover_site import SandboxSite

        return SandboxSite(env, sandbox_dir(), objects(env))
    from ops.adapters.cloud.failover_site import CloudSite

    return CloudSite(env, objects(env), _cloud_hosts(env), live_database(env), neon_client)


# --------------------------------------------------------------------------- checklist


def _host_key(env: Environment, host: AppHost) -> str:
    """How the hosts port names a host: the sandbox's by role (one app process each), a server by name."""
    return host.role if _sandbox(env) else host.name


def checklist_ports(env: Environment) -> ChecklistPorts:
    """The ports `ops checklist`'s items check (ops.checklist.ChecklistPorts): the sandbox's
    stand-ins, or the cloud's providers and its stack's config file."""
    from ops.checklist import ChecklistPorts

    names = {_host_key(env, h): h.name for h in env.app_hosts}
    if _sandbox(env):
        from ops.adapters.local.hosts import LocalHosts
        from ops.sandbox import checklist as local

        root = sandbox_dir()
        return ChecklistPorts(hosts=LocalHosts(root), host_names=names, objects=objects(env),
                              configuration=lambda: local.app_settings(root), edge_tls=local.edge_tls,
                              monitoring=lambda: local.heartbeat_recorder(env),
                              stripe_registration=local.stripe_registration, dns=lambda: local.caddy_upstreams(root))
    from ops.adapters.cloud import checklist as cloud

    return ChecklistPorts(hosts=_cloud_hosts(env), host_names=names, objects=objects(env),
                          configuration=lambda: cloud.stack_secrets_set(env),
                          edge_tls=lambda hsts: cloud.edge_tls(env, hsts), monitoring=lambda: cloud.monitoring(env),
                          stripe_registration=lambda endpoint_id: cloud.stripe_registration(env, endpoint_id),
                          dns=lambda: cloud.cloudflare_dns(env), rotation=rotation(env))


# --------------------------------------------------------------------------- status and logs

# How long `ops status` waits on a host still running cloud-init: it reports, it does not wait for a first boot.
STATUS_CLOUD_INIT_WAIT = 20.0
STATUS_DATABASE_WAIT = 4


def _sandbox_ready(url: str) -> str | None:
    import httpx

    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return f"{url}: {exc.__class__.__name__}"
    return None if response.status_code == 200 else f"{url} answered {response.status_code}"


def status_ports(env: Environment) -> Any:
    """What `ops status` reads in this environment (ops.status.StatusPorts); nothing is contacted here."""
    from ops.ports import Candidate
    from ops.status import HostRef, StatusPorts

    sandbox = _sandbox(env)
    refs = tuple(HostRef(key=_host_key(env, h), name=h.name, role=h.role,
                         address=(h.url.split("//", 1)[-1] if sandbox else h.address or "-"))
                 for h in env.app_hosts)
    hosts: Callable[[], Hosts]
    if sandbox:
        from ops.adapters.local.hosts import LocalHosts

        def hosts() -> Hosts:
            return LocalHosts(sandbox_dir())

        def app_ready(ref: Any, address: str) -> str | None:
            return _sandbox_ready(f"http://{address}/ready")
    else:
        built: list[SshHosts] = []

        def hosts() -> Hosts:
            if not built:
                built.append(_cloud_hosts(env, cloud_init_timeout=STATUS_CLOUD_INIT_WAIT))
            return built[0]

        def app_ready(ref: Any, address: str) -> str | None:
            # The deploy script's `ready` verb asks the app's /ready on the host itself (2 s: its deadline is in
            # whole seconds, so 1 could end before the first try).
            return built[0].wait_ready(Candidate(ref.key, "", address), 2) if built else "host not reached"

        def reboot_pending(ref: Any) -> list[str] | None:
            from ops.adapters.cloud.ssh_reboot import SshReboots

            hosts()
            return SshReboots(built[0]).pending(ref.key)

    def database_ping(record: dict[str, Any] | None) -> str:
        from ops.pg import connect

        database = (record or {}).get("database", env.branch)
        if record is None or database == env.branch or env.branch not in env.database_urls:
            url = env.database_url()
        else:
            url = _live_url(env, database, record["kind"])
        # An overview reports a database that does not answer in seconds; it does not wait on it as a restore would.
        with connect(url, connect_timeout=STATUS_DATABASE_WAIT) as conn:
            version = conn.execute("SHOW server_version").fetchone()
        return f"{database} answered (PostgreSQL {version[0] if version else '?'})"

    if sandbox:
        def monitors() -> dict[str, str]:
            # The sandbox has no BetterStack: its stand-in asks what the stack's monitors ask, each app's /health.
            return {h.name: "up" if _sandbox_ready(f"{h.url}/health") is None else "down" for h in env.app_hosts}
        monitors_source = "the sandbox's stand-in for BetterStack (each app's /health)"
    else:
        def monitors() -> dict[str, str]:
            from ops.adapters.cloud.clients import BetterStackClient

            states = {}
            with BetterStackClient.from_environ() as client:
                for name, monitor_id in sorted(env.monitor_ids.items()):
                    data = client.get("monitors", str(monitor_id))
                    states[name] = "missing" if data is None else str(data["attributes"].get("status"))
            return states
        monitors_source = "BetterStack"

    try:
        switch: TrafficSwitch | None = traffic(env)
    except ConfigError as exc:
        switch, source = None, f"the recorded state (DNS not asked: {exc.message.split(':')[0]})"
    else:
        source = "the sandbox's Caddy" if sandbox else "Cloudflare DNS"
    store = objects(env)
    return StatusPorts(
        env_name=env.name, home_database=env.branch, hosts=hosts, host_refs=refs, app_ready=app_ready,
        objects=store, live=live_database(env), serving=switch.serving if switch else None, serving_source=source,
        records=switch.records if switch else None, database_ping=database_ping, monitors=monitors,
        monitors_source=monitors_source,
        dependencies={"hosts": "the sandbox's state and Caddy" if sandbox else "SSH to the hosts",
                      "traffic": source, "failover": "the object store (recorded failover state)",
                      "database": "the database", "backups": "the object store (backups bucket)",
                      "locks": "the object store (backups bucket)",
                      "monitors": "the sandbox's apps" if sandbox else "the BetterStack API"},
        host_caddy=not sandbox, reboot_pending=None if sandbox else reboot_pending)


def log_source(env: Environment) -> tuple[Any, list[str]]:
    """Where `ops logs` reads (ops.logs.LogSource) and the secrets to mask in what it prints: the
    hosts over the deploy's SSH path, or the sandbox's log files."""
    if _sandbox(env):
        from ops.adapters.local.logs import SandboxLogs

        return SandboxLogs(sandbox_dir(), [h.name for h in env.app_hosts]), []
    from ops.adapters.cloud.ssh_hosts import SshLogs

    return SshLogs(env.app_hosts, ssh()), [v.get_secret_value() for v in env.app_env.values()]


def reboot_ports(env: Environment) -> tuple[Any, TrafficSwitch]:
    """`ops hosts reboot`: the hosts (the deploy script's reboot verbs over SSH) and the traffic switch
    that moves the serving host's traffic away first. The sandbox's hosts are this machine's processes:
    nothing there reboots."""
    if _sandbox(env):
        raise ConfigError("ops hosts reboot: the sandbox's hosts are processes on this machine, nothing reboots",
                          hint="--env staging or --env production (the lab's hosts are production-shaped)")
    from ops.adapters.cloud.ssh_reboot import SshReboots

    switch = traffic(env)
    return SshReboots(_cloud_hosts(env, switch)), switch
