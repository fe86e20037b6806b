"""`ops deploy`, `ops rollback` and `ops health`."""

from __future__ import annotations

import time

import httpx
import typer

from ops.adapters.s3_store import S3ObjectStore
from ops.cli.base import ENV_OPTION, JSON_OPTION
from ops.deploy import usecase
from ops.deploy.hosts import LocalHosts, ssh_deploy_argv
from ops.environment import Environment, resolve
from ops.errors import ExternalError, VerificationError
from ops.health import check_endpoints
from ops.output import print_json, progress, table
from ops.paths import sandbox_dir
from ops.processes import run_checked

VERSION_OPTION = typer.Option(..., "--version", help="The version to deploy (an image tag; locally a release name).")


def _local_deploy(env: Environment, version: str, as_json: bool) -> usecase.DeployReport:
    from ops.sandbox.state import load_state, save_state
    from ops.sandbox.traffic_caddy import CaddyTrafficSwitch

    root = sandbox_dir()
    state = load_state(root)
    before = state.apps[state.caddy.active_app].version

    def record(v: str) -> None:
        current = load_state(root)
        history = current.deploy_history or [before]  # the first deploy also remembers what it replaced
        current.deploy_history = [*history, v][-10:]
        save_state(root, current)

    with CaddyTrafficSwitch(state.caddy_admin_url()) as switch:
        return usecase.deploy(env.name, LocalHosts(root), switch, S3ObjectStore(env.storage, "backups"), version,
                              history=record, progress=(lambda _m: None) if as_json else progress)


def _cloud_deploy(env: Environment, version: str) -> usecase.DeployReport:
    """One host at a time over SSH (the host role's autoenroll-deploy), each checked before the next."""
    usecase.validate_version(version)
    report = usecase.DeployReport(version)
    for host in env.app_hosts:
        if not host.address:
            raise ExternalError(f"{host.name}: no address in the stack outputs")
        run_checked(ssh_deploy_argv(host.address, version), what=f"deploy to {host.name}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(env.public_url + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            raise ExternalError(f"{env.public_url}/ready not 200 after deploying {version} to {host.name}",
                                hint=f"roll back: ops rollback --env {env.name}")
        report.hosts.append({"role": host.role, "to": version, "address": host.address})
    return report


def deploy(version: str = VERSION_OPTION, env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Rolling, zero-downtime deploy; rolls back by itself if the new version isn't ready."""
    env = resolve(env_name)
    report = _local_deploy(env, version, as_json) if env.name == "local" else _cloud_deploy(env, version)
    if as_json:
        print_json({"version": report.version, "hosts": report.hosts, "seconds": report.seconds})
    else:
        table(f"deployed {version}", ["host", "from", "to", "address"],
              [(h["role"], h.get("from", ""), h["to"], h["address"]) for h in report.hosts])


def rollback(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Deploy the version before the current one."""
    env = resolve(env_name)
    if env.name != "local":
        raise VerificationError("rollback needs the deploy history: run `ops deploy --version <previous>`")
    from ops.sandbox.state import load_state

    state = load_state(sandbox_dir())
    current = state.apps[state.caddy.active_app].version
    target = usecase.previous_version(state.deploy_history, current)
    progress(f"rolling back {current} -> {target}")
    deploy(target, env_name, as_json)


def health(env_name: str = ENV_OPTION, requests: int = typer.Option(20, min=1, max=1000, help="Requests per check."),
           as_json: bool = JSON_OPTION) -> None:
    """Every endpoint with its latency against the seed's targets; exit 8 when one misses."""
    env = resolve(env_name)
    checks = check_endpoints(env.public_url, requests=requests)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        table(f"health of {env.name} ({env.public_url})", ["endpoint", "result", "status", "p50 ms", "p95 ms",
                                                           "target ms", "detail"],
              [(c.endpoint, "pass" if c.ok else "fail", c.status, c.p50_ms, c.p95_ms, c.target_ms, c.detail)
               for c in checks])
    failing = [c.endpoint for c in checks if not c.ok]
    if failing:
        raise VerificationError(f"failing checks: {', '.join(failing)}")
