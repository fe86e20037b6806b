"""`ops db refresh`, `ops db migrate`, `ops db partitions` and `ops db retention`: databases after `pulumi up`."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from ops import wiring
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt, typed_confirmation
from ops.environment import resolve
from ops.migrations import head_revision, migrate, schema_revision
from ops.output import print_json, progress, stderr, table
from ops.refresh import usecase

app = OpsTyper(help="Database branches: refresh with masking, migrations, monthly partitions and retention.")


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


@app.command("partitions")
def partitions_cmd(
    env_name: str = ENV_OPTION,
    ensure: bool = typer.Option(False, "--ensure", help="Make the missing ones (without it: list, change nothing)."),
    ahead: int = typer.Option(3, "--ahead", min=0, max=24, help="Months after the current one to have ready."),
    as_json: bool = JSON_OPTION,
) -> None:
    """employee_results' monthly partitions; --ensure makes the current month's and AHEAD more (idempotent)."""
    from ops import partitions as parts

    env = resolve(env_name)
    url = env.database_url()
    existing = parts.list_partitions(url)
    missing = parts.missing_months(existing, datetime.now(UTC).date(), ahead)
    created = parts.ensure(url, missing) if ensure and missing else []
    if as_json:
        print_json({"partitions": [{"name": x.name, "month": x.month.strftime("%Y-%m"), "rows": x.rows}
                                   for x in existing],
                    "missing": [m.strftime("%Y-%m") for m in missing], "created": created, "applied": ensure})
        return
    table(f"{env.name}: employee_results partitions", ["partition", "month", "rows"],
          [(x.name, x.month.strftime("%Y-%m"), x.rows) for x in existing])
    if created:
        progress(f"created {', '.join(created)}")
    elif missing:
        progress(f"missing {', '.join(m.strftime('%Y-%m') for m in missing)}: run again with --ensure")
    else:
        progress(f"the current month and {ahead} more are ready")


@app.command("retention")
def retention_cmd(
    env_name: str = ENV_OPTION,
    older_than: int = typer.Option(..., "--older-than", help="Months to keep before the current one; older go."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Carry out the removal (without it: print the plan)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove whole months older than --older-than (partitions, their uploads and objects); plan unless --yes.
    Refuses (exit 3) a month the newest verified backup does not hold."""
    from ops import partitions as parts
    from ops.adapters.s3_store import S3ObjectStore
    from ops.backup.usecases import list_backups

    parts.cutoff_for(datetime.now(UTC).date(), older_than)  # a bad --older-than is exit 2 before anything is read
    env = resolve(env_name)
    url = env.database_url()
    plan = parts.retention_plan(url, list_backups(env.name, wiring.objects(env)), older_than=older_than,
                                today=datetime.now(UTC).date())
    if not as_json and (plan.refusals or not yes):
        for number, text in enumerate(plan.steps() or [f"nothing older than {plan.cutoff:%Y-%m}"], 1):
            stderr.print(f"  {number}. {text}", highlight=False)
    parts.refuse(plan)  # exit 3, plan or not: the plan can't be carried out as it stands
    if not yes:
        if as_json:
            print_json({**plan.to_json(), "applied": False})
        else:
            progress("plan only: run again with --yes")
        return
    done = parts.apply_retention(url, S3ObjectStore(env.storage, "uploads"), plan)
    if as_json:
        print_json({**plan.to_json(), "applied": True, "removed": done})
    else:
        progress(f"dropped {done['partitions']} partitions, {done['uploads']} uploads, {done['objects']} objects")
