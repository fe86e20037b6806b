"""`clients.errors` into `ops.errors`, once, at the adapter boundary (as httpx's `map_exceptions`).

The client layer has its own error tree (it serves the Pulumi program too); `ops` reports only
OpsErrors (one red line, a documented exit code). The ops-side clients (ops/adapters/cloud/clients.py)
and the CLI's guard map through here. The most specific class in MAPPING wins, whatever its order.
What callers tell apart today is kept: a missing credential is a ConfigError (exit 2); every
failed call is a ProviderAPIError (exit 7) carrying the status and request id (`get_or_none`'s 404,
doctor's findings read them).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from clients.errors import ClientConfigError, ClientError, map_error, mapping_errors
from ops.errors import ConfigError, OpsError, ProviderAPIError

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def _config(exc: ClientError) -> OpsError:
    return ConfigError(exc.detail, hint=exc.hint)


def _provider(exc: ClientError) -> OpsError:
    return ProviderAPIError(exc.detail, status=exc.status, request_id=exc.request_id, hint=exc.hint)


MAPPING: dict[type[ClientError], Callable[[ClientError], OpsError]] = {
    ClientError: _provider,
    ClientConfigError: _config,
}


def to_ops_error(exc: ClientError, mapping: dict[type[ClientError], Callable[[ClientError], OpsError]] = MAPPING
                 ) -> OpsError:
    """The OpsError for `exc`: the entry for the nearest class in its MRO (the most specific)."""
    return map_error(exc, mapping)


def client_errors() -> AbstractContextManager[None]:
    """Within: a ClientError leaves as its OpsError (the client's traceback dropped, as ops's other
    adapters do); everything else passes through."""
    return mapping_errors(to_ops_error)


def maps_client_errors(func: F) -> F:
    """`client_errors` around every call of `func`."""
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with client_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def mapped(cls: C) -> C:
    """Wrap every public method (and classmethod) `cls` has, inherited ones included, in `client_errors`.

    Applied to an ops-side subclass of a client: calls from ops see OpsErrors; the client's own
    calls go through its private methods (`_send`), so a client that catches its own errors
    (`get_or_none`'s 404) still sees `clients.errors`."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        raw = next((vars(k)[name] for k in cls.__mro__ if name in vars(k)), None)
        if isinstance(raw, classmethod):
            setattr(cls, name, classmethod(maps_client_errors(raw.__func__)))
        elif callable(raw) and not isinstance(raw, (staticmethod, type)):
            setattr(cls, name, maps_client_errors(raw))
    return cls
