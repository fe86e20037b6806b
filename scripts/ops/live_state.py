"""Which database is live, as recorded state in the environment's object store.

After a failover the app may serve from another database (the sandbox's `main_failover`,
or a backup restored on the standby host). Every command that touches the app's data reads
this rather than assuming the environment's branch, so a backup never backs up the stale
database and a second failover counts late writes on the right one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ops import store_keys
from ops.ports import ObjectStore


class RecordedLiveDatabase:
    def __init__(self, store: ObjectStore, env_name: str, default: str) -> None:
        self._store, self._key, self._default = store, store_keys.live_database(env_name), default

    def get(self) -> dict[str, Any]:
        raw = self._store.get_bytes(self._key)
        return json.loads(raw) if raw else {"database": self._default, "kind": "branch", "since": None}

    def set(self, database: str, kind: str) -> None:
        record = {"database": database, "kind": kind, "since": datetime.now(UTC).isoformat()}
        self._store.put_bytes(self._key, json.dumps(record).encode())
