"""Apply the app's masking rules to a database, in one transaction, exactly once.

The masking and a marker table (`_ops_masked`) commit together: a crash mid-way rolls the
whole masking back (the copy stays unmasked and is masked again on the next run), and a
copy that was masked is never masked twice (which would break join stability).
"""

from __future__ import annotations

import json

from autoenroll.masking import SQL_FUNCTIONS, sql_key, update_statements
from ops import failpoints
from ops.pg import connect

MARKER = "_ops_masked"


def mask_database(url: str, key: str) -> tuple[dict[str, int], bool]:
    """Mask every personal column; returns (rows masked per table, whether this call did it)."""
    with connect(url) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", (f"public.{MARKER}",)).fetchone()
        if exists and exists[0]:
            row = conn.execute(f"SELECT rows FROM {MARKER} ORDER BY masked_at DESC LIMIT 1").fetchone()  # noqa: S608
            return (dict(row[0]) if row else {}), False  # type: ignore[call-overload]
        conn.execute(SQL_FUNCTIONS)
        counts: dict[str, int] = {}
        for table, statement in update_statements().items():
            cursor = conn.execute(statement, {"key": sql_key(key)})
            counts[table] = cursor.rowcount
            failpoints.hit("refresh.mask.table")
        conn.execute(f"CREATE TABLE {MARKER} (masked_at timestamptz NOT NULL DEFAULT now(), rows jsonb NOT NULL)")
        conn.execute(f"INSERT INTO {MARKER} (rows) VALUES (%s::jsonb)", (json.dumps(counts),))  # noqa: S608
        conn.commit()
    return counts, True
