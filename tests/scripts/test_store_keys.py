"""The object-store key layout is a stored format (ops.store_keys): pinned here literally, and
spelled nowhere else in ops, so a key can't drift between the writer and a reader."""

from __future__ import annotations

import ast
from pathlib import Path

from ops import store_keys as k

OPS = Path(__file__).resolve().parents[2] / "scripts" / "ops"


def test_every_key_is_where_stored_state_already_lives() -> None:
    # Literal keys on purpose: a change here strands what earlier runs wrote (locks, journals, history).
    assert k.backup_prefix("production") == "production/"
    assert k.backup_key("production", "20260101T000000Z", "manifest.json") == \
        "production/20260101T000000Z/manifest.json"
    assert k.backup_lock("production") == "production/.lock"
    assert k.ops_prefix("staging") == "_ops/staging/"
    assert k.hosts_lock("staging") == "_ops/staging/deploy.lock"
    assert k.deploy_history("staging") == "_ops/staging/deploy.history.json"
    assert k.failover_lock("production") == "_ops/production/failover.lock"
    assert k.failover_journal("production") == "_ops/production/failover.journal.json"
    assert k.failover_last("production") == "_ops/production/failover.last.json"
    assert k.traffic("production") == "_ops/production/traffic.json"
    assert k.refresh_lock("local", "staging") == "_ops/local/refresh-staging.lock"
    assert k.refresh_journal("local", "development") == "_ops/local/refresh-development.journal.json"
    assert k.live_database("local") == "_ops/local/live-database.json"
    assert k.broken_locks_prefix("local") == "_ops/local/broken-locks/"
    assert k.broken_lock("local", "20260101T000000000000Z") == "_ops/local/broken-locks/20260101T000000000000Z.json"


def _spellings(path: Path) -> list[int]:
    """Lines where a string literal (an f-string's fixed parts included) spells ops's state prefix."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "_ops/" in node.value]


def test_the_layout_is_spelled_only_in_store_keys() -> None:
    offenders = [f"{path.relative_to(OPS)}:{line}" for path in sorted(OPS.rglob("*.py"))
                 if path.name != "store_keys.py" for line in _spellings(path)]
    assert offenders == [], "use ops.store_keys:\n" + "\n".join(offenders)


def test_the_scan_sees_a_key_in_an_f_string(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def key(env):\n    return f"_ops/{env}/deploy.lock"\n')
    assert _spellings(bad) == [2]
