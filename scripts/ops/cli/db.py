"""`ops db refresh` and `ops db migrate`: database branches after `pulumi up`."""

from __future__ import annotations

import typer

from ops import wiring
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt, typed_confirmation
from ops.environment import resolve
from ops.migrations import head_revision, migrate, schema_revision
from ops.output import print_json, progress, stderr, table
from ops.refresh import usecase

app = OpsTyper(help="Database branches: refresh with masking, migrations.")


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
        env.name, wiring.branch_store(env), wiring.objects(env), target=target, source=source,
        masking_key=env.masking_key.get_secret_value() if env.masking_key else None,
        smoke=wiring.smoke_check(env), progress=progress)  # stderr, so --json's stdout stays JSON alone
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
    own_branch = branch in (None, env.branch)
    app_url = env.app_database_url.get_secret_value() if own_branch and env.app_database_url else None
    migrate(url, app_url=app_url)
    after = schema_revision(url)
    result = {"branch": branch or env.branch, "before": before, "after": after, "head": head}
    if as_json:
        print_json(result)
    else:
        progress(f"{result['branch']}: {before} -> {after} (head {result['head']})")
