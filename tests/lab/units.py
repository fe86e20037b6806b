"""A systemd unit's command lines as systemd would run them: the vendor unit, then each drop-in in
order, where an empty assignment (`ExecStop=`) clears the lines before it (systemd.unit(5),
"drop-in"; systemd.service(5), "ExecStart="). The lab hosts have no systemd of their own (they are
network namespaces on this machine), so a test that restarts a service runs these lines itself.

Hand-written: configparser cannot read a unit (repeated keys, empty resets), and systemd's own
`systemd-analyze`/`systemctl cat` need a running systemd, which this machine does not have."""

from __future__ import annotations

import shlex

# systemd.service(5): a command line may start with these special characters.
EXEC_PREFIXES = "-@:+!"


def exec_lines(unit: str, drop_ins: list[str], key: str) -> list[list[str]]:
    """The argv lists of `key` (e.g. ExecStop) after the drop-ins, as systemd would run them."""
    lines: list[str] = []
    for text in (unit, *drop_ins):
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and line.partition("=")[0].strip() == key:
                value = line.partition("=")[2].strip()
                lines = [] if not value else [*lines, value]
    return [shlex.split(line.lstrip(EXEC_PREFIXES)) for line in lines]
