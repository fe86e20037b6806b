"""Which refreshes are allowed (environment strategy: staging <- main after each release, development <- staging)."""

from __future__ import annotations

from ops.errors import RefusedError

ALLOWED_SOURCES: dict[str, tuple[str, ...]] = {
    "staging": ("main",),
    "development": ("staging", "main"),
}
PROTECTED = ("main", "production")


def preserved_prefix(target: str) -> str:
    """How a refresh names the old state of `target` it keeps (every BranchStore lists them by it)."""
    return f"{target}_pre_refresh_"


def check(target: str, source: str) -> None:
    """Raise RefusedError unless refreshing `target` from `source` is allowed."""
    if target in PROTECTED:
        raise RefusedError(f"refusing to refresh into {target}: production data is never overwritten by a refresh",
                           hint="to roll production back, use ops backup restore or Neon point-in-time restore")
    if target == source:
        raise RefusedError(f"refusing to refresh {target} from itself")
    if target not in ALLOWED_SOURCES:
        raise RefusedError(f"unknown target branch {target!r}", hint=f"targets: {', '.join(ALLOWED_SOURCES)}")
    if source not in ALLOWED_SOURCES[target]:
        raise RefusedError(f"refusing to refresh {target} from {source}",
                           hint=f"{target} may be refreshed from: {', '.join(ALLOWED_SOURCES[target])}")
