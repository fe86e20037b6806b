"""Provider plans as data: which plan each provider is on in a phase, and the limits we meet.

`stacks/data/plans.json` is the one dated table (each limit with its source). The program's
defaults come from it (`config.py`), the `fits-the-plan` policy checks every planned resource
against it (`policies.py`), and `ops cost` prices the same phases (`cost.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stacks.data import load


@dataclass(frozen=True)
class Limit:
    value: Any
    source: str
    where: str  # e.g. "cloudflare free rate_limit_periods", for messages

    def __str__(self) -> str:
        return f"{self.value!r} ({self.where}; {self.source})"


def phases() -> dict[str, dict[str, Any]]:
    return dict(load("plans")["phases"])


def plan_of(phase: str, provider: str) -> str:
    """The plan `provider` is on in `phase` (e.g. growth, neon -> launch)."""
    try:
        return str(load("plans")["phases"][phase][provider])
    except KeyError:
        raise KeyError(f"stacks/data/plans.json: no plan for {provider} in phase {phase!r}") from None


def plans_of(provider: str) -> list[str]:
    """The plans of `provider` the table has limits for."""
    return sorted(load("plans")["limits"][provider])


def limit(phase: str, provider: str, key: str) -> Limit:
    return plan_limit(provider, plan_of(phase, provider), key)


def plan_limit(provider: str, plan: str, key: str) -> Limit:
    """A limit of a named plan (a stack may be on another plan than its phase's, e.g. cache.plan)."""
    try:
        entry = load("plans")["limits"][provider][plan][key]
    except KeyError:
        raise KeyError(f"stacks/data/plans.json: no {key} for {provider} {plan}") from None
    return Limit(entry["value"], str(entry["source"]), f"{provider} {plan} {key}")


def largest_at_most(phase: str, provider: str, key: str, ceiling: int) -> int:
    """The largest allowed value not above `ceiling` (e.g. a rate-limit period up to a minute)."""
    allowed = [int(v) for v in limit(phase, provider, key).value if int(v) <= ceiling]
    if not allowed:
        raise KeyError(f"stacks/data/plans.json: {provider} {plan_of(phase, provider)} {key} has nothing <= {ceiling}")
    return max(allowed)
