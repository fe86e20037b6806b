"""`ops db refresh`, `ops db migrate`, `ops db partitions` and `ops db retention`: databases after `pulumi up`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import typer

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt
from ops.output import print_json, progress, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.migrations import head_revision, migrate, schema_revision
    from ops.refresh import usecase
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    head_revision, migrate, schema_revision = lazy.functions("ops.migrations", "head_revision", "migrate",
                                                             "schema_revision")
    usecase = lazy.module("ops.refresh.usecase")
    resolve = lazy.function("ops.wiring", "resolve")

app = OpsTyper(help="Database branches: refresh with masking, migrations, point-in-time restore, monthly "
                    "partitions and retention.")


@app.command("refresh")
def refresh(
    target: str = typer.Argument(..., help="Branch to overwrite: staging or development."),
    source: str = typer.Option(..., "--from", help="Branch to copy: main (for staging) or staging (for development)."),
    env_name: str = ENV_OPTION,
    plan_only: bool = confirm.PLAN_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Refresh TARGET from SOURCE with personal data masked. Resumes after a crash; --plan changes nothing."""
    steps = usecase.plan(target, source)  # refusals come first, before anything is resolved
    env = resolve(env_name)
    if not confirm.gate(env.name, env.is_production, f"refresh {target} from {source}",
                        confirm.show_steps(steps, as_json=as_json, plan_only=plan_only), plan_only=plan_only,
                        yes=yes):
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
    plan_only: bool = confirm.PLAN_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Bring a branch's schema to the app's head revision (idempotent). --plan changes nothing."""
    env = resolve(env_name)
    url = env.database_url(branch)
    before = schema_revision(url)
    head = head_revision()
    plan = {"branch": branch or env.branch, "before": before, "head": head, "applied": False,
            "plan": [] if before == head else [f"alembic upgrade {before or 'base'} -> {head}"]}

    def show() -> None:
        if as_json and plan_only:
            print_json(plan)
        else:
            progress(f"plan: {plan['branch']}: at {before}, head {head}: "
                     + ("nothing to do" if before == head else f"would upgrade to {head}"))

    # Nothing to migrate changes nothing: no confirmation to ask for (CI's migrate on every release).
    if not confirm.gate(env.name, env.is_production and before != head,
                        f"migrate the {branch or env.branch} database {before} -> {head}", show,
                        plan_only=plan_only, yes=yes):
        return
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
    """employee_results' monthly partitions; --ensure makes the current month's and AHEAD more (idempotent)
    and gathers the parent table's statistics, which autovacuum never does."""
    from ops import partitions as parts

    env = resolve(env_name)
    url = env.database_url()
    existing = parts.list_partitions(url)
    missing = parts.missing_months(existing, datetime.now(UTC).date(), ahead)
    created = parts.ensure(url, missing) if ensure and missing else []
    analyzed = [parts.analyze(url)] if ensure else []
    if as_json:
        print_json({"partitions": [{"name": x.name, "month": x.month.strftime("%Y-%m"), "rows": x.rows}
                                   for x in existing],
                    "missing": [m.strftime("%Y-%m") for m in missing], "created": created, "analyzed": analyzed,
                    "applied": ensure})
        return
    table(f"{env.name}: employee_results partitions", ["partition", "month", "rows"],
          [(x.name, x.month.strftime("%Y-%m"), x.rows) for x in existing])
    if analyzed:
        progress(f"analyzed {', '.join(analyzed)} (the parent's statistics over every month)")
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
    plan_only: bool = confirm.PLAN_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove whole months older than --older-than (partitions, their uploads and objects).
    Refuses (exit 3) a month the newest verified backup does not hold."""
    from ops import partitions as parts
    from ops.backup.usecase import list_backups

    parts.cutoff_for(datetime.now(UTC).date(), older_than)  # a bad --older-than is exit 2 before anything is read
    env = resolve(env_name)
    url = env.database_url()
    plan = parts.retention_plan(url, list_backups(env.name, wiring.objects(env)), older_than=older_than,
                                today=datetime.now(UTC).date())
    show = confirm.show_steps(plan.steps() or [f"nothing older than {plan.cutoff:%Y-%m}"], as_json=as_json,
                              plan_only=plan_only, data=plan.to_json())
    if plan.refusals:
        show()
        parts.refuse(plan)  # exit 3, plan or not: the plan can't be carried out as it stands
    if not plan.partitions and not (plan.uploads or plan.runs):  # nothing to change: nothing to confirm
        show()
        if as_json and not plan_only:
            print_json({**plan.to_json(), "applied": False})
        progress(("plan only: " if plan_only else "") + "nothing was changed")
        return
    if not confirm.gate(env.name, env.is_production, f"remove every month before {plan.cutoff:%Y-%m}", show,
                        plan_only=plan_only, yes=yes):
        return
    done = parts.apply_retention(url, wiring.objects(env, "uploads"), plan)
    if as_json:
        print_json({**plan.to_json(), "applied": True, "removed": done})
    else:
        progress(f"dropped {done['partitions']} partitions, {done['uploads']} uploads, {done['objects']} objects")


@app.command("restore-to")
def restore_to(
    env_name: str = ENV_OPTION,
    time: str = typer.Option(..., "--time", "-t", metavar="TIME",
                             help="The moment to go back to, ISO 8601 with its zone (2026-12-07T02:40:00Z); "
                                  "within the Neon project's history retention."),
    into: str | None = typer.Option(None, "--into", metavar="NAME",
                                    help="Do not touch the environment's branch: make a new branch NAME from it "
                                         "as it was at TIME, to look at the old data."),
    plan_only: bool = confirm.PLAN_OPTION,
    yes: bool = confirm.YES_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Neon's point-in-time restore of the environment's branch, in place (its state until now kept
    as a branch named in the plan), or with --into into a new side branch."""
    from ops.refresh import point_in_time as pit

    moment = pit.parse_time(time)  # bad input first, before anything is resolved
    env = resolve(env_name, live=False)
    client, project_id, branch_id = wiring.point_in_time(env)
    with client:
        existing = [str(b["name"]) for b in client.list_branches(project_id)] if into else []
        planned = pit.plan(env.name, env.branch, branch_id, moment, into, existing=existing)
        action = (f"create branch {into} from {env.branch} at {pit.neon_time(moment)}" if into
                  else f"restore the {env.branch} branch in place to {pit.neon_time(moment)}")
        if not confirm.gate(env.name, env.is_production, action,
                            confirm.show_steps(planned.steps, as_json=as_json, plan_only=plan_only,
                                               data=planned.to_json()),
                            plan_only=plan_only, yes=yes):
            return
        on_interrupt("Neon carries on with an operation it has accepted: see the branch in the Neon console "
                     "before running the command again")
        result = pit.restore_to(client, project_id, planned)
    if as_json:
        print_json(result)
    elif into:
        progress(f"branch {into} ({result['created_branch_id']}) holds {env.branch} as it was at {result['time']}")
    else:
        progress(f"{env.branch} restored to {result['time']}; its state until now is branch {result['preserve_as']}")
