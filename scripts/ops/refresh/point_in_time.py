"""`ops db restore-to`: Neon's point-in-time restore of an environment's branch, for any environment.

Two shapes, both Neon's own operations (nothing is copied by us):
- in place: `POST /branches/{id}/restore` with the branch as its own source at a timestamp, the
  state it had until now preserved as a new branch under a name. The branch keeps its id and
  endpoints, so the app's connection strings stay right (as neonctl's `branches restore
  BRANCH ^self@TIME --preserve-under-name NAME`).
- `--into NAME`: a new branch made from the environment's branch as it was at that time
  (`parent_timestamp`), to look at old data without touching the live branch.

The sandbox has no such history (its PostgreSQL archives no WAL): wiring refuses it with a message
that says what to use instead, rather than pretending with a backup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ops.errors import ConfigError, RefusedError

# Neon branch names are free text; ours stay plain so they read well in `neonctl branches list`
# and in shell commands, and never shadow an environment's own branch.
INTO_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENVIRONMENT_BRANCHES = ("main", "staging", "development")


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An ISO 8601 moment with its zone (a bare local time is ambiguous at 3 a.m.), not in the future."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--time {text!r}: not an ISO 8601 time", hint="e.g. --time 2026-12-07T02:40:00Z") from None
    if moment.tzinfo is None:
        raise ConfigError(f"--time {text!r}: give the time zone (Z for UTC, or +01:00)",
                          hint="e.g. --time 2026-12-07T02:40:00Z")
    if moment > (now or datetime.now(UTC)):
        raise ConfigError(f"--time {text!r} is in the future: nothing to restore to yet")
    return moment.astimezone(UTC)


def neon_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RestorePlan:
    environment: str
    branch: str
    branch_id: str
    moment: datetime
    into: str | None
    preserve_as: str | None  # in place only: where the state until now is kept

    @property
    def steps(self) -> list[str]:
        at = neon_time(self.moment)
        if self.into:
            return [f"create Neon branch {self.into} from {self.branch} ({self.branch_id}) as it was at {at}, "
                    f"with its own compute; {self.branch} itself is not touched",
                    f"connect to it with the owner role (Neon console, or `neonctl connection-string {self.into}`); "
                    f"delete it when done (`neonctl branches delete {self.into}`): it holds {self.environment}'s "
                    "data"]
        return [f"restore Neon branch {self.branch} ({self.branch_id}) in place to {at}; its endpoints and "
                "connection strings stay, open connections are dropped",
                f"keep its state until now as branch {self.preserve_as} (nothing is lost: restore from it the "
                "same way to undo)"]

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "branch": self.branch, "branch_id": self.branch_id,
                "time": neon_time(self.moment), "into": self.into, "preserve_as": self.preserve_as,
                "plan": self.steps}


def plan(environment: str, branch: str, branch_id: str, moment: datetime, into: str | None, *,
         existing: list[str], now: datetime | None = None) -> RestorePlan:
    """Refusals first (a bad name, a name taken), then what would be done; reads nothing itself."""
    if into is not None:
        if not INTO_NAME.match(into):
            raise ConfigError(f"--into {into!r}: lower-case letters, digits, '-' and '_' (up to 63), "
                              "starting with a letter or digit")
        if into in ENVIRONMENT_BRANCHES:
            raise RefusedError(f"--into {into}: that is an environment's branch; --into makes a new side branch",
                               hint=f"to restore {branch} itself, leave --into out")
        if into in existing:
            raise RefusedError(f"--into {into}: a branch of that name exists already",
                               hint="pick another name, or delete that branch first if you are done with it")
        return RestorePlan(environment, branch, branch_id, moment, into, None)
    preserve = f"{branch}_pre_restore_{(now or datetime.now(UTC)):%Y%m%dt%H%M%Sz}"
    return RestorePlan(environment, branch, branch_id, moment, None, preserve)


def restore_to(client: Any, project_id: str, planned: RestorePlan) -> dict[str, Any]:
    """Carry out the plan with Neon's API (the client waits for its operations to finish)."""
    at = neon_time(planned.moment)
    if planned.into:
        made = client.create_branch(project_id, name=planned.into, parent_id=planned.branch_id,
                                    parent_timestamp=at,
                                    # No suspend_timeout_seconds: the Free plan refuses any but its default.
                                    endpoint={"autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 1})
        return {**planned.to_json(), "created_branch_id": made["branch"]["id"], "applied": True}
    client.restore_branch(project_id, planned.branch_id, source_branch_id=planned.branch_id,
                          source_timestamp=at, preserve_under_name=planned.preserve_as)
    return {**planned.to_json(), "applied": True}
