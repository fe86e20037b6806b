"""Dynamic providers that carry their own code, so `pulumi refresh`/`destroy` work from anywhere.

Pulumi stores a dynamic provider in state as a dill pickle, and dill pickles a class from an
importable module *by reference* (`stacks.providers.neon.NeonProjectProvider`). Those modules
(and the API clients of `clients` they call) exist only in this checkout: from another path, a wheel
install or CI, unpickling fails. A `Portable` provider pickles instead as a call to `eval` with
the source of every first-party module it needs (found by following its `clients.`/`stacks.`
imports), so unpickling needs only what the Pulumi program's own environment has: the standard
library, `pulumi`, `dill` and `httpx`.
"""

from __future__ import annotations

import ast
import inspect
import sys
from typing import Any

FIRST_PARTY = ("clients", "stacks")

# Runs where the provider is unpickled: define each bundled module (already imported ones are
# reused, so a checkout that has the code uses its own), then make the provider.
_LOADER = '''
import sys, types

def rebuild(sources, module, qualname):
    for name, source in sources:
        if name in sys.modules:
            continue
        parts = name.split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth])
            if parent not in sys.modules:
                package = types.ModuleType(parent)
                package.__path__ = []
                sys.modules[parent] = package
        mod = types.ModuleType(name)
        mod.__file__ = "<bundled " + name + ">"
        sys.modules[name] = mod
        exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    target = sys.modules[module]
    for part in qualname.split("."):
        target = getattr(target, part)
    return target()
'''
_EXPRESSION = ("(lambda ns: (exec(ns['loader'], ns), ns['rebuild'](ns['sources'], ns['module'], ns['qualname']))[1])"
               "(dict(loader=loader, sources=sources, module=module, qualname=qualname))")


def _first_party_imports(module_name: str) -> list[str]:
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return [n for n in names if n.split(".")[0] in FIRST_PARTY]


def bundle(module_name: str) -> tuple[tuple[str, str], ...]:
    """`module_name` and every first-party module it imports, dependencies first, as (name, source)."""
    ordered: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in ordered or name in trail:
            return
        __import__(name)
        for dependency in _first_party_imports(name):
            visit(dependency, (*trail, name))
        ordered.append(name)

    visit(module_name, ())
    return tuple((name, inspect.getsource(sys.modules[name])) for name in ordered)


class Portable:
    """Mix into a `ResourceProvider` (with no constructor arguments) to pickle it by value."""

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        cls = type(self)
        return eval, (_EXPRESSION, {"loader": _LOADER, "sources": bundle(cls.__module__), "module": cls.__module__,
                                    "qualname": cls.__qualname__})
