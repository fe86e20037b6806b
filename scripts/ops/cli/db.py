"""`ops db refresh` and `ops db migrate`: database branches after `pulumi up`."""

from __future__ import annotations

import os

import httpx
import typer

from ops.adapters.s3_store import S3ObjectStore
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt, typed_confirmation
from ops.environment import Environment, resolve
from ops.errors import ExternalError
from ops.migrations import head_revision, migrate, schema_revision
from ops.output import print_json, progress, stderr, table
from ops.refresh import usecase
from ops.refresh.branch_stores import BranchStore, LocalBranchStore, NeonBranchStore

app = OpsTyper(help="Database branches: refresh with masking, migrations.")


def branch_store(env: Environment) -> BranchStore:
    if env.name == "local":
        assert env.scratch_database_url is not None
        return LocalBranchStore(env.scratch_database_url.get_secret_value())
    from ops.adapters.neon_api import NeonClient

    return NeonBranchStore(NeonClient.from_environ(), str(env.outputs["neon_project_id"]),
                           database=os.environ.get("NEON_DATABASE", "autoenroll"),
                           owner_role=os.environ.get("NEON_OWNER_ROLE", "autoenroll_owner"))


def smoke_check(env: Environment, target: str) -> usecase.Smoke:
    """Prove the app works against the refreshed branch: the sandbox starts an app process on
    it; a real environment asks its running app's /ready (its connection string is unchanged)."""
    if env.name == "local":
        return lambda owner_url: _local_app_smoke(env, owner_url)

    def remote(_owner_url: str) -> str:
        response = httpx.get(env.public_url + "/ready", timeout=10)
        if response.status_code != 200:
            raise ExternalError(f"smoke check: {env.public_url}/ready answered {response.status_code}")
        return f"{env.public_url}/ready answered 200"

    return remote


def _local_app_smoke(env: Environment, owner_url: str) -> str:
    from urllib.parse import urlsplit

    from ops.deploy.hosts import Candidate, LocalHosts
    from ops.paths import APP_DIR, sandbox_dir
    from ops.ports import free_port
    from ops.processes import start_process, stop_process
    from ops.sandbox.components import app_argv, app_env
    from ops.sandbox.state import load_state

    state = load_state(sandbox_dir())
    port = free_port()
    database = urlsplit(owner_url).path.lstrip("/")
    child_env = {**app_env(state, "standby", "smoke"), "PORT": str(port),
                 "DATABASE_URL": state.database_url(database)}
    proc = start_process(app_argv(), log_file=sandbox_dir() / "logs" / "app-smoke.log", env=child_env, cwd=APP_DIR)
    candidate = Candidate("smoke", "smoke", f"127.0.0.1:{port}", proc)
    try:
        problem = LocalHosts(sandbox_dir()).wait_ready(candidate, 30)
    finally:
        stop_process(proc)
    if problem is not None:
        raise ExternalError(f"smoke check: the app did not become ready on {database}: {problem}")
    return f"app on {database}: /ready 200"


@app.command("refresh")
def refresh(
    target: str = typer.Argument(..., help="Branch to overwrite: staging or development."),
    source: str = typer.Option(..., "--from", help="Branch to copy: main (for staging) or staging (for development)."),
    env_name: str = ENV_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Carry out the refresh (without it: print the plan)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Refresh TARGET from SOURCE with personal data masked. Resumes after a crash; plan unless --yes."""
    steps = usecase.plan(target, source)  # refusals come first, before anything is resolved
    env = resolve(env_name)
    if not yes:
        if as_json:
            print_json({"plan": steps, "applied": False})
        else:
            for number, text in enumerate(steps, 1):
                stderr.print(f"  {number}. {text}", highlight=False)
            progress("plan only: run again with --yes")
        return
    on_interrupt(f"the refresh of {target} is journaled and {target} is untouched until its swap step: "
                 f"run `ops db refresh {target} --from {source} --env {env.name} --yes` again to resume")
    report = usecase.refresh(
        env.name, branch_store(env), S3ObjectStore(env.storage, "backups"), target=target, source=source,
        masking_key=env.masking_key.get_secret_value() if env.masking_key else None,
        smoke=smoke_check(env, target), progress=progress)  # stderr, so --json's stdout stays JSON alone
    if as_json:
        print_json({**report.to_json(), "applied": True})
        return
    table(f"refreshed {target} from {source}", ["step", "seconds"], list(report.timings.items()))
    progress(f"rows masked: {sum(report.rows_masked.values())} ({report.rows_masked}); "
             f"old state kept as {report.preserved_as}; smoke: {report.smoke}")


@app.command("migrate")
def migrate_cmd(
    env_name: str = ENV_OPTION,
    branch: str | None = typer.Option(None, "--branch", help="Branch database (default: the environment's own)."),
    plan_only: bool = typer.Option(False, "--plan", help="Print the revisions it would apply and change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Confirm a migration of production (CI)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Bring a branch's schema to the app's head revision (idempotent). --plan changes nothing."""
    env = resolve(env_name)
    url = env.database_url(branch)
    before = schema_revision(url)
    head = head_revision()
    if plan_only:
        plan = {"branch": branch or env.branch, "before": before, "head": head, "applied": False,
                "plan": [] if before == head else [f"alembic upgrade {before or 'base'} -> {head}"]}
        if as_json:
            print_json(plan)
        else:
            progress(f"{plan['branch']}: at {before}, head {head}: "
                     + ("nothing to do" if before == head else f"would upgrade to {head}") + " (plan only)")
        return
    if env.is_production and before != head and not yes:
        typed_confirmation(env.name, f"migrate the {branch or env.branch} database {before} -> {head}")
    migrate(url)
    after = schema_revision(url)
    result = {"branch": branch or env.branch, "before": before, "after": after, "head": head}
    if as_json:
        print_json(result)
    else:
        progress(f"{result['branch']}: {before} -> {after} (head {result['head']})")
