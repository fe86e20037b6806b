"""The one error tree of `ops`.

Every failure an operator can act on is an `OpsError`; the CLI prints it as one red
line with a hint and exits with the class's documented code. Anything else is a bug
and exits 1 with a traceback only under `--verbose`.

    OpsError                      exit 1   (root; never raised bare)
    ├── ConfigError               exit 2   bad flag, bad config value, unknown environment
    ├── RefusedError              exit 3   a safety rail said no (production, newest backup, ...)
    ├── ConfirmationRequired      exit 4   destructive step needs --yes (or a prompt answer)
    ├── NotFoundError             exit 5   a backup, branch, state file or host that isn't there
    ├── LockHeldError             exit 6   someone else holds the lock for this operation
    ├── ExternalError             exit 7   a provider API, S3, PostgreSQL or a process failed
    │   └── ProviderAPIError      exit 7   an HTTP API answered an error (carries request id)
    ├── VerificationError         exit 8   a check ran and found something wrong
    └── SandboxError              exit 9   the local sandbox could not start or is unhealthy
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager


class OpsError(Exception):
    """Root of every error `ops` reports to a person."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(OpsError):
    """Invalid input: a flag, a config key (named by its path), an environment name."""

    exit_code = 2


class RefusedError(OpsError):
    """A safety rail refused the operation; no change was made."""

    exit_code = 3


class ConfirmationRequired(OpsError):
    """The operation is destructive and was not confirmed."""

    exit_code = 4


class NotFoundError(OpsError):
    """Something the operation needs does not exist."""

    exit_code = 5


class LockHeldError(OpsError):
    """Another run holds the lock for this operation."""

    exit_code = 6


class ExternalError(OpsError):
    """A dependency (process, database, object store, API) failed."""

    exit_code = 7


class ProviderAPIError(ExternalError):
    """An HTTP API answered with an error; carries the provider's request id."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        suffix = f" (HTTP {status}" if status is not None else ""
        if suffix and request_id:
            suffix += f", request id {request_id}"
        if suffix:
            suffix += ")"
        super().__init__(message + suffix, hint=hint)
        self.status = status
        self.request_id = request_id


class VerificationError(OpsError):
    """A check ran to completion and found a problem."""

    exit_code = 8


class SandboxError(OpsError):
    """The local sandbox could not be started, or a component is unhealthy."""

    exit_code = 9


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_code
    for cls in (
        OpsError,
        ConfigError,
        RefusedError,
        ConfirmationRequired,
        NotFoundError,
        LockHeldError,
        ExternalError,
        VerificationError,
        SandboxError,
    )
}


# Libraries whose exceptions mean "a dependency failed", even when one escaped its adapter's mapping.
DEPENDENCY_MODULES = frozenset({"botocore", "boto3", "s3transfer", "psycopg", "psycopg_pool", "httpx", "httpcore",
                                "sqlalchemy", "alembic"})


def is_dependency_error(exc: BaseException) -> bool:
    """An OpsError, or an exception raised by a dependency's client library (not by our own code)."""
    return isinstance(exc, OpsError) or type(exc).__module__.split(".")[0] in DEPENDENCY_MODULES


def describe(exc: BaseException) -> str:
    """One line about a dependency's exception: its first line of text, else its class; secrets masked."""
    from ops.secrets import scrub_text

    text = str(exc).strip()
    return scrub_text(text.splitlines()[0][:300]) if text else exc.__class__.__name__


@contextmanager
def map_exceptions(mapping: Mapping[type[BaseException], type[OpsError]], what: str, *,
                   hint: str | None = None) -> Iterator[None]:
    """At an adapter's boundary (as httpx maps its transport's errors): a dependency's exception of a
    class in `mapping` becomes that OpsError, "`what`: <first line>"; OpsErrors and others pass through."""
    try:
        yield
    except OpsError:
        raise
    except Exception as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                raise target(f"{what}: {describe(exc)}", hint=hint) from None
        raise
