"""The sandbox's LogSource (ops.logs): its components' log files (the hosts' is
ops.adapters.cloud.ssh_hosts.SshLogs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ops.errors import ConfigError, ExternalError


class SandboxLogs:
    """The sandbox's stand-in: its components' log files (`ops sandbox logs`' files), read with `tail`.
    The app's per host; Caddy's one (the sandbox has one Caddy); no deploy script (its deploys run in ops)."""

    applies_since = False

    def __init__(self, root: Any, app_hosts: Sequence[str]) -> None:
        self.root, self.app_hosts = root, list(app_hosts)

    def names(self, unit: str) -> list[str]:
        if unit == "deploy":
            raise ConfigError("--unit deploy: the sandbox has no deploy script (its deploys run inside ops and "
                              "print their steps)", hint="on the hosts (staging, production) it is the deploy "
                                                         "script's journal")
        return ["caddy"] if unit == "caddy" else self.app_hosts

    def argv(self, name: str, unit: str, lines: int, since: int | None, follow: bool) -> list[str]:
        path = self.root / "logs" / f"{name}.log"
        return ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]

    def failure(self, name: str, returncode: int, detail: str) -> ExternalError:
        return ExternalError(f"sandbox log of {name}: {detail} (exit {returncode})",
                             hint="is the sandbox up? ops sandbox status")
