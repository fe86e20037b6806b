"""Dated data files the program relies on (Cloudflare's IP ranges, ...), loaded in one place."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"


@cache
def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / f"{name}.json").read_text())
    return data


def cloudflare_ranges() -> tuple[str, ...]:
    """Cloudflare's published edge ranges, IPv4 then IPv6."""
    data = load("cloudflare_ips")
    return (*data["ipv4"], *data["ipv6"])


def checked_on(name: str) -> date:
    return date.fromisoformat(str(load(name)["checked"]))
