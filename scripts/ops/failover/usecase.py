"""`ops failover`: the failover plan as journaled, idempotent steps; `ops failback`.

Steps: switch traffic to the standby, restore the database, set the
environment, deploy, test the endpoints, watch the error rate. Each finished step is
written to a journal in the object store; running the same command again after a crash
resumes after the last finished step. The report states the recovery time and the
data-loss window, and lists writes made after the restored backup's point (they are
reported, never silently dropped).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ops import failpoints, store_keys
from ops.deploy.interrupt import interruptible
from ops.errors import ConfigError, ExternalError, NotFoundError, VerificationError
from ops.journal import step_runner
from ops.locks import HOSTS_LOCK, LEASE, hosts_lock, list_locks, object_lock, release_command
from ops.ports import FailoverSite, LiveDatabase, ObjectStore, TrafficSwitch

STEPS = ("switch-traffic", "restore-database", "set-environment", "deploy", "check-endpoints", "watch-errors")

# The recommended production settings (the infrastructure requirements' PostgreSQL tuning),
# applied to the PostgreSQL that takes over.
SEED_SETTINGS = {
    "max_connections": "100", "shared_buffers": "256MB", "effective_cache_size": "1GB",
    "maintenance_work_mem": "64MB", "checkpoint_completion_target": "0.9", "wal_buffers": "16MB",
    "default_statistics_target": "100", "random_page_cost": "1.1", "effective_io_concurrency": "200",
    "work_mem": "2621kB", "min_wal_size": "1GB", "max_wal_size": "4GB",
}
LATE_WRITE_QUERIES = {
    "tenants": "SELECT count(*) FROM tenants WHERE created_at > %s",
    "users": "SELECT count(*) FROM users WHERE created_at > %s",
    "uploads": "SELECT count(*) FROM uploads WHERE created_at > %s",
    "validation_runs": "SELECT count(*) FROM validation_runs WHERE started_at > %s",
}


def parse_db_mode(mode: str) -> tuple[str, str | None]:
    if mode in ("latest-backup", "none"):
        return mode, None
    if mode.startswith("neon-pitr@"):
        moment = mode.split("@", 1)[1]
        try:
            datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"--db: {moment!r} is not an ISO time (e.g. 2026-11-21T03:00:00Z)") from None
        return "neon-pitr", moment
    raise ConfigError(f"--db: {mode!r}: use latest-backup, neon-pitr@TIME or none")


def plan(db_mode: str) -> list[str]:
    mode, moment = parse_db_mode(db_mode)
    database = {"latest-backup": "restore the latest verified backup into the standby's PostgreSQL, tuned for "
                                 "production (shared_buffers, work_mem, WAL sizes, ...)",
                "neon-pitr": f"restore Neon branch main to {moment} (old state preserved)",
                "none": "keep the current database"}[mode]
    return ["switch traffic to the standby", database, "point the standby's environment at that database",
            "redeploy the app on the standby", "check every endpoint", "watch the error rate"]


def _move_traffic(objects: ObjectStore, env_name: str, traffic: TrafficSwitch, role: str,
                  journal: dict[str, Any]) -> str:
    """Move the public names and record where they point, so `failover status` can say since when
    (and what was switched) even where it cannot ask the DNS provider."""
    def journaled(edit: dict[str, Any]) -> None:
        # Before and after each record edit: a run that stops between two records leaves the
        # journal naming which one moved (and `status` reads the records themselves).
        journal.setdefault("records", {})[edit["record"]] = {**edit, "at": datetime.now(UTC).isoformat()}
        objects.put_bytes(store_keys.failover_journal(env_name), json.dumps(journal, default=str).encode())
        # e.g. failover.edited.app: the drills stop a run here, between the two records.
        failpoints.hit(f"{journal['direction']}.{edit['state']}.{edit['record']}")

    switched = traffic.move_to(role, journaled)
    record = {"serving": role, "since": datetime.now(UTC).isoformat(), "by": journal["direction"],
              "db_mode": journal["db_mode"], "switched": switched}
    objects.put_bytes(store_keys.traffic(env_name), json.dumps(record).encode())
    return switched


def resume_command(env_name: str, journal: dict[str, Any]) -> str:
    """The exact command that finishes a journaled failover or failback."""
    if journal.get("direction") == "failback":
        return f"ops failback --env {env_name}"
    mode = str(journal.get("db_mode", "none"))
    return f"ops failover --env {env_name} --db {mode}" + ("" if mode == "none" else " --yes")


def interrupt_note(env_name: str, journal: dict[str, Any]) -> str:
    """What a SIGTERM or Ctrl-C leaves (said by the CLI when the run stops): the steps that finished
    are journaled, the locks released, and the DNS records possibly split (a switch cut between them)."""
    return (f"its finished steps are journaled and its locks released; `ops failover status --env {env_name}` "
            f"shows the steps done and both DNS records (SPLIT if the switch was cut between them); "
            f"resume with: {resume_command(env_name, journal)}")


def finish_command(env_name: str, journal: dict[str, Any] | None, records: dict[str, str]) -> str:
    """The command that makes split records whole: the journaled run's own, else the move the first
    record (app, the one a switch moves first) made."""
    if journal:
        return resume_command(env_name, journal)
    if records.get("app") == "standby":
        return f"ops failover --env {env_name} --db none"
    return f"ops failback --env {env_name}"


def status(env_name: str, objects: ObjectStore, live: LiveDatabase, *, home_database: str,
           serving: Callable[[], str] | None, serving_source: str,
           records: Callable[[], dict[str, str]] | None = None) -> dict[str, Any]:
    """The truth about traffic and data: a failover or failback in progress (its mode, what is done,
    the command that resumes it), failed over (since when, to what, on which database), or idle.

    `serving` asks the traffic switch itself (Caddy, Cloudflare); without it (no DNS token) the
    state recorded at the last switch answers, and the report says so."""
    journal = read_journal(objects, env_name)
    last_raw = objects.get_bytes(store_keys.failover_last(env_name))
    traffic_raw = objects.get_bytes(store_keys.traffic(env_name))
    last = json.loads(last_raw) if last_raw else None
    recorded = json.loads(traffic_raw) if traffic_raw else None
    database = live.get()
    on = recorded["serving"] if recorded else "primary"
    if serving is not None:
        try:
            on = serving()
        except ExternalError as exc:  # Cloudflare down is when this is asked: answer from the record, and say so
            serving_source = f"the recorded state ({serving_source} unreachable: {exc.message})"
    seen: dict[str, str] | None = None
    if records is not None:
        try:
            seen = records()
        except ExternalError:
            seen = None  # said above, through serving_source
    split = bool(seen) and len(set((seen or {}).values())) > 1
    if seen and not split:
        on = next(iter(seen.values()))
    out: dict[str, Any] = {"environment": env_name, "serving": on, "serving_source": serving_source,
                           "live_database": database, "home_database": home_database,
                           "in_progress": journal, "last": last, "traffic_record": recorded, "records": seen,
                           "split": split}
    if recorded and recorded.get("serving") != on:
        out["note"] = (f"recorded state says traffic went to the {recorded['serving']} at {recorded['since']}, "
                       f"but {serving_source} says {on}: someone switched it outside ops")
    held = [h for h in list_locks(objects, env_name) if h["name"] in ("failover", HOSTS_LOCK)]
    if held:
        # Resuming from another machine meets these: who holds them, until when, and how to break them.
        out["locks_held"] = held
        out["break_locks"] = [release_command(h["name"], env_name) for h in held]
        out["locks_note"] = "; ".join(
            f"{h['guards']} is held by {h['owner']} ({h['purpose']}) since {h['acquired_at']}, expires "
            f"{h['expires_at']}{' (expired)' if h['expired'] else ''}" for h in held) + (
            f". If that run is dead (a closed laptop, a cancelled CI job), wait for the expiry (leases of "
            f"{int(LEASE.total_seconds() // 60)} minutes, renewed only while the run lives) or break "
            f"{'them' if len(held) > 1 else 'it'}: {'; '.join(out['break_locks'])} (--yes without a terminal)"
            + (f"; then resume: {resume_command(env_name, journal)}" if journal else ""))
    if split and seen is not None:
        where = ", ".join(f"{k} -> {v}" for k, v in seen.items())
        out["finish"] = finish_command(env_name, journal, seen)
        out["split_summary"] = (f"SPLIT DNS: {where} ({serving_source}); the switch did not finish: "
                                f"finish it with: {out['finish']}")
    if journal:
        steps = STEPS if journal["direction"] == "failover" else FAILBACK_STEPS
        out.update(state="in-progress", direction=journal["direction"], db_mode=journal["db_mode"],
                   started_at=journal.get("started_at"), done=list(journal["done"]),
                   pending=[s for s in steps if s not in journal["done"]],
                   resume=resume_command(env_name, journal))
        out["summary"] = (f"{journal['direction']} in progress (--db {journal['db_mode']}, started "
                          f"{journal.get('started_at')}), traffic on the {on}; "
                          f"{len(out['done'])} of {len(steps)} steps done; resume with: {out['resume']}")
        if split:
            out["summary"] = f"{out['split_summary']}. {out['summary']}"
    elif split:
        out.update(state="split", resume=out["finish"], summary=out["split_summary"])
    elif on == "standby":
        since = (recorded or {}).get("since") if (recorded or {}).get("serving") == "standby" else None
        mode = (recorded or {}).get("db_mode") or (last or {}).get("db_mode") or "unknown"
        out.update(state="failed-over", since=since or (last or {}).get("finished_at") or database.get("since"),
                   db_mode=mode, switched=(recorded or {}).get("switched"), resume=f"ops failback --env {env_name}")
        out["summary"] = (f"FAILED OVER: traffic on the standby since {out['since'] or 'unknown'}"
                          f"{' (' + out['switched'] + ')' if out['switched'] else ''}; database "
                          f"{database['database']} ({database['kind']}, --db {mode}); when the primary is "
                          f"healthy: {out['resume']}")
    else:
        out.update(state="idle")
        away = database["database"] != home_database
        out["summary"] = ("idle: traffic on the primary, no failover in progress; live database "
                          f"{database['database']}" + (f" (not the home {home_database}: moving data back is "
                                                        "planned maintenance)" if away else ""))
    return out


def read_journal(objects: ObjectStore, env_name: str) -> dict[str, Any] | None:
    raw = objects.get_bytes(store_keys.failover_journal(env_name))
    return json.loads(raw) if raw else None


def watch_errors(url: str, seconds: float, *, max_error_rate: float = 0.05, interval: float = 0.25) -> dict[str, Any]:
    import httpx  # here, not at the top: `ops --help` imports this module (cli/failover.py's option default)

    sent = failed = 0
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=3) as client:
        while time.monotonic() < deadline:
            sent += 1
            try:
                if client.get(url + "/ready").status_code != 200:
                    failed += 1
            except httpx.HTTPError:
                failed += 1
            time.sleep(interval)
    rate = failed / sent if sent else 1.0
    if rate > max_error_rate:
        raise VerificationError(f"error rate {rate:.0%} over {seconds:g} s after failover (limit "
                                f"{max_error_rate:.0%}): the standby is not healthy")
    return {"requests": sent, "failed": failed, "error_rate": round(rate, 4)}


def endpoints_answer(url: str) -> dict[str, Any]:
    """The failover's endpoint step: every endpoint answers 200 (ops.health.check_endpoints, the one
    check; its latency targets are `ops health`'s business, not a reason to stop a failover), and
    the version the app reports, for the journal."""
    import httpx  # as in watch_errors: `ops failover --help` loads neither httpx nor ops.health

    from ops.health import check_endpoints

    out: dict[str, Any] = {}
    for check in check_endpoints(url, requests=1):
        if check.status != 200:
            problem = f"HTTP {check.status}" if check.status is not None else check.detail
            raise VerificationError(f"endpoint check {check.endpoint}: {problem}")
        out[check.endpoint] = check.status
    try:
        out["version"] = httpx.get(url + "/version", timeout=5).json()
    except httpx.HTTPError as exc:
        raise VerificationError(f"endpoint check /version: {exc.__class__.__name__}") from None
    return out


def _open_journal(objects: ObjectStore, env_name: str, direction: str, db_mode: str, *,
                  write: bool = True) -> dict[str, Any]:
    """The run's journal: the one in progress (refused if it is another run's), else a fresh one, written
    at once unless `write` is False (a plan reads only)."""
    journal = read_journal(objects, env_name) or {}
    if journal and (journal.get("direction") != direction or journal.get("db_mode") != db_mode):
        raise ConfigError(f"a {journal.get('direction')} with --db {journal.get('db_mode')} is in progress: finish it "
                          "with the same command, or see `ops failover status`")
    if journal:
        return journal
    fresh = {"direction": direction, "db_mode": db_mode, "started_at": datetime.now(UTC).isoformat(),
             "done": [], "results": {}}
    # Written before the first step: a run that stops inside it (between two DNS records) is in
    # progress for `status` and the next run, not invisible.
    if write:
        objects.put_bytes(store_keys.failover_journal(env_name), json.dumps(fresh).encode())
    return fresh


# How long a failover or failback waits for a deploy or rollback holding the hosts (one that meets a
# dead primary fails within ssh's ConnectTimeout and lets go); then exit 6, nothing changed.
HOSTS_WAIT_SECONDS = 120.0


def failover(env_name: str, site: FailoverSite, traffic: TrafficSwitch, live: LiveDatabase, objects: ObjectStore, *,
             db_mode: str, watch_seconds: float, progress: Callable[[str], None] = lambda _m: None,
             hosts_wait: float = HOSTS_WAIT_SECONDS) -> dict[str, Any]:
    """The failover's steps under its locks. SIGTERM (a cancelled CI job) and SIGINT (Ctrl-C) raise
    at whatever step they land: Python's default SIGTERM ended the process with no `finally`, so
    its locks stayed held until their lease ran out (a resume from any other machine refused for
    minutes) and nothing was said; now the locks are released, the journal keeps what finished
    (a switch cut between two records included), and the CLI names the command that resumes."""
    with interruptible():
        return _failover(env_name, site, traffic, live, objects, db_mode=db_mode, watch_seconds=watch_seconds,
                         progress=progress, hosts_wait=hosts_wait)


def _failover(env_name: str, site: FailoverSite, traffic: TrafficSwitch, live: LiveDatabase, objects: ObjectStore, *,
              db_mode: str, watch_seconds: float, progress: Callable[[str], None],
              hosts_wait: float) -> dict[str, Any]:
    mode, moment = parse_db_mode(db_mode)
    # The hosts lock before anything moves: DNS never goes to a standby a deploy is starting
    # candidates on, and no deploy starts while this run redeploys.
    # Leases renewed while this run lives: resumed from another machine, a dead run's locks
    # are free within minutes (LEASE), not after hours.
    with object_lock(objects, store_keys.failover_lock(env_name), ttl=LEASE, purpose="failover", renew=True,
                     name="failover", env_name=env_name), \
            hosts_lock(objects, env_name, purpose=f"failover of {env_name}", ttl=LEASE, wait=hosts_wait,
                       waiting=progress, renew=True):
        journal = _open_journal(objects, env_name, "failover", db_mode)
        resumed = journal["done"][-1] if journal["done"] else None
        # Late writes are counted on the database that was live before this failover.
        journal.setdefault("old_database", live.get()["database"])
        step = step_runner(objects, store_keys.failover_journal(env_name), journal, journal["direction"], progress,
                           steps=STEPS if journal["direction"] == "failover" else FAILBACK_STEPS)

        step("switch-traffic", lambda: _move_traffic(objects, env_name, traffic, "standby", journal))
        step("restore-database", lambda: site.restore_database(mode, moment) if mode != "none" else {"database": None})
        restored = journal["results"]["restore-database"]

        def set_environment() -> str:
            if not restored["database"]:
                return "unchanged"
            live.set(restored["database"], restored.get("kind", "branch"))
            return site.set_database("standby", restored["database"])

        step("set-environment", set_environment)
        step("deploy", lambda: site.redeploy("standby"))
        step("check-endpoints", lambda: endpoints_answer(site.public_url))
        if "recovered_at" not in journal:
            journal["recovered_at"] = datetime.now(UTC).isoformat()
        step("watch-errors", lambda: watch_errors(site.public_url, watch_seconds))
        started = datetime.fromisoformat(journal["started_at"])
        recovered = datetime.fromisoformat(journal["recovered_at"])
        report: dict[str, Any] = {"resumed_after": resumed, "steps": journal["done"], "db_mode": db_mode,
                                  "started_at": journal["started_at"], "finished_at": datetime.now(UTC).isoformat(),
                                  "recovery_seconds": round((recovered - started).total_seconds(), 2),
                                  "timings_s": journal.get("timings", {}),
                                  "live_database": live.get()["database"],
                                  "results": journal["results"]}
        if restored.get("point"):
            point = datetime.fromisoformat(restored["point"].replace("Z", "+00:00"))
            report["data_loss_window_seconds"] = round((started - point).total_seconds(), 1)
            report["restored_point"] = restored["point"]
            # Where the old data is now: the state a restore preserved, else the database that was live.
            report["writes_after_point"] = site.late_writes(point, restored.get("old_state") or journal["old_database"])
        objects.put_bytes(store_keys.failover_last(env_name), json.dumps(report, default=str).encode())
        objects.delete(store_keys.failover_journal(env_name))
    return report


FAILBACK_STEPS = ("set-environment", "deploy", "check-endpoints", "switch-traffic")


def failback(env_name: str, site: FailoverSite, traffic: TrafficSwitch, live: LiveDatabase, objects: ObjectStore, *,
             progress: Callable[[str], None] = lambda _m: None,
             hosts_wait: float = HOSTS_WAIT_SECONDS) -> dict[str, Any]:
    """Traffic back to the primary, on the database that is live now (journaled like the failover,
    and like it released and resumable when SIGTERM or SIGINT lands at any step)."""
    with interruptible():
        return _failback(env_name, site, traffic, live, objects, progress=progress, hosts_wait=hosts_wait)


def _failback(env_name: str, site: FailoverSite, traffic: TrafficSwitch, live: LiveDatabase, objects: ObjectStore, *,
              progress: Callable[[str], None], hosts_wait: float) -> dict[str, Any]:
    # Leases renewed while this run lives: resumed from another machine, a dead run's locks
    # are free within minutes (LEASE), not after hours.
    with object_lock(objects, store_keys.failover_lock(env_name), ttl=LEASE, purpose="failback", renew=True,
                     name="failover", env_name=env_name), \
            hosts_lock(objects, env_name, purpose=f"failback of {env_name}", ttl=LEASE, wait=hosts_wait,
                       waiting=progress, renew=True):
        journal = _open_journal(objects, env_name, "failback", "live")
        step = step_runner(objects, store_keys.failover_journal(env_name), journal, journal["direction"], progress,
                           steps=STEPS if journal["direction"] == "failover" else FAILBACK_STEPS)
        database = live.get()["database"]
        step("set-environment", lambda: site.set_database("primary", database))
        step("deploy", lambda: site.redeploy("primary"))
        step("check-endpoints", lambda: endpoints_answer(site.public_url))
        step("switch-traffic", lambda: _move_traffic(objects, env_name, traffic, "primary", journal))
        objects.delete(store_keys.failover_journal(env_name))
    return {"steps": journal["done"], "database": database, "results": journal["results"],
            "note": "" if database == site.home_database else (
                f"data stays in {database}; moving it back is planned maintenance "
                "(ops backup create, then ops backup restore into the home database)")}


def plan_failback(env_name: str, site: FailoverSite, traffic: TrafficSwitch, live: LiveDatabase,
                  objects: ObjectStore) -> dict[str, Any]:
    """`ops failback --plan`: the primary hosts and the version each would be redeployed with, the
    database they would be pointed at, the traffic switch; reads only."""
    journal = _open_journal(objects, env_name, "failback", "live", write=False)  # refuses as the real run would
    database = live.get()
    serving = traffic.serving()
    hosts = site.describe_hosts("primary")
    done = list(journal["done"])
    steps = [
        {"step": "set-environment", "does": f"point the primary hosts' DATABASE_URL at {database['database']} "
                                            f"(the live database, {database['kind']}); no data moves"},
        {"step": "deploy", "does": "redeploy the primary hosts on their current versions: " + ", ".join(
            f"{h['host']} {h['version']} at {h['address']}" for h in hosts)},
        {"step": "check-endpoints", "does": f"check /health, /ready and /version at {site.public_url}"},
        {"step": "switch-traffic", "does": "traffic is on the primary already: nothing to move"
                                           if serving == "primary" else f"move the public names {serving} -> primary"},
    ]
    for step in steps:
        step["state"] = "done (journal)" if step["step"] in done else "would run"
    return {"action": "failback", "environment": env_name, "serving": serving, "database": database,
            "hosts": hosts, "steps": steps, "lock_held": objects.get_bytes(store_keys.failover_lock(env_name))
            is not None, "data_note": "" if database["database"] == site.home_database else (
                f"data stays in {database['database']}; moving it back to {site.home_database} is planned "
                "maintenance"), "changes": "none (plan mode)"}


def require_backup(backups: list[Any]) -> Any:
    verified = [mf for mf, v in backups if v and v.ok]
    if verified:
        return verified[0]
    if backups:
        return backups[0][0]
    raise NotFoundError("no backup to restore from", hint="ops backup create --env ... (and verify it)")
