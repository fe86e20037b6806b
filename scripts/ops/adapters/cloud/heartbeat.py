"""Heartbeat over HTTP: BetterStack's ping URL in real environments, the recorder in the sandbox.

Filed under cloud: it speaks BetterStack's ping protocol; the sandbox's recorder
(ops.sandbox.heartbeat_recorder) answers the same requests."""

from __future__ import annotations

import httpx

from ops.errors import ExternalError


class HttpHeartbeat:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self._url = url
        self._timeout = timeout

    def ping(self) -> None:
        try:
            response = httpx.get(self._url, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ExternalError(f"heartbeat ping failed: {exc.__class__.__name__}") from None
        if response.status_code >= 400:
            raise ExternalError(f"heartbeat ping failed: HTTP {response.status_code}")
