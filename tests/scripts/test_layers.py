"""The shape of `scripts/ops`, read from its own imports (ast, imports inside functions included):
no import circle; only ops.wiring compares an environment's kind, imports both local and cloud
adapters, and builds an adapter. tests/scripts/test_wiring.py holds the older comparison scan
this one extends."""

from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.environment import ENV_NAMES
from ops.paths import REPO_ROOT
from tests.scripts.test_wiring import kind_branches

pytestmark = pytest.mark.unit

SCRIPTS = REPO_ROOT / "scripts"
OPS = SCRIPTS / "ops"
WIRING = "ops.wiring"

# Adapters by side: the layering step files them in ops/adapters/local/ and ops/adapters/cloud/;
# the sandbox's Caddy switch and checklist answers are local adapters that live with the sandbox.
LOCAL_ADAPTERS = ("ops.adapters.local", "ops.sandbox.traffic_caddy", "ops.sandbox.checklist")
CLOUD_ADAPTERS = ("ops.adapters.cloud",)
# Adapters that serve both sides the same way (one S3 client for R2 and SeaweedFS, one heartbeat).
SHARED_ADAPTERS = ("ops.adapters.cloud.s3_store", "ops.adapters.cloud.heartbeat")
# The sandbox's own package starts its local stand-ins itself (it is the local side).
SANDBOX_PACKAGE = "ops.sandbox"


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_name(path: Path, root: Path = SCRIPTS) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ops_modules(root: Path = SCRIPTS) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "ops").rglob("*.py"))}


def imports(path: Path, known: set[str], root: Path = SCRIPTS) -> set[str]:
    """Every module `path` imports (at the top, inside functions, under TYPE_CHECKING): a
    `from package import name` counts as the submodule when `name` is one."""
    own = module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def import_graph(root: Path = SCRIPTS) -> dict[str, set[str]]:
    modules = ops_modules(root)
    known = set(modules)
    return {name: {m for m in imports(path, known, root) if m in known and m != name}
            for name, path in modules.items()}


def import_circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of the graph, as graphlib finds it ([] when there is none)."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


# --------------------------------------------------------------------------- (1) no import circle


def test_no_import_circle_among_the_ops_modules() -> None:
    circle = import_circle(import_graph())
    assert circle == [], "import circle: " + " -> ".join(circle)


def test_the_circle_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "__init__.py").write_text("")
    (tmp_path / "ops" / "a.py").write_text("from ops import b\n")
    (tmp_path / "ops" / "b.py").write_text("def f():\n    from ops.a import x\n    return x\n")
    assert set(import_circle(import_graph(tmp_path))) == {"ops.a", "ops.b"}
    (tmp_path / "ops" / "b.py").write_text("x = 1\n")
    assert import_circle(import_graph(tmp_path)) == []


# --------------------------------------------------------------------------- (2) kind comparisons

KIND_WORDS = {*ENV_NAMES, "sandbox", "cloud"}
# Identifiers that say a kind of environment (`is_local`, `_sandbox(env)`, `traffic_kind`), not a
# hostname's locality (`is_local_host`) or the sandbox's own command group.
KIND_NAME = re.compile(r"^_?(is_)?(local|sandbox|cloud)(_env(ironment)?)?$|traffic_kind$|^env_kind$")


def _identifier(node: ast.AST) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _names_a_kind(text: object) -> bool:
    return isinstance(text, str) and re.split(r"[\s:,(]", text.strip(), maxsplit=1)[0].lower() in KIND_WORDS


def kind_discriminations(path: Path) -> list[str]:
    """Beyond test_wiring's comparisons: a condition on an identifier that names a kind
    (`if is_sandbox(env)`, `env.traffic_kind`), any read of `traffic_kind` (a second
    discriminator beside the name), and an optional field standing in for the kind
    (`hook.endpoint_id or "sandbox: ..."`: a fallback literal that names a kind)."""
    tree = ast.parse(path.read_text())
    found = [f"{path.name}: {hit}" for hit in kind_branches(path)]
    for node in ast.walk(tree):
        conditions: list[ast.AST] = []
        if isinstance(node, ast.If | ast.IfExp | ast.While | ast.Assert):
            conditions.append(node.test)
        if isinstance(node, ast.BoolOp):
            conditions.extend(node.values)
        for condition in conditions:
            for part in ast.walk(condition):
                if isinstance(part, ast.Name | ast.Attribute | ast.Call) and KIND_NAME.search(_identifier(part)):
                    found.append(f"{path.name}:{node.lineno}: condition on {ast.unparse(part)}")
                    break
        if isinstance(node, ast.Attribute) and node.attr == "traffic_kind":
            found.append(f"{path.name}:{node.lineno}: reads {ast.unparse(node)}")
        fallbacks = node.values[1:] if isinstance(node, ast.BoolOp) else (
            [node.body, node.orelse] if isinstance(node, ast.IfExp) else [])
        for value in fallbacks:
            if isinstance(value, ast.Constant) and _names_a_kind(value.value):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)[:80]}")
    return sorted(set(found))


def test_no_module_outside_wiring_discriminates_on_the_environment_kind() -> None:
    offenders = [hit for name, path in ops_modules().items() if name != WIRING
                 for hit in kind_discriminations(path)]
    assert offenders == [], "choose in ops.wiring instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize("source", [
    'def f(env):\n    return 1 if is_sandbox(env) else 2\n',
    'def f(env):\n    return env.traffic_kind\n',
    'def f(hook):\n    return hook.endpoint_id or "sandbox: no account"\n',
    'def f(env):\n    if env.name == "local":\n        return 1\n',
])
def test_the_kind_scan_catches_each_shape(tmp_path: Path, source: str) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    assert kind_discriminations(bad) != []


def test_the_kind_scan_lets_a_hostname_check_pass(tmp_path: Path) -> None:
    fine = tmp_path / "fine.py"
    fine.write_text('def f(host):\n    if is_local_host(host):\n        return "local socket"\n    return host\n')
    assert kind_discriminations(fine) == []


# --------------------------------------------------------------------------- (3) both sides' adapters


def adapter_sides(graph: dict[str, set[str]]) -> dict[str, tuple[set[str], set[str]]]:
    """Each module's imported (local, cloud) adapters, an adapter's own module left out."""
    return {name: ({m for m in deps if _within(m, LOCAL_ADAPTERS) and m != name},
                   {m for m in deps if _within(m, CLOUD_ADAPTERS) and m != name})
            for name, deps in graph.items()}


def both_sides_offenders(graph: dict[str, set[str]]) -> list[str]:
    return [f"{name}: local {sorted(local)}, cloud {sorted(cloud)}"
            for name, (local, cloud) in sorted(adapter_sides(graph).items())
            if local and cloud and name != WIRING]


def test_only_wiring_imports_both_local_and_cloud_adapters() -> None:
    offenders = both_sides_offenders(import_graph())
    assert offenders == [], "ask ops.wiring for the port instead:\n" + "\n".join(offenders)


def test_the_sides_scan_names_a_module_that_imports_both() -> None:
    graph = {"ops.checks": {"ops.adapters.local.caddy", "ops.adapters.cloud.dns"},
             "ops.wiring": {"ops.adapters.local.caddy", "ops.adapters.cloud.dns"},
             "ops.deploy.usecase": {"ops.ports"}}
    assert [o.split(":")[0] for o in both_sides_offenders(graph)] == ["ops.checks"]


# --------------------------------------------------------------------------- (4) adapters built in wiring only


def _adapter_modules(modules: dict[str, Path]) -> dict[str, Path]:
    sides = (*LOCAL_ADAPTERS, *CLOUD_ADAPTERS, *SHARED_ADAPTERS)
    return {name: path for name, path in modules.items() if _within(name, sides)}


def adapter_classes(modules: dict[str, Path]) -> set[str]:
    """The public classes adapter modules define. Left out: errors (raising one builds no adapter)
    and the SaaS HTTP clients (`...Client`), which are the client layer below the adapters (leaving
    ops/adapters for scripts/clients/), not ports: `ops doctor` asks them whether a token works."""
    return {node.name for path in _adapter_modules(modules).values() for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
            and not node.name.endswith(("Error", "Exception", "Client"))}


def constructions(path: Path, classes: set[str], label: str) -> Iterator[str]:
    """`Adapter(...)` and `Adapter.from_...(...)` calls in `path`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr.startswith("from_"):
            func = func.value
        if _identifier(func) in classes:
            yield f"{label}:{node.lineno}: {ast.unparse(node)[:80]}"


def construction_offenders(modules: dict[str, Path]) -> list[str]:
    classes = adapter_classes(modules)
    adapters = _adapter_modules(modules)
    # An adapter may build its own parts (LocalHosts its Caddy client); the sandbox's own package
    # builds the local stand-ins it runs.
    return [hit for name, path in modules.items()
            if name != WIRING and name not in adapters and not _within(name, (SANDBOX_PACKAGE,))
            for hit in constructions(path, classes, name)]


def test_no_adapter_is_built_outside_wiring() -> None:
    offenders = construction_offenders(ops_modules())
    assert offenders == [], "ask ops.wiring for it instead:\n" + "\n".join(offenders)


def test_the_construction_scan_names_a_use_case_that_builds_one(tmp_path: Path) -> None:
    (tmp_path / "ops" / "adapters" / "cloud").mkdir(parents=True)
    (tmp_path / "ops" / "adapters" / "cloud" / "s3_store.py").write_text(
        "class S3ObjectStore:\n    pass\nclass StoreError(Exception):\n    pass\n")
    (tmp_path / "ops" / "usecase.py").write_text(
        "from ops.adapters.cloud.s3_store import S3ObjectStore, StoreError\n"
        "def f(env):\n    try:\n        return S3ObjectStore(env)\n"
        "    except StoreError:\n        raise StoreError('x')\n")
    (tmp_path / "ops" / "wiring.py").write_text("def g(env):\n    return S3ObjectStore.from_environ()\n")
    offenders = construction_offenders(ops_modules(tmp_path))
    assert len(offenders) == 1 and "ops.usecase:4: S3ObjectStore(env)" in offenders[0]
