"""The one Cloudflare API v4 client: DNS records (read, edit), zone settings, and plain GETs.

Built on the official `cloudflare` SDK rather than on `clients.http_api`: the SDK covers every
call the toolkit makes (typed DNS record and zone setting routes, `name.exact` filters, its own
retries of 429/5xx honouring Retry-After) and follows the API as Cloudflare changes it; only the
pre-flight probes of `ops doctor` (token permissions, R2 activation, Pages, rulesets) go through
the SDK's generic `get`, which adds the same base URL, auth, retries and errors. It replaces the
hand-written read-only client `ops checklist` used beside the SDK in the DNS switch: one base
URL, one override variable, one error mapping. Raises only `clients.errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar

import cloudflare
import httpx

from clients.errors import ClientConnectError, ClientError, ClientResponseError, http_error
from clients.http_api import FromEnviron

BASE_URL = "https://api.cloudflare.com/client/v4"
T = TypeVar("T")


def _request_id(exc: cloudflare.APIStatusError) -> str | None:
    ray = exc.response.headers.get("cf-ray")
    return str(ray) if ray else None


def _detail(exc: cloudflare.APIError) -> str:
    """Cloudflare's own words from its envelope's `errors` ("Invalid access token (code 9109)"), else the SDK's."""
    body = exc.body if isinstance(exc.body, dict) else {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    if errors:
        return "; ".join(f"{e['message']} (code {e.get('code')})" for e in errors)[:200]
    return exc.message[:200]


@contextmanager
def _sdk_errors(what: str) -> Iterator[None]:
    """The SDK's exceptions as `clients.errors`, "Cloudflare API <what>: <message>"."""
    try:
        yield
    except cloudflare.APIStatusError as exc:
        raise http_error(f"Cloudflare API {what}: {_detail(exc)}", exc.status_code, _request_id(exc)) from None
    except cloudflare.APIConnectionError as exc:
        raise ClientConnectError(f"Cloudflare API {what}: {exc.__class__.__name__} ({exc.message[:200]})") from None
    except cloudflare.APIError as exc:  # an answer the SDK could not read (APIResponseValidationError)
        raise ClientResponseError(f"Cloudflare API {what}: {exc.message[:200]}") from None


class CloudflareClient(FromEnviron):
    provider = "Cloudflare API"
    base_url = BASE_URL
    base_url_variable = "OPS_CLOUDFLARE_API_URL"
    credential_variable = "CLOUDFLARE_API_TOKEN"
    credential_hint = "a token with Zone:Read and DNS:Read on the zone is enough (DNS:Edit to switch traffic)"

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None, base_url: str | None = None,
                 max_attempts: int = 5, timeout: float = 15.0) -> None:
        http = httpx.Client(transport=transport, timeout=timeout) if transport is not None else None
        self.sdk = cloudflare.Cloudflare(api_token=token, base_url=base_url or self.base_url, http_client=http,
                                         max_retries=max(0, max_attempts - 1), timeout=timeout)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        with _sdk_errors(what):
            return call()

    # ---------------------------------------------------------------- DNS records, zone settings (typed SDK)

    def dns_records(self, zone_id: str, name: str, record_type: str) -> list[dict[str, Any]]:
        page = self._call(f"GET dns_records {name} {record_type}", lambda: self.sdk.dns.records.list(
            zone_id=zone_id, name={"exact": name}, type=record_type, per_page=100))  # type: ignore[arg-type]
        return [record.model_dump() for record in page.result]

    def dns_record(self, zone_id: str, record_id: str) -> dict[str, Any] | None:
        """One record by id: {name, content, proxied, ...}; None when the answer holds no record
        (the SDK's reading of an empty `result`; a missing record is a 404, NotFound)."""
        record = self._call(f"GET dns record {record_id}",
                            lambda: self.sdk.dns.records.get(record_id, zone_id=zone_id))
        return None if record is None else record.model_dump()

    def edit_dns_record(self, zone_id: str, record_id: str, *, name: str, content: str, proxied: bool,
                        what: str = "") -> None:
        """Point an A record at `content` ("Update DNS Record", a PATCH). ttl 1 = automatic, which a
        proxied record requires."""
        label = f"PATCH dns record {record_id}" + (f" ({what})" if what else "")
        self._call(label, lambda: self.sdk.dns.records.edit(record_id, zone_id=zone_id, name=name, type="A",
                                                            content=content, proxied=proxied, ttl=1))

    def zone_setting(self, zone_id: str, setting_id: str) -> Any:
        setting = self._call(f"GET zone setting {setting_id}",
                             lambda: self.sdk.zones.settings.get(setting_id, zone_id=zone_id))
        return None if setting is None else getattr(setting, "value", None)

    # ---------------------------------------------------------------- plain reads (doctor's probes)

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path` through the SDK (same auth, retries, errors); the envelope's `result`."""
        body = self._call(f"GET {path}", lambda: self.sdk.get(path, cast_to=object,
                                                               options={"params": params or {}}))
        if not isinstance(body, dict):
            raise ClientResponseError(f"Cloudflare API GET {path}: the answer is not Cloudflare's envelope")
        return body.get("result")

    def get_or_none(self, path: str) -> Any:
        """GET `path`; None when Cloudflare answers 404."""
        try:
            return self._get_unmapped(path)
        except ClientError as exc:
            if exc.status == 404:
                return None
            raise

    def _get_unmapped(self, path: str) -> Any:
        body = self._call(f"GET {path}", lambda: self.sdk.get(path, cast_to=object))
        return body.get("result") if isinstance(body, dict) else None

    def close(self) -> None:
        self.sdk.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
