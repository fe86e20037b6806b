"""The client layer's place in the import graph: `clients` imports no `ops` and no `stacks` (and of the
app only its shared names, autoenroll.contract); `stacks` imports no `ops`. Every import counts:
module-level, inside functions, and `__import__`/`importlib.import_module` with a literal name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT

pytestmark = pytest.mark.unit

CLIENTS = REPO_ROOT / "scripts" / "clients"
STACKS = REPO_ROOT / "stacks"
# The app's module every layer may import: the names they share (roles, database, buckets, branches).
SHARED = "autoenroll.contract"


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import in `path`, wherever it is in the file.
    `from a import b` yields `a.b` too, so `from autoenroll import config` is seen as autoenroll.config."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            called = ast.unparse(node.func)
            if called in ("__import__", "importlib.import_module", "import_module"):
                found.append((node.lineno, node.args[0].value))
    return found


def forbidden(root: Path, banned: tuple[str, ...], allowed: tuple[str, ...] = ()) -> list[str]:
    """Imports under `root` of a module in (or under) `banned`, except those in (or under) `allowed`."""
    def within(module: str, packages: tuple[str, ...]) -> bool:
        return any(module == p or module.startswith(p + ".") for p in packages)

    hits = []
    for path in sorted(root.rglob("*.py")):
        for line, module in imported_modules(path):
            if within(module, banned) and not within(module, allowed):
                hits.append(f"{path.relative_to(root.parent)}:{line}: {module}")
    return hits


def test_the_client_layer_imports_no_ops_no_stacks_and_of_the_app_only_its_contract() -> None:
    assert list(CLIENTS.rglob("*.py")), "scripts/clients is where the SaaS clients live"
    hits = forbidden(CLIENTS, ("ops", "stacks", "autoenroll"), allowed=(SHARED,))
    assert hits == [], "the client layer is below ops and stacks:\n" + "\n".join(hits)


def test_the_pulumi_program_imports_no_ops() -> None:
    hits = forbidden(STACKS, ("ops",))
    assert hits == [], "stacks import clients and autoenroll, never ops:\n" + "\n".join(hits)


def test_the_scan_sees_imports_wherever_they_are(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import ops.errors as e\n"
        "from stacks import config\n"
        "def later():\n"
        "    from ops.adapters import ssh_hosts\n"
        "    return __import__('ops.wiring')\n"
        "def lazily():\n"
        "    import importlib\n"
        "    return importlib.import_module('autoenroll.db')\n"
        "from autoenroll.contract import BRANCH_OF_ENV\n"
        "from autoenroll import contract\n"
        "from . import sibling\n")
    hits = [h.rsplit(": ", 1)[1] for h in forbidden(tmp_path, ("ops", "stacks", "autoenroll"), allowed=(SHARED,))]
    assert hits == ["ops.errors", "stacks.config", "ops.adapters.ssh_hosts", "ops.wiring", "autoenroll.db"]


def test_the_scan_is_not_vacuous_on_the_tree_as_it_was(tmp_path: Path) -> None:
    """The Pulumi program's imports before the client layer existed: the scan finds each."""
    (tmp_path / "storage.py").write_text("from ops.naming import BUCKET_ROLES, bucket_name\n")
    (tmp_path / "neon.py").write_text("from ops.adapters.neon_api import NeonClient\n")
    assert {h.split(":")[0] for h in forbidden(tmp_path, ("ops",))} == {f"{tmp_path.name}/storage.py",
                                                                         f"{tmp_path.name}/neon.py"}
