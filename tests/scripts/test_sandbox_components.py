"""The sandbox's components are small typed classes, one per file; the engine never switches on a name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ops.sandbox import components as c
from ops.sandbox.components.base import Component
from ops.sandbox.manager import _new_state
from ops.tcp_ports import port_is_free

pytestmark = pytest.mark.unit

SANDBOX = Path(c.__file__).resolve().parents[1]


def test_each_component_is_an_instance_of_its_own_class_in_its_own_file() -> None:
    modules: dict[str, set[str]] = {}
    for comp in (*c.COMPONENTS, c.DOCKER, c.REPLICA):
        assert isinstance(comp, Component), comp
        modules.setdefault(type(comp).__module__, set()).add(type(comp).__name__)
    # One class per file (the app's two roles are two instances of one class).
    assert all(len(classes) == 1 for classes in modules.values()), modules
    assert {m.rsplit(".", 1)[1] for m in modules} == {"postgres", "redis", "s3", "heartbeat", "app", "caddy", "docker",
                                                               "replica"}


def _name_switches(path: Path) -> list[str]:
    """`x.name == ...`, `x.name != ...`, `x.name.startswith(...)` and `x is DOCKER`: a branch on which component."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            left = node.left
            # `comp.name == name` is the lookup `ops sandbox logs NAME` needs, not a branch.
            lookup = all(isinstance(x, ast.Name) and x.id == "name" for x in node.comparators)
            if isinstance(left, ast.Attribute) and left.attr == "name" and isinstance(left.value, ast.Name) \
                    and left.value.id in ("comp", "component") and not lookup:
                found.append(f"{path.name}:{node.lineno}")
            if any(isinstance(op, ast.Is) for op in node.ops) and any(
                    isinstance(x, ast.Name) and x.id == "DOCKER" for x in node.comparators):
                found.append(f"{path.name}:{node.lineno}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("startswith", "removeprefix") and isinstance(node.func.value, ast.Attribute) \
                and node.func.value.attr == "name":
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_engine_never_switches_on_a_components_name() -> None:
    files = [SANDBOX / "manager.py", *sorted((SANDBOX / "components").glob("*.py"))]
    assert [hit for path in files for hit in _name_switches(path)] == []


def test_a_component_whose_ports_were_taken_gets_new_free_ones(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    for comp in (*c.COMPONENTS, c.DOCKER):
        before = comp.ports(state)
        c.reallocate_ports(state, comp)
        after = comp.ports(state)
        assert len(after) == len(before), comp.name
        if before:
            assert after != before and all(port_is_free(p) for p in after), comp.name
