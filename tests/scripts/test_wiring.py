"""One code path: only ops.wiring branches on the kind of environment, ports import no
adapter, and rollback means the last good version before the current one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ops.deploy.usecase import rollback_target
from ops.environment import ENV_NAMES
from ops.errors import NotFoundError
from ops.paths import REPO_ROOT

pytestmark = pytest.mark.unit

OPS = REPO_ROOT / "scripts" / "ops"
KIND_WORDS = {*ENV_NAMES, "sandbox", "cloud"}
# `is_production` is a safety rail (typed confirmation), not a choice of adapter.
ALLOWED = {("environment.py", "is_production")}


def _enclosing_function(tree: ast.AST, node: ast.AST) -> str:
    for candidate in ast.walk(tree):
        is_function = isinstance(candidate, ast.FunctionDef | ast.AsyncFunctionDef)
        if is_function and any(n is node for n in ast.walk(candidate)):
            return str(getattr(candidate, "name", ""))
    return ""


def kind_branches(path: Path) -> list[str]:
    """Comparisons of an environment's name or kind with a literal: `env.name == "local"`,
    `traffic_kind != "caddy"`, `env_name in ("staging", ...)`."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        literals = {s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)}
        literals |= {e.value for s in sides if isinstance(s, ast.Tuple | ast.Set | ast.List) for e in s.elts
                     if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        names = {ast.unparse(s) for s in sides if isinstance(s, ast.Attribute | ast.Name)}
        about_env = any(n.endswith((".name", "env_name", ".kind")) or n == "name" for n in names)
        about_traffic = any(n.endswith("traffic_kind") for n in names)
        if (about_env and literals & KIND_WORDS) or (about_traffic and literals):
            where = (path.name, _enclosing_function(tree, node))
            if where not in ALLOWED:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_but_the_wiring_branches_on_the_environment_kind() -> None:
    offenders = [hit for path in sorted(OPS.rglob("*.py")) if path.name != "wiring.py" for hit in kind_branches(path)]
    assert offenders == [], "branch in ops.wiring instead:\n" + "\n".join(offenders)


def test_the_scan_catches_a_branch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('def f(env):\n    if env.name != "local":\n        return 1\n'
                   '    return env.traffic_kind == "caddy"\n')
    bad.write_text(bad.read_text() + 'def g(env_name):\n    return env_name in ("staging", "production")\n')
    assert len(kind_branches(bad)) == 3


def test_ports_import_no_adapter() -> None:
    tree = ast.parse((OPS / "ports.py").read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(not m.startswith("ops.") for m in imported), imported


def entry(version: str, kind: str = "deploy", **extra: str) -> dict[str, str]:
    return {"version": version, "kind": kind, **extra}


def test_rollback_goes_to_the_last_good_version_and_never_bounces_back() -> None:
    history = [entry("v1", "found"), entry("v2"), entry("v3")]
    assert rollback_target(history) == ("v3", "v2")
    history.append(entry("v2", "rollback", **{"from": "v3"}))
    assert rollback_target(history) == ("v2", "v1")  # not v3, the version just left
    history.append(entry("v1", "rollback", **{"from": "v2"}))
    with pytest.raises(NotFoundError, match="no good version before v1"):
        rollback_target(history)


def test_a_version_that_failed_to_deploy_is_no_rollback_target() -> None:
    history = [entry("v1", "found"), entry("v2"), entry("v3", "failed"), entry("v4")]
    assert rollback_target(history) == ("v4", "v2")
