"""Keeping secrets out of output: URL password masking and a redacting log filter."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]+)@", re.I)


def mask_url(url: str) -> str:
    """Return `url` with any password replaced by `***`, keeping everything else readable."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def scrub_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask passwords in any URL in `text`, and every literal secret given."""
    out = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, "***")
    return out
