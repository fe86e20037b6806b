"""The app's errors: each carries the HTTP status it answers with, so handlers raise and one place
(`main`) turns any of them into a JSON body; no status is ever chosen by reading a message."""

from __future__ import annotations

from typing import Any, ClassVar


class AppError(Exception):
    """A request the app refuses; `field` names the part of the request that is wrong, when one is."""

    status: ClassVar[int] = 400

    def __init__(self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **({"field": self.field} if self.field else {}), **self.extra}


class BadRequest(AppError):
    status = 400


class Unauthorized(AppError):
    status = 401


class NotFound(AppError):
    status = 404


class Conflict(AppError):
    status = 409


class TooLarge(AppError):
    status = 413


class UnsupportedFile(AppError):
    status = 415


class Unreadable(AppError):
    """The file is of a kind we read, but this one can't be read (or is past a configured limit)."""

    status = 422


class TooManyRequests(AppError):
    status = 429


class NotReady(AppError):
    """The request is fine but the service can't store it now (an operator must act first); retry later."""

    status = 503
