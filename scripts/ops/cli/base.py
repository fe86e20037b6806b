"""`OpsTyper`: a Typer whose every command turns an OpsError into one red line and its exit code.

Doing this per command (rather than only in `main`) means a `CliRunner` test sees the
same exit codes and messages an operator does.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import typer

from clients.errors import ClientError
from ops.adapters.cloud.client_errors import to_ops_error
from ops.confirm import typed_confirmation  # noqa: F401  (re-exported: the policy lives in ops.confirm)
from ops.errors import ExternalError, OpsError, describe, is_dependency_error
from ops.output import stderr
from ops.secrets import scrub_text


def report_error(exc: OpsError) -> None:
    stderr.print(f"[red]error:[/red] {scrub_text(exc.message)}", highlight=False)
    if exc.hint:
        stderr.print(f"[dim]hint: {scrub_text(exc.hint)}[/dim]", highlight=False)


_interrupt_note: ContextVar[str | None] = ContextVar("interrupt_note", default=None)


def on_interrupt(note: str) -> None:
    """What a Ctrl-C during the rest of this command leaves behind, and how to resume, in a few words."""
    _interrupt_note.set(note)


def _interrupted(command: str) -> None:
    note = _interrupt_note.get() or ("journaled steps that finished are kept; "
                                     "run the same command again to resume from there")
    stderr.print(f"[yellow]interrupted:[/yellow] {command} stopped; {scrub_text(note)}", highlight=False)


def _guard(func: Callable[..., Any], command: Callable[[], str] = lambda: "ops") -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        token = _interrupt_note.set(None)
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except ClientError as exc:  # a client used without ops's mapping (clients.py): map it here, the same way
            mapped = to_ops_error(exc)
            report_error(mapped)
            raise typer.Exit(mapped.exit_code) from None
        except KeyboardInterrupt:
            _interrupted(command())
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if is_dependency_error(exc):  # an adapter missed it: still a dependency failure (exit 7), not a bug
                report_error(ExternalError(f"{exc.__class__.__name__}: {describe(exc)}"))
                raise typer.Exit(ExternalError.exit_code) from None
            # a bug: say so plainly; the traceback only on request
            stderr.print(f"[red]error:[/red] unexpected {exc.__class__.__name__}: {scrub_text(str(exc))}",
                         highlight=False)
            if os.environ.get("OPS_VERBOSE"):
                stderr.print(scrub_text(traceback.format_exc()), highlight=False)
            else:
                stderr.print("[dim]hint: run again with --verbose for the traceback[/dim]")
            raise typer.Exit(1) from None
        finally:
            _interrupt_note.reset(token)

    return wrapper


def run_guarded(func: Callable[[], Any]) -> Any:
    """Run `func` with the same error handling as a command (for Typer callbacks)."""
    return _guard(func)()


class OpsTyper(typer.Typer):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("no_args_is_help", True)
        kwargs.setdefault("pretty_exceptions_enable", False)
        kwargs.setdefault("add_completion", False)
        super().__init__(**kwargs)
        self.ops_path = "ops"  # how a person typed this sub-app, for messages ("ops backup")

    def add_typer(self, typer_instance: typer.Typer, **kwargs: Any) -> None:
        if isinstance(typer_instance, OpsTyper) and kwargs.get("name"):
            typer_instance.ops_path = f"{self.ops_path} {kwargs['name']}"
        super().add_typer(typer_instance, **kwargs)

    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            name = kwargs.get("name") or (args[0] if args else func.__name__.replace("_", "-"))
            register(_guard(func, lambda: f"{self.ops_path} {name}"))
            return func

        return decorator


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
ENV_OPTION = typer.Option("local", "--env", "-e", help="Environment: local, development, staging, production.")
