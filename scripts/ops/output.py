"""How commands speak: tables for people, `--json` for machines, progress on stderr.

Machine output (JSON) goes to stdout alone, so `ops ... --json | jq` always parses;
progress lines and errors go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)

STATE_STYLES = {"up": "green", "ok": "green", "pass": "green", "down": "red", "fail": "red",
                "unhealthy": "yellow", "skip": "dim"}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    tbl = Table(title=title, title_justify="left")
    for column in columns:
        tbl.add_column(column)
    for row in rows:
        cells = []
        for value in row:
            text = "" if value is None else str(value)
            style = STATE_STYLES.get(text)
            cells.append(f"[{style}]{text}[/{style}]" if style else text)
        tbl.add_row(*cells)
    stdout.print(tbl)


def progress(message: str) -> None:
    stderr.print(f"[dim]·[/dim] {message}", highlight=False)
