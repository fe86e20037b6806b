"""Start Caddy as Debian's `caddy.service` with the host role's drop-in would: the unit's own
ExecStart (read from the installed package's unit file, the Caddyfile path swapped for the lab's)
with the environment systemd would give it, read afresh at each start from the drop-in's
Environment= and EnvironmentFile= lines (stacks.host_role.caddy_environment).

Why a process of its own: the lab hosts share this machine's init, which must not load our units,
so the lab's restart loop (tests/lab/host.py) runs this at every start, as systemd re-reads a
unit's environment files at every start: a restart then dials what the files say now.

Usage: python -m tests.lab.caddy_unit DROP_IN CADDYFILE
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from stacks.host_role import caddy_environment

DEBIAN_UNIT = Path("/lib/systemd/system/caddy.service")
UNIT_CADDYFILE = "/etc/caddy/Caddyfile"


def unit_argv(caddyfile: str, unit: Path = DEBIAN_UNIT) -> list[str]:
    """The package's ExecStart, with the lab's Caddyfile where the unit names /etc/caddy/Caddyfile."""
    if not unit.exists():
        raise SystemExit(f"caddy_unit: {unit} is missing: bin/setup installs Debian's caddy package")
    lines = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    if len(lines) != 1:
        raise SystemExit(f"caddy_unit: {unit}: expected one ExecStart= line, found {len(lines)}")
    argv = shlex.split(lines[0].removeprefix("ExecStart="))
    if UNIT_CADDYFILE not in argv:
        raise SystemExit(f"caddy_unit: {unit}: ExecStart does not name {UNIT_CADDYFILE}: {lines[0]}")
    return [caddyfile if arg == UNIT_CADDYFILE else arg for arg in argv]


def main(args: list[str]) -> None:
    if len(args) != 2:
        raise SystemExit(__doc__)
    drop_in, caddyfile = args
    env = {**os.environ, **caddy_environment(Path(drop_in).read_text())}
    argv = unit_argv(caddyfile)
    os.execve(argv[0], argv, env)  # noqa: S606 - replaced by Caddy, as systemd execs ExecStart


if __name__ == "__main__":
    main(sys.argv[1:])
