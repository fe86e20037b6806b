"""The domain's rules as pure functions: PPSN check letters, eligibility, contributions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

PPSN_RE = re.compile(r"^([0-9]{7})([A-W])([A-Z]?)$")  # ASCII digits only: \d also matches ٣ and ３
PERIODS_PER_YEAR = {"weekly": 52, "fortnightly": 26, "four-weekly": 13, "monthly": 12}
EARNINGS_THRESHOLD = Decimal(20000)
THIRTEEN_WEEK_THRESHOLD = Decimal(5000)
EARNINGS_CAP = Decimal(80000)
AUTO_AGES = (23, 60)
OPT_IN_AGES = (18, 66)
CENT = Decimal("0.01")


def check_letter(digits: str, second: str = "") -> str:
    """PPSN check letter: digits x 8..2, plus the second letter's position x 9 (W = 0), mod 23; 0 = W."""
    b = digits.encode("ascii")
    if len(b) != 7 or not b.isdigit():
        raise ValueError("a PPSN has seven ASCII digits")
    # unrolled over the bytes (48 is b"0", and the weights 8..2 sum to 35): this runs for every row of every file
    total = b[0] * 8 + b[1] * 7 + b[2] * 6 + b[3] * 5 + b[4] * 4 + b[5] * 3 + b[6] * 2 - 48 * 35
    if second:
        total += (0 if second == "W" else ord(second) - 64) * 9
    remainder = total % 23
    return "W" if remainder == 0 else chr(64 + remainder)


def ppsn_problem(value: str) -> str | None:
    """None if `value` is a valid PPSN, else what is wrong with it."""
    # isascii first: str.upper() maps some non-ASCII letters (the dotless ı) onto ASCII ones.
    match = PPSN_RE.fullmatch(value.strip().upper()) if value.isascii() else None
    if not match:
        return "must be seven digits, a check letter and an optional second letter (e.g. 1234567T or 1234567FA)"
    digits, letter, second = match.groups()
    expected = check_letter(digits, second)
    if letter != expected:
        return f"check letter should be {expected}, not {letter}"
    return None


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@dataclass(frozen=True)
class Rates:
    employee: Decimal
    employer: Decimal
    state: Decimal


def rates_for(year: int) -> Rates:
    """The contribution schedule by calendar year (scheme years 1-3, 4-6, 7-9, 10+)."""
    if year <= 2028:
        return Rates(Decimal("1.5"), Decimal("1.5"), Decimal("0.5"))
    if year <= 2031:
        return Rates(Decimal("3.0"), Decimal("3.0"), Decimal("1.0"))
    if year <= 2034:
        return Rates(Decimal("4.5"), Decimal("4.5"), Decimal("1.5"))
    return Rates(Decimal("6.0"), Decimal("6.0"), Decimal("2.0"))


def annualise(gross: Decimal, frequency: str) -> Decimal:
    return gross * PERIODS_PER_YEAR[frequency]


def eligibility(*, age: int, annual_earnings: Decimal, thirteen_week_gross: Decimal | None, in_pension: bool,
                excluded_category: str | None) -> tuple[str, str]:
    """('automatic' | 'may_opt_in' | 'excluded', the reason in words)."""
    if excluded_category:
        return "excluded", f"{excluded_category} are not automatically enrolled"
    if in_pension:
        return "excluded", "already contributing to a pension through payroll"
    meets = annual_earnings >= EARNINGS_THRESHOLD or (
        thirteen_week_gross is not None and thirteen_week_gross >= THIRTEEN_WEEK_THRESHOLD)
    if AUTO_AGES[0] <= age <= AUTO_AGES[1] and meets:
        return "automatic", "aged 23-60 and earning at least EUR 20,000 a year"
    if OPT_IN_AGES[0] <= age <= OPT_IN_AGES[1]:
        why = "below the earnings threshold" if not meets else f"aged {age}, outside 23-60"
        return "may_opt_in", why
    return "excluded", f"aged {age}, outside 18-66"


def contributions(gross: Decimal, frequency: str, year: int) -> tuple[Decimal, Decimal, Decimal]:
    """Per pay period: employee, employer, State, on earnings capped at EUR 80,000 a year."""
    capped = min(gross, EARNINGS_CAP / PERIODS_PER_YEAR[frequency])
    r = rates_for(year)
    return tuple((capped * rate / 100).quantize(CENT, ROUND_HALF_UP) for rate in (r.employee, r.employer, r.state))  # type: ignore[return-value]
