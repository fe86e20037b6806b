"""`OpsTyper`: a Typer whose every command turns an OpsError into one red line and its exit code.

Doing this per command (rather than only in `main`) means a `CliRunner` test sees the
same exit codes and messages an operator does.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from typing import Any

import typer

from ops.errors import OpsError
from ops.output import stderr
from ops.secrets import scrub_text


def report_error(exc: OpsError) -> None:
    stderr.print(f"[red]error:[/red] {scrub_text(exc.message)}", highlight=False)
    if exc.hint:
        stderr.print(f"[dim]hint: {scrub_text(exc.hint)}[/dim]", highlight=False)


def _guard(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OpsError as exc:
            report_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug: say so plainly; the traceback only on request
            stderr.print(f"[red]error:[/red] unexpected {exc.__class__.__name__}: {scrub_text(str(exc))}",
                         highlight=False)
            if os.environ.get("OPS_VERBOSE"):
                stderr.print(scrub_text(traceback.format_exc()), highlight=False)
            else:
                stderr.print("[dim]hint: run again with --verbose for the traceback[/dim]")
            raise typer.Exit(1) from None

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

    def command(  # type: ignore[override]
        self, *args: Any, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            register(_guard(func))
            return func

        return decorator


JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")
ENV_OPTION = typer.Option("local", "--env", "-e", help="Environment: local, development, staging, production.")
