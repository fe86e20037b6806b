"""A small JSON API client with the retry policy of hcloud-python.

Default timeouts; capped exponential backoff with full jitter; retries only what is worth
retrying (429 honouring Retry-After, 502/503/504, timeouts and connection errors, plus any
extra statuses a provider documents as transient, e.g. Neon's 423 Locked); errors carry the
provider's request id. The transport is injectable so tests fake the provider at the HTTP
layer with `httpx.MockTransport`. Raises only `clients.errors` (each program maps them into its own tree).

Public methods are what callers see; the clients' own methods call the private `_send`, so a
program that maps errors on the public methods (ops/adapters/cloud/client_errors.py) never hands
a mapped error back into a client that catches its own (`get_or_none`'s 404).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import urlencode

import httpx

from clients.errors import (
    ClientConfigError,
    ClientConnectError,
    ClientHTTPError,
    ClientResponseError,
    NotFound,
    OutcomeUnknown,
    http_error,
)

RETRY_STATUSES = frozenset({429, 502, 503, 504})
# A request that never reached the provider is safe to send again, whatever it does.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)
SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})  # idempotent by HTTP's definition
REQUEST_ID_HEADERS = ("x-neon-ret-request-id", "x-request-id", "request-id", "cf-ray", "x-correlation-id")
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0, min(cap, base * (2**attempt)))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class JsonApiClient:
    """JSON over HTTPS with retries; subclasses add the provider's routes."""

    provider = "API"
    # Sent with every request (a provider's pinned API version); a class attribute, never mutated.
    default_headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 15.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        extra_retry_statuses: frozenset[int] = frozenset(),
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **self.default_headers},
            timeout=timeout,
            transport=transport,
        )
        self._max_attempts = max_attempts
        self._base = backoff_base
        self._cap = backoff_cap
        self._retry_statuses = RETRY_STATUSES | extra_retry_statuses
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.retries = 0  # observable by tests and reports

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                form: list[tuple[str, str]] | None = None, idempotency_key: str | None = None) -> Any:
        """See `_send`."""
        return self._send(method, path, json=json, params=params, form=form, idempotency_key=idempotency_key)

    def _send(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
              form: list[tuple[str, str]] | None = None, idempotency_key: str | None = None) -> Any:
        """Send one logical request, retrying transient failures; return the decoded JSON body.

        `form` sends an application/x-www-form-urlencoded body (Stripe's request format).
        A POST or PATCH may have been carried out when its answer timed out or was a 5xx: it is
        retried only with an `idempotency_key` (sent as `Idempotency-Key`, the same on every
        attempt, so the provider does it once); without one, only when it never left (a refused
        connection) or was refused before any work (429 and the provider's extra statuses)."""
        headers = dict(FORM_HEADERS) if form is not None else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        replayable = method.upper() in SAFE_METHODS or idempotency_key is not None
        unprocessed = (self._retry_statuses - RETRY_STATUSES) | {429}
        last_error = ""
        for attempt in range(self._max_attempts):
            try:
                response = self._client.request(method, path, json=json, params=params,
                                                content=urlencode(form) if form is not None else None,
                                                headers=headers or None)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if not replayable and not isinstance(exc, NOT_SENT):
                    raise OutcomeUnknown(f"{self.provider} {method} {path}: {exc.__class__.__name__}; not retried "
                                           "(it may have been carried out): check before running it again") from None
                last_error = exc.__class__.__name__
                self._wait(attempt, None)
                continue
            retry = response.status_code in self._retry_statuses and (replayable or response.status_code in unprocessed)
            if retry and attempt < self._max_attempts - 1:
                last_error = f"HTTP {response.status_code}"
                self._wait(attempt, _retry_after(response))
                continue
            if response.status_code >= 400:
                raise self._error(method, path, response)
            if not response.content:
                return None
            try:
                return response.json()
            except ValueError:  # a proxy's HTML page, a truncated body: the provider failed, not us
                raise ClientResponseError(f"{self.provider} {method} {path}: the answer is not JSON",
                                          status=response.status_code) from None
        raise ClientConnectError(f"{self.provider} {method} {path}: gave up after {self._max_attempts} attempts "
                               f"({last_error})")

    def get_or_none(self, path: str) -> Any:
        """GET `path`; None when the provider answers 404 (the resource is gone)."""
        try:
            return self._send("GET", path)
        except NotFound:
            return None

    def _wait(self, attempt: int, retry_after: float | None) -> None:
        self.retries += 1
        delay = retry_after if retry_after is not None else backoff_delay(attempt, self._base, self._cap, self._rng)
        self._sleep(min(delay, self._cap))

    def _error(self, method: str, path: str, response: httpx.Response) -> ClientHTTPError:
        request_id = next((response.headers[h] for h in REQUEST_ID_HEADERS if h in response.headers), None)
        try:
            body = response.json()
            detail = body.get("message") or body.get("errors") or body.get("error") or ""
        except ValueError:
            detail = response.text[:200]
        return http_error(f"{self.provider} {method} {path}: {str(detail)[:300]}".rstrip(": "),
                          response.status_code, request_id)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class FromEnviron:
    """`from_environ()` for a provider's client: its token from one environment variable, its base URL
    moved by another (the lab's loopback fake, for `ops` run as a subprocess); shared by the JSON
    clients below and the Cloudflare client on the SDK (clients/cloudflare_api.py)."""

    provider = ""
    base_url = ""
    base_url_variable = ""
    credential_variable = ""
    credential_hint: str | None = None

    if TYPE_CHECKING:  # each client has its own __init__, all taking the token first
        def __init__(self, token: str, **kwargs: Any) -> None: ...

    @classmethod
    def from_environ(cls, **kwargs: Any) -> Self:
        token = os.environ.get(cls.credential_variable, "")
        if not token:
            raise ClientConfigError(f"{cls.credential_variable}: required to call the {cls.provider} but not set",
                                    hint=cls.credential_hint)
        override = base_url_override(cls.base_url_variable)
        if override and "base_url" not in kwargs:
            kwargs["base_url"] = override
        return cls(token, **kwargs)


class ProviderClient(FromEnviron, JsonApiClient):
    """A SaaS provider's client: a fixed base URL, and a token from one environment variable.

    `base_url_variable` names the variable that moves the base URL (the lab's loopback fake of the
    provider, for `ops` run as a subprocess); unset in real use, so the provider's own URL is used."""

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, base_url: str | None = None, **kwargs: Any) -> None:
        JsonApiClient.__init__(self, base_url or self.base_url, token, transport=transport, sleep=sleep, **kwargs)



def base_url_override(variable: str) -> str | None:
    """The URL `variable` moves a provider's API to (the lab's loopback fake, for `ops` run as a
    subprocess), checked; None when unset, as in real use. Also read for the SDK clients (cloudflare,
    hcloud) that ops builds without a ProviderClient."""
    value = os.environ.get(variable, "") if variable else ""
    if not value:
        return None
    if not value.startswith(("http://", "https://")):
        raise ClientConfigError(f"{variable}: {value!r} is not an http(s) URL")
    return value
