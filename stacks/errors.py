"""The Pulumi program's error tree, and the one place the client layer's errors enter it.

A dynamic provider (stacks/providers/) calls the SaaS clients (`clients`), which raise
`clients.errors`; `pulumi up` shows what the provider raised, so the providers map those into
this tree at their boundary (`maps_client_errors` on each provider class), the most specific
class first, as ops does into its own (ops/adapters/cloud/client_errors.py). The stacks import
no `ops`: a failing `pulumi up` never shows an ops exception.

    StackError                root
    ├── StackConfigError      a credential (NEON_API_KEY, ...) or an override missing or malformed
    └── ProviderAPIFailure    a provider's API failed; carries the status and request id
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from clients.errors import ClientConfigError, ClientError, map_error, mapping_errors, status_suffix

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


class StackError(Exception):
    """Root of the errors the Pulumi program raises on purpose."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message + (f" (hint: {hint})" if hint else ""))
        self.message = message
        self.hint = hint


class StackConfigError(StackError):
    """Something the program needs from its environment is missing or malformed."""


class ProviderAPIFailure(StackError):
    """A provider's API (Neon, BetterStack, Stripe) failed; the status and request id when it answered."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message + status_suffix(status, request_id), hint=hint)
        self.status = status
        self.request_id = request_id


def _config(exc: ClientError) -> StackError:
    return StackConfigError(exc.detail, hint=exc.hint)


def _provider(exc: ClientError) -> StackError:
    return ProviderAPIFailure(exc.detail, status=exc.status, request_id=exc.request_id, hint=exc.hint)


MAPPING: dict[type[ClientError], Callable[[ClientError], StackError]] = {
    ClientError: _provider,
    ClientConfigError: _config,
}


def to_stack_error(exc: ClientError) -> StackError:
    """The StackError for `exc`: the entry for the nearest class in its MRO (the most specific)."""
    return map_error(exc, MAPPING)


def client_errors() -> AbstractContextManager[None]:
    return mapping_errors(to_stack_error)


def _wrap(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with client_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


PROVIDER_METHODS = ("check", "create", "read", "diff", "update", "delete")


def maps_client_errors(cls: C) -> C:
    """On a dynamic provider class: each of Pulumi's calls (create, read, ...) it defines raises StackErrors."""
    for name in PROVIDER_METHODS:
        if name in vars(cls):
            setattr(cls, name, _wrap(vars(cls)[name]))
    return cls
