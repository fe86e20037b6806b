"""The client layer's own error tree: every SaaS client in `clients` raises only these.

The clients serve two programs with two error trees (`ops`'s OpsError, the Pulumi program's
StackError), so they can raise neither: each program maps this tree into its own at its
boundary (ops/adapters/cloud/client_errors.py, stacks/errors.py), the most specific class first.
The classes mirror what callers tell apart today: a missing credential, an answer that never
came, a request that may have been carried out, and the HTTP status of an error answer.

    ClientError                     root; carries status and request id when the provider answered
    ├── ClientConfigError           a credential or a base-URL override missing or malformed
    ├── ClientConnectError          no answer: connection refused, timeouts, gave up retrying
    │   └── OutcomeUnknown          a non-idempotent request lost its answer: it may have been carried out
    ├── ClientResponseError         an answer that is not what the API documents (not JSON)
    ├── OperationFailed             a provider's asynchronous operation failed or never finished
    └── ClientHTTPError             an error status (4xx, 5xx)
        ├── AuthError               401, 403
        ├── NotFound                404
        ├── Conflict                409, 423 (Neon's Locked)
        ├── RateLimited             429
        └── ServerError             5xx
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar


class ClientError(Exception):
    """Root of every error a SaaS client raises."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None,
                 hint: str | None = None) -> None:
        self.detail = message  # without the status suffix: a mapping re-adds it in its own class
        self.status = status
        self.request_id = request_id
        self.hint = hint
        super().__init__(message + status_suffix(status, request_id))

    @property
    def message(self) -> str:
        return str(self)


def status_suffix(status: int | None, request_id: str | None) -> str:
    """` (HTTP 503, request id req-1)`: how every tree in the repository names an answer."""
    if status is None:
        return ""
    return f" (HTTP {status}" + (f", request id {request_id}" if request_id else "") + ")"


class ClientConfigError(ClientError):
    """A credential or a base-URL override is missing or malformed (nothing was sent)."""


class ClientConnectError(ClientError):
    """The provider never answered: refused connection, timeout, retries exhausted."""


class OutcomeUnknown(ClientConnectError):
    """A POST/PATCH without an idempotency key lost its answer: it may have been carried out."""


class ClientResponseError(ClientError):
    """The provider answered something the API does not document (a proxy's HTML page)."""


class OperationFailed(ClientError):
    """A provider's asynchronous operation (Neon's `operations`) failed or did not finish in time."""


class ClientHTTPError(ClientError):
    """The provider answered an error status."""

    status: int

    def __init__(self, message: str, *, status: int, request_id: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, status=status, request_id=request_id, hint=hint)


class AuthError(ClientHTTPError):
    """401/403: the token is wrong, expired or lacks a permission."""


class NotFound(ClientHTTPError):
    """404: the resource is not there (a read of a gone resource, a delete already done)."""


class Conflict(ClientHTTPError):
    """409, or 423 (Neon: conflicting work in progress)."""


class RateLimited(ClientHTTPError):
    """429 after the retries."""


class ServerError(ClientHTTPError):
    """5xx after the retries."""


def http_error(message: str, status: int, request_id: str | None = None) -> ClientHTTPError:
    """The ClientHTTPError subclass for `status`."""
    cls: type[ClientHTTPError]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    elif status in (409, 423):
        cls = Conflict
    elif status == 429:
        cls = RateLimited
    elif status >= 500:
        cls = ServerError
    else:
        cls = ClientHTTPError
    return cls(message, status=status, request_id=request_id)


E = TypeVar("E", bound=Exception)


def map_error(exc: ClientError, mapping: Mapping[type[ClientError], Callable[[ClientError], E]]) -> E:
    """The program's own error for `exc`: the entry for the nearest class in its MRO (the most
    specific wins, whatever the mapping's order), as httpx's `map_exceptions`. Each program that
    calls the clients (ops, the Pulumi program) keeps its own mapping and maps once, here."""
    for cls in type(exc).__mro__:
        if cls in mapping:
            return mapping[cls](exc)
    raise TypeError(f"no mapping for {type(exc).__name__}")  # unreachable while ClientError is mapped


@contextmanager
def mapping_errors(convert: Callable[[ClientError], Exception]) -> Iterator[None]:
    """Within: a ClientError leaves as `convert(exc)` (the client's traceback dropped); everything
    else passes through."""
    try:
        yield
    except ClientError as exc:
        raise convert(exc) from None
