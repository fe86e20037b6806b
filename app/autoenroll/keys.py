"""Redis keys and TTLs, exactly as DOMAIN.md lists them. Nothing else in the app spells a key."""

from __future__ import annotations

SESSION_TTL_S = 30 * 60
RATE_WINDOW_S = 60


def session(user_id: str) -> str:
    return f"session:{user_id}"


def rate(ip: str, endpoint: str) -> str:
    return f"rate:{ip}:{endpoint}"


def blacklist(jti: str) -> str:
    return f"blacklist:{jti}"


def cache(entity: str, entity_id: str) -> str:
    return f"cache:{entity}:{entity_id}"
