"""GitHub Actions workflows are clean under actionlint, and it does catch mistakes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ops.paths import REPO_ROOT, venv_binary

pytestmark = pytest.mark.unit
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_exist() -> None:
    names = {w.name for w in WORKFLOWS}
    assert {"backup-nightly.yml", "backup-verify-weekly.yml", "refresh-staging.yml",
            "refresh-development-weekly.yml"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow: Path) -> None:
    out = subprocess.run([venv_binary("actionlint"), str(workflow)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ secrets }}\n"
                   "      - uses: actions/checkout@v4\n        with: 3\n")
    out = subprocess.run([venv_binary("actionlint"), str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0
