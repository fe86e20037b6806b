"""`ops backup create|list|verify|restore|prune`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ops import confirm
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION, OpsTyper, on_interrupt
from ops.errors import ConfigError, VerificationError
from ops.output import print_json, progress, stderr, table
from ops.ports import ObjectStore

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from ops.backup import usecase as uc
    from ops.environment import Environment
    from ops.wiring import heartbeat, objects, resolve
else:
    (BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
     TransferSpeedColumn) = lazy.functions("rich.progress", "BarColumn", "DownloadColumn", "Progress", "TextColumn",
                                           "TimeElapsedColumn", "TimeRemainingColumn", "TransferSpeedColumn")
    uc = lazy.module("ops.backup.usecase")
    heartbeat, objects, resolve = lazy.functions("ops.wiring", "heartbeat", "objects", "resolve")

app = OpsTyper(help="Backups: streamed, compressed (zstd), encrypted (age), verified by restore, pruned by policy.")

ID_ARGUMENT = typer.Argument(None, help="Backup id (see `ops backup list`); omit with --latest.")
LATEST_OPTION = typer.Option(False, "--latest", help="Use the newest complete backup.")


def _store(env: Environment) -> ObjectStore:
    return objects(env)


@contextmanager
def _bar(label: str, total: int | None, quiet: bool) -> Iterator[Callable[[int], None]]:
    if quiet:
        yield lambda _done: None
        return
    with Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextmanager
def _dump_bar(quiet: bool) -> Iterator[tuple[Callable[[int, int], None], Callable[[int], None]]]:
    """The dump's progress against its tables' size (pg_dump reads the tables, not the indexes), with an ETA."""
    if quiet:
        yield (lambda _db, _data: None), (lambda _done: None)
        return
    with Progress(TextColumn("dumping"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=stderr, transient=True) as bar:
        task = bar.add_task("dumping", total=None)

        def sized(database: int, data: int) -> None:
            bar.console.print(f"[dim]·[/dim] database {database / 1e6:.0f} MB, of which tables {data / 1e6:.0f} MB "
                              "(indexes are rebuilt on restore, not dumped)", highlight=False)
            bar.update(task, total=max(data, 1))

        yield sized, lambda done: bar.update(task, completed=done)


def _check_pick(backup_id: str | None, latest: bool) -> None:
    """Bad input is refused before anything is resolved or contacted."""
    if backup_id is None and not latest:
        raise ConfigError("give a backup id or --latest", hint="see: ops backup list")
    if backup_id is not None and latest:
        raise ConfigError(f"give a backup id or --latest, not both (got {backup_id} and --latest)")


def _pick(env: Environment, backup_id: str | None, latest: bool) -> Any:
    _check_pick(backup_id, latest)
    return uc.find(env.name, _store(env), None if latest else backup_id)


@app.command("create")
def create(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION,
           jobs: int | None = typer.Option(None, "--jobs", "-j", min=1,
                                           help="pg_dump jobs and parallel uploads (default: this machine's cores)."),
           ) -> None:
    """Back up the environment's database now (a file per table and partition), then ping its heartbeat."""
    env = resolve(env_name)
    on_interrupt("no backup was recorded (the manifest is written last); the next run cleans up the partial "
                 f"upload: run `ops backup create --env {env.name}` again")
    with _dump_bar(as_json) as (sized, bar):
        result = uc.create(env, _store(env), heartbeat(env), progress=bar, sized=sized, jobs=jobs)
    mf = result.manifest
    if as_json:
        print_json({"backup": uc.manifest_json(mf), "cleaned_up": result.aborted_orphans,
                    "heartbeat": result.heartbeat, "seconds": round(result.seconds, 2)})
        return
    for item in result.aborted_orphans:
        progress(f"cleaned up after an interrupted run: {item}")
    table(f"backup {mf.id}", ["field", "value"], [
        ("environment", mf.environment), ("database", f"{mf.database} (PostgreSQL {mf.server_version})"),
        ("tables / rows", f"{len(mf.tables)} / {mf.total_rows}"), ("stored", f"{mf.stored_bytes} bytes"),
        ("sha256", mf.sha256), ("took", f"{result.seconds:.1f} s"), ("heartbeat", result.heartbeat)])


@app.command("list")
def list_(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Complete backups, newest first, with when each was last verified."""
    env = resolve(env_name)
    backups = uc.list_backups(env.name, _store(env))
    if as_json:
        print_json([{**uc.manifest_json(mf), "verified": v.model_dump(mode="json") if v else None}
                    for mf, v in backups])
        return
    table(f"backups of {env.name}", ["id", "finished", "size", "tables", "rows", "verified"], [
        (mf.id, mf.finished_at.strftime("%Y-%m-%d %H:%M:%S"), mf.stored_bytes, len(mf.tables), mf.total_rows,
         v.verified_at.strftime("%Y-%m-%d %H:%M") if v and v.ok else "") for mf, v in backups])


@app.command("verify")
def verify(backup_id: str | None = ID_ARGUMENT, latest: bool = LATEST_OPTION, env_name: str = ENV_OPTION,
           as_json: bool = JSON_OPTION) -> None:
    """Restore a backup into a scratch database and check it; exit 8 when anything is off."""
    _check_pick(backup_id, latest)
    env = resolve(env_name)
    manifest = _pick(env, backup_id, latest)
    on_interrupt("verify changes nothing but its scratch database, which is dropped (or replaced by the next verify): "
                 "run the same command again")
    with _bar("verifying", manifest.stored_bytes, as_json) as bar:
        result = uc.verify(env, _store(env), manifest.id, progress=bar)
    if as_json:
        print_json({"backup": manifest.id, "ok": not result.problems, "problems": result.problems,
                    "verification": result.verification.model_dump(mode="json")})
    elif not result.problems:
        progress(f"backup {manifest.id} verified: {result.verification.tables_checked} tables, "
                 f"{result.verification.rows_checked} rows, sanity checks clean, "
                 f"{result.verification.duration_s} s")
    if result.problems:
        raise VerificationError(f"backup {manifest.id} failed verification: " + "; ".join(result.problems))


@app.command("restore")
def restore(backup_id: str | None = ID_ARGUMENT, latest: bool = LATEST_OPTION, env_name: str = ENV_OPTION,
            plan_only: bool = confirm.PLAN_OPTION, yes: bool = confirm.YES_OPTION, as_json: bool = JSON_OPTION,
            jobs: int | None = typer.Option(None, "--jobs", "-j", min=1,
                                            help="pg_restore jobs (default: this machine's cores).")) -> None:
    """Replace the environment's database with a backup (its plan first; --plan changes nothing)."""
    _check_pick(backup_id, latest)
    env = resolve(env_name)
    manifest = _pick(env, backup_id, latest)
    steps = uc.restore_plan(env, manifest, jobs=jobs)
    if not confirm.gate(env.name, env.is_production, f"replace the database with backup {manifest.id}",
                        confirm.show_steps(steps, as_json=as_json, plan_only=plan_only,
                                           data={"backup": manifest.id}),
                        plan_only=plan_only, yes=yes):
        return
    on_interrupt(f"{env.name}'s database changes only at the final swap (the restore builds a new database beside "
                 "it); run the same command again: it first cleans up or puts back what this run left")
    with _bar("downloading", manifest.stored_bytes, as_json) as bar:
        result = uc.restore(env, _store(env), manifest, jobs=jobs, progress=bar,
                            phase=(lambda _step: None) if as_json else progress)
    if as_json:
        print_json({**result, "applied": True})
    else:
        progress(f"restored {manifest.id} into {env.name}: {result['tables']} tables in {result['seconds']} s")
    if result["mismatched_tables"]:
        raise VerificationError(f"restored, but row counts differ: {result['mismatched_tables']}")


@app.command("fetch")
def fetch(backup_id: str | None = ID_ARGUMENT, latest: bool = LATEST_OPTION, env_name: str = ENV_OPTION,
          out: Path = typer.Option(..., "--out", "-o", help="Where to write the encrypted backup: a folder (its "
                                   "files and manifest.json) for a directory backup, a file for a single stream."),
          as_json: bool = JSON_OPTION) -> None:
    """Download a backup's encrypted objects (checksums checked), for a restore with the plain tools."""
    _check_pick(backup_id, latest)
    env = resolve(env_name)
    manifest = _pick(env, backup_id, latest)
    partial = out.with_name(out.name + ".partial")
    if manifest.is_directory:
        import shutil

        shutil.rmtree(partial, ignore_errors=True)  # what an interrupted fetch left
        with _bar("downloading", manifest.stored_bytes, as_json) as bar:
            written = uc.fetch_directory(_store(env), manifest, partial, identity_file=None, jobs=uc.default_jobs(),
                                         progress=bar)
        (partial / "manifest.json").write_text(manifest.model_dump_json(indent=2))
        partial.replace(out)  # only a complete, checked download takes the final name
        if as_json:
            print_json({"backup": manifest.id, "folder": str(out), "bytes": written, "files": len(manifest.files)})
        else:
            progress(f"{out}/: {len(manifest.files)} files, {written} bytes, each sha256 matches the manifest")
        return
    with _bar("downloading", manifest.stored_bytes, as_json) as bar, open(partial, "wb") as target:
        written = uc.fetch(_store(env), manifest, target, progress=bar)
    partial.replace(out)  # only a complete, checked download takes the final name
    if as_json:
        print_json({"backup": manifest.id, "file": str(out), "bytes": written, "sha256": manifest.sha256})
    else:
        progress(f"{out}: {written} bytes, sha256 matches the manifest")


@app.command("prune")
def prune(env_name: str = ENV_OPTION, daily: int = typer.Option(30, min=1, help="Daily backups kept."),
          monthly: int = typer.Option(12, min=0, help="Monthly backups kept."),
          plan_only: bool = confirm.PLAN_OPTION, yes: bool = confirm.YES_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Apply the retention policy (30 dailies + 12 monthlies by default); --plan changes nothing.

    The newest verified backup is always kept."""
    env = resolve(env_name)
    store = _store(env)
    plan = uc.prune_plan(env.name, store, daily=daily, monthly=monthly)

    def show() -> None:
        if as_json and plan_only:
            print_json({"keep": plan.keep, "delete": plan.delete, "deleted": [], "applied": False})
            return
        progress(f"plan: keep {len(plan.keep)}, delete {len(plan.delete)}")
        for backup_id in plan.delete:
            stderr.print(f"  would delete {backup_id}", highlight=False)

    # Deleting nothing changes nothing: no confirmation to ask for.
    if not confirm.gate(env.name, env.is_production and bool(plan.delete), f"delete {len(plan.delete)} backup(s)",
                        show, plan_only=plan_only, yes=yes):
        return
    deleted = uc.prune(env.name, store, plan)
    if as_json:
        print_json({"keep": plan.keep, "delete": plan.delete, "deleted": deleted, "applied": True})
        return
    for backup_id in deleted:
        stderr.print(f"  deleted {backup_id}", highlight=False)
