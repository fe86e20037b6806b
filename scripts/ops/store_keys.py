"""The object-store key layout: every key `ops` reads or writes in an environment's backups bucket.

    <env>/<id>/<name>                     a backup's objects (names: ops.backup.manifest)
    <env>/.lock                           the backup lock
    _ops/<env>/deploy.lock                the hosts lock (deploy, rollback, failover's redeploys)
    _ops/<env>/deploy.history.json        the deploy history
    _ops/<env>/failover.lock|journal.json|last.json, _ops/<env>/traffic.json
    _ops/<env>/refresh-<target>.lock|journal.json
    _ops/<env>/live-database.json         which database the app serves from
    _ops/<env>/broken-locks/<stamp>.json  who broke which lock

The keys are a stored format: every runner (a laptop, CI, an older `ops` mid-run) must find the
same object under the same name, so they are spelled here once and tests/scripts/test_store_keys.py
pins them. `_ops/` keeps ops's own state apart from the backups: a backup id never starts with `_`.
"""

from __future__ import annotations

OPS_ROOT = "_ops"


def ops_prefix(env_name: str) -> str:
    """Every key of ops's own state for an environment starts with this."""
    return f"{OPS_ROOT}/{env_name}/"


def backup_prefix(env_name: str) -> str:
    return f"{env_name}/"


def backup_key(env_name: str, backup_id: str, name: str) -> str:
    return f"{backup_prefix(env_name)}{backup_id}/{name}"


def backup_lock(env_name: str) -> str:
    return f"{backup_prefix(env_name)}.lock"


def hosts_lock(env_name: str) -> str:
    """The one lock for an environment's hosts: deploy, rollback, and the redeploys of failover and
    failback all take it, so two of them never start candidates on the same host. The key keeps
    its first name (deploy.lock): a lock a running older `ops` holds is still seen."""
    return f"{ops_prefix(env_name)}deploy.lock"


def deploy_history(env_name: str) -> str:
    return f"{ops_prefix(env_name)}deploy.history.json"


def failover_lock(env_name: str) -> str:
    return f"{ops_prefix(env_name)}failover.lock"


def failover_journal(env_name: str) -> str:
    return f"{ops_prefix(env_name)}failover.journal.json"


def failover_last(env_name: str) -> str:
    return f"{ops_prefix(env_name)}failover.last.json"


def traffic(env_name: str) -> str:
    return f"{ops_prefix(env_name)}traffic.json"


def refresh_lock(env_name: str, target: str) -> str:
    return f"{ops_prefix(env_name)}refresh-{target}.lock"


def refresh_journal(env_name: str, target: str) -> str:
    return f"{ops_prefix(env_name)}refresh-{target}.journal.json"


def live_database(env_name: str) -> str:
    return f"{ops_prefix(env_name)}live-database.json"


def broken_locks_prefix(env_name: str) -> str:
    return f"{ops_prefix(env_name)}broken-locks/"


def broken_lock(env_name: str, stamp: str) -> str:
    return f"{broken_locks_prefix(env_name)}{stamp}.json"
