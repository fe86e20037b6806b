"""The PPSN check-letter rule from DOMAIN.md, written independently of the app for tests."""

from __future__ import annotations

import re


def check_letter(digits: str, second: str = "") -> str:
    total = sum(int(d) * w for d, w in zip(digits, range(8, 1, -1), strict=True))
    if second:
        total += (0 if second == "W" else ord(second) - 64) * 9
    remainder = total % 23
    return "W" if remainder == 0 else chr(64 + remainder)


def is_valid(ppsn: str) -> bool:
    match = re.fullmatch(r"(\d{7})([A-W])([A-Z]?)", ppsn.upper())
    return bool(match) and check_letter(match[1], match[3]) == match[2]  # type: ignore[index]
