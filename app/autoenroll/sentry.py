"""Sentry, only when SENTRY_DSN is set, and scrubbed: no PPSN, name, date of birth, pay, token or
connection string may reach an event (local variables are off; `before_send` scrubs the rest)."""

from __future__ import annotations

import re
from typing import Any

DENYLIST = [
    "ppsn", "first_name", "last_name", "full_name", "name", "date_of_birth", "dob", "gross_pay", "pay", "email",
    "password", "password_hash", "token", "access_token", "authorization", "cookie", "set-cookie", "jti",
    "database_url", "redis_url", "dsn", "sentry_dsn", "auth_secret", "s3_secret_access_key", "s3_access_key_id",
    "neon_api_key", "hcloud_token", "cloudflare_api_token", "masking_key", "x-api-key",
]
PATTERNS = [
    re.compile(r"\b\d{7}[A-W][A-IW]?\b", re.I),  # PPSN
    re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@]*:[^\s@]+@[^\s]+", re.I),  # URL with credentials
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"),  # JWT
    re.compile(r"[A-Z0-9._%+-]+@[A-Z0-9.-]+\.[A-Z]{2,}", re.I),  # e-mail address
    re.compile(r"\b(19|20)\d{2}-\d{2}-\d{2}\b"),  # ISO dates (dates of birth)
]
FILTERED = "[Filtered]"


def scrub(value: Any) -> Any:
    """Recursively replace denied keys and sensitive patterns in an event."""
    if isinstance(value, dict):
        return {k: (FILTERED if str(k).lower() in DENYLIST else scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub(v) for v in value)
    if isinstance(value, str):
        for pattern in PATTERNS:
            value = pattern.sub(FILTERED, value)
        return value
    return value


def before_send(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    return scrub(event)  # type: ignore[no-any-return]


def init(dsn: str | None, environment: str, release: str) -> bool:
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.scrubber import EventScrubber

    sentry_sdk.init(
        dsn=dsn, environment=environment, release=release, send_default_pii=False, include_local_variables=False,
        max_request_body_size="never", before_send=before_send,  # type: ignore[arg-type]
        event_scrubber=EventScrubber(denylist=DENYLIST, recursive=True), traces_sample_rate=0.0,
    )
    return True
