"""Names a CLI module binds when it is imported but loads on first use.

`ops --help` and shell completion import every CLI module to build the command tree; they need the
commands' options, not the use cases behind them. Binding `wiring`, `resolve` or an adapter through
these keeps boto3, the SaaS SDKs, psycopg, httpx and the pydantic models out of that import, while
the command bodies read as before (`wiring.objects(env)`, `resolve(name)`), and a test's
`monkeypatch.setattr(cli_module, "resolve", fake)` still replaces the module's name.

Hand-written rather than `importlib.util.LazyLoader`: before Python 3.12.3 that loader is not
thread-safe (a second thread can see a half-initialised module, CPython gh-114763), and commands
here start threads (lock leases, progress). `importlib.import_module` takes the import lock, so a
first use from any thread gets the whole module. Each module using these imports the real names
under `if TYPE_CHECKING:` too, so mypy checks every use against the real signatures and a scan of
the import graph that walks every import statement (issue 26's layer tests) still sees each edge.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


class LazyModule:
    """Stands for the module `name`: the first attribute read imports it (later reads find it in sys.modules)."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._lazy_name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name!r}>"


def module(name: str) -> Any:
    """`from a.b import c` as `c = module("a.b.c")`: attributes are read from the real module on each use."""
    return LazyModule(name)


def function(module_name: str, name: str) -> Callable[..., Any]:
    """`from module_name import name` for something called (a function, or a class only constructed):
    each call looks the name up on the real module, so a test's patch of that module's name is seen too."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module_name), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"{module_name}.{name}, imported on the first call."
    return call


def functions(module_name: str, *names: str) -> tuple[Callable[..., Any], ...]:
    """`from module_name import a, b` as `a, b = functions(module_name, "a", "b")`."""
    return tuple(function(module_name, name) for name in names)
