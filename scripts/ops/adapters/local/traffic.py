"""The sandbox's TrafficSwitch: its Caddy stands in for Cloudflare's DNS records."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ops.sandbox.state import load_state, save_state
from ops.sandbox.traffic_caddy import CaddyUpstreams


class SandboxEdge:
    """TrafficSwitch: the sandbox's Caddy stands in for Cloudflare's DNS records."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def serving(self) -> str:
        return load_state(self.root).caddy.active_app

    def records(self) -> dict[str, str]:
        # One Caddy serves both names: they cannot split.
        role = self.serving()
        return {"app": role, "api": role}

    def move_to(self, role: str, on_edit: Callable[[dict[str, Any]], None] = lambda _e: None) -> str:
        state = load_state(self.root)
        target = f"127.0.0.1:{state.apps[role].port}"
        edit = {"record": "caddy", "name": "the sandbox's Caddy", "from": state.caddy.active_app, "to": role}
        on_edit({**edit, "state": "editing"})
        with CaddyUpstreams(state.caddy_admin_url()) as switch:
            switch.set_upstreams([target])
        state.caddy.active_app = role
        save_state(self.root, state)
        on_edit({**edit, "state": "edited"})
        return f"Caddy -> {role} ({target})"
