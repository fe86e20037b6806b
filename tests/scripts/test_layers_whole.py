"""The whole house's import graph: the app, the client layer, the Pulumi program and `ops`, every
import counted (module level, inside functions, under TYPE_CHECKING, `import_module("...")`).

Two rules: the module graph has no circle, and each layer imports only itself and the layers below
it, lowest first: the app (autoenroll), the SaaS clients (clients), the Pulumi program (stacks),
the toolkit (ops). Stricter rules inside a layer live beside this file (test_layers.py for ops,
test_layers_clients.py for what the clients may take from the app)."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT
from tests.scripts.test_layers_clients import imported_modules

pytestmark = pytest.mark.unit

# (package, folder that is the package), lowest layer first.
LAYERS = (("autoenroll", REPO_ROOT / "app" / "autoenroll"),
          ("clients", REPO_ROOT / "scripts" / "clients"),
          ("stacks", REPO_ROOT / "stacks"),
          ("ops", REPO_ROOT / "scripts" / "ops"))


def modules(layers: tuple[tuple[str, Path], ...] = LAYERS) -> dict[str, Path]:
    """Dotted module name -> file, for every .py of every layer (a package is its __init__)."""
    found = {}
    for package, folder in layers:
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the known modules it imports. `from a import b` names a.b, which is a module or,
    when it is a name inside a, resolves to a: the longest known prefix wins."""
    def resolve(name: str) -> str | None:
        parts = name.split(".")
        while parts:
            if ".".join(parts) in known:
                return ".".join(parts)
            parts.pop()
        return None

    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = {resolve(imported) for _line, imported in imported_modules(path)}
        # A package's __init__ is imported by each of its modules' imports: not an edge worth a circle.
        edges[name] = {t for t in targets if t and t != name and not name.startswith(t + ".")}
    return edges


def circle(edges: dict[str, set[str]]) -> list[str]:
    try:
        tuple(TopologicalSorter(edges).static_order())
    except CycleError as exc:
        return list(exc.args[1])
    return []


def upward(edges: dict[str, set[str]], layers: tuple[tuple[str, Path], ...] = LAYERS) -> list[str]:
    rank = {package: i for i, (package, _folder) in enumerate(layers)}
    return sorted(f"{source} -> {target}" for source, targets in edges.items() for target in targets
                  if rank[target.split(".")[0]] > rank[source.split(".")[0]])


def test_the_whole_graph_has_no_circle() -> None:
    found = circle(graph(modules()))
    assert found == [], "import circle: " + " -> ".join(found)


def test_each_layer_imports_only_itself_and_the_layers_below() -> None:
    found = upward(graph(modules()))
    assert found == [], "imports from a lower layer up into a higher one:\n" + "\n".join(found)


def test_the_scans_see_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """Not vacuous: the app reaching into ops inside a function, and ops back into the app, is
    both a circle and an upward import (the shape ops.naming once had with the stacks)."""
    app, ops = tmp_path / "autoenroll", tmp_path / "ops"
    app.mkdir()
    ops.mkdir()
    (app / "contract.py").write_text("def f():\n    from ops.wiring import resolve\n    return resolve\n")
    (ops / "wiring.py").write_text("from autoenroll.contract import f\n\ndef resolve():\n    return f\n")
    layers = (("autoenroll", app), ("ops", ops))
    edges = graph(modules(layers))
    assert set(circle(edges)) == {"autoenroll.contract", "ops.wiring"}
    assert upward(edges, layers) == ["autoenroll.contract -> ops.wiring"]
