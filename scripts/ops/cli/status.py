"""`ops status --env E [--json]`: one screen about an environment (Kamal's `kamal details`, and more)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ops import status as usecase
from ops.cli import lazy
from ops.cli.base import ENV_OPTION, JSON_OPTION
from ops.errors import VerificationError
from ops.output import print_json, progress, stdout, table

# The use cases, adapters and models behind these commands load on first use (ops/cli/lazy.py says why):
# `ops --help` and shell completion import this module and need none of them.
if TYPE_CHECKING:
    from ops import wiring
    from ops.wiring import resolve
else:
    wiring = lazy.module("ops.wiring")
    resolve = lazy.function("ops.wiring", "resolve")


def _line(name: str, part: dict[str, Any], text: str) -> None:
    if not part["answered"]:
        text = f"[red]not answered[/red]: {part['depends_on']} failed: {part['error']}"
    stdout.print(f"[bold]{name}[/bold]: {text}", highlight=False)


def _traffic(part: dict[str, Any]) -> str:
    if part.get("records") is None:
        return f"per {part.get('source')}, {part.get('note', '')}"
    where = ", ".join(f"{k} -> {v}" for k, v in part["records"].items())
    return f"{where}{' [red](SPLIT)[/red]' if part['split'] else ''} (per {part['source']})"


def _backups(part: dict[str, Any]) -> str:
    if part.get("verified") is None:
        return f"{part.get('count', 0)} complete, none verified"
    return (f"newest verified {part['verified']}, {part['age_hours']} h old (limit {part['limit_hours']:g} h); "
            f"{part['count']} complete")


def _locks(part: dict[str, Any]) -> str:
    held = part.get("held") or []
    return "; ".join(f"{h['name']} held by {h['owner']} ({h['purpose']}) since {h['acquired_at']}, expires "
                     f"{h['expires_at']}" for h in held) or "none held"


def _database(part: dict[str, Any]) -> str:
    record = part.get("record") or {}
    kind = f" ({record.get('kind')}{', since ' + record['since'] if record.get('since') else ''})" if record else ""
    said = part.get("answered") if part.get("up") else f"[red]DOWN[/red]: {part.get('error')}"
    return f"live {part.get('database')}{kind}: {said}" + (f"; note: {part['note']}" if part.get("note") else "")


def _reboot(host: dict[str, Any]) -> str:
    required = host.get("reboot_required")
    if required is None:
        return "unknown" if "reboot_required" in host else ""
    return f"pending ({', '.join(host['reboot_packages']) or 'flagged'})" if required else "no"


def _render(data: dict[str, Any]) -> None:
    hosts = data["hosts"]
    if hosts["answered"]:
        rows = hosts["hosts"]
        # The sandbox's hosts share one Caddy (the traffic line says where it sends): no column for it.
        caddy = any(h.get("caddy_upstreams") for h in rows)
        reboots = any("reboot_required" in h for h in rows)  # the sandbox's hosts never reboot: no column
        table(f"hosts of {data['environment']}",
              ["host", "role", "reachable", "version", "live slot", "app", *(["Caddy dials"] if caddy else []),
               "leftovers", *(["reboot"] if reboots else [])],
              [(h["host"], h["role"], "up" if h["reachable"] else "down", h.get("version", ""), h.get("slot", ""),
                ("ok" if h.get("ready") else h.get("not_ready", "")) if h["reachable"] else h.get("error", ""),
                *([", ".join(h.get("caddy_upstreams", []))] if caddy else []), ", ".join(h.get("leftovers", [])),
                *([_reboot(h)] if reboots else []))
               for h in rows])
    else:
        _line("hosts", hosts, "")
    _line("traffic", data["traffic"], _traffic(data["traffic"]) if data["traffic"]["answered"] else "")
    failover = data["failover"]
    _line("failover", failover, failover.get("summary", ""))
    _line("database", data["database"], _database(data["database"]) if data["database"]["answered"] else "")
    _line("backups", data["backups"], _backups(data["backups"]) if data["backups"]["answered"] else "")
    _line("locks", data["locks"], _locks(data["locks"]) if data["locks"]["answered"] else "")
    monitors = data["monitors"]
    _line("monitors", monitors, (", ".join(f"{k} {v}" for k, v in monitors["monitors"].items()) or "none")
          + f" (per {monitors['source']})" if monitors["answered"] else "")


def status(env_name: str = ENV_OPTION, as_json: bool = JSON_OPTION) -> None:
    """One overview: hosts (reachable, version, slots), traffic (every DNS record the switch moves),
    failover state and the live database, the newest verified backup and its age, locks, monitors.
    Each part answers even when another's dependency is down, naming it. Exit 0 when nothing needs
    attention, 8 when something does (listed last)."""
    env = resolve(env_name, live=False)  # which database is live is a part of its own (the object store may be down)
    data = usecase.overview(wiring.status_ports(env))
    if as_json:
        print_json(data)
    else:
        _render(data)
        for item in data["attention"]:
            progress(f"[yellow]needs attention:[/yellow] {item}")
    if data["attention"]:
        raise VerificationError(f"{env.name}: {len(data['attention'])} thing(s) need attention (listed above)",
                                hint="exit 8 means the overview found something; each line says what")
    if not as_json:
        progress(f"{env.name}: nothing needs attention")
