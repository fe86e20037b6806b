"""Check every row; decide eligibility and contributions. Each error names row, column and rule."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from autoenroll.validation import rules
from autoenroll.validation.columns import EXCLUDED_TYPES, FIELDS, key, yes_no
from autoenroll.validation.parse import Parsed

EXCLUDED = {key(t): why for t, why in EXCLUDED_TYPES.items()}
YES_NO_FIELDS = tuple(f.name for f in FIELDS.values() if f.yes_no)


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    column: str  # as the file's header spells it
    rule: str
    message: str
    field_name: str = ""  # the field the column fed (the key of RowResult.values)


# A slotted class: a 100,000-row file holds 100,000 of these while it is checked.
@dataclass(slots=True)
class RowResult:
    row: int
    values: dict[str, str]
    errors: list[RowError] = field(default_factory=list)
    eligibility: str = "invalid"
    reason: str = ""
    dob: date | None = None
    gross: Decimal | None = None
    employee: Decimal | None = None
    employer: Decimal | None = None
    state: Decimal | None = None


@dataclass
class Tally:
    """The summary's counts, added up one row at a time, so a file can be summarised without keeping its rows."""

    rows: int = 0
    errors: int = 0
    rows_with_errors: int = 0
    eligibility: Counter[str] = field(default_factory=Counter)
    totals: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(("employee", "employer", "state"),
                                                                             Decimal(0)))

    def add(self, r: RowResult) -> None:
        self.rows += 1
        self.eligibility[r.eligibility] += 1
        if r.errors:
            self.errors += len(r.errors)
            self.rows_with_errors += 1
        elif r.eligibility == "automatic":
            totals = self.totals
            totals["employee"] += r.employee or 0
            totals["employer"] += r.employer or 0
            totals["state"] += r.state or 0


@dataclass
class Validation:
    """`results` is every row, unless `tally` is given: then (the worker's streamed check, see
    check_rows) it is only the rows with errors, which is all the reports read, and the tally counts all."""

    results: list[RowResult]
    warnings: list[str]
    encoding: str
    assessment_date: date
    sources: dict[str, str] = field(default_factory=dict)
    mapped: tuple[str, ...] = ()
    tally: Tally | None = None

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.results for e in r.errors]

    def summary(self) -> dict[str, Any]:
        tally = self.tally
        if tally is None:
            tally = Tally()
            for r in self.results:
                tally.add(r)
        return {"rows": tally.rows, "errors": tally.errors, "rows_with_errors": tally.rows_with_errors,
                "eligibility": {k: tally.eligibility.get(k, 0) for k in ("automatic", "may_opt_in", "excluded",
                                                                         "invalid")},
                "contributions_per_period": {k: str(v) for k, v in tally.totals.items()},
                "assessment_date": self.assessment_date.isoformat(),
                "scheme_rates": {k: str(v) for k, v in vars(rules.rates_for(self.assessment_date.year)).items()},
                "encoding": self.encoding, "warnings": self.warnings,
                # which header fed each field (None: not in the file, so the field's default), so a reviewer
                # can see that the pension flag was read
                "columns": {f: self.sources.get(f) for f in FIELDS}, "columns_mapped": list(self.mapped)}


# Payroll files repeat dates, amounts and pay frequencies from row to row: each distinct text is read once.
# The caches are bounded, so a file of all-distinct values costs what it did without them.
CACHE_SIZE = 16_384


@lru_cache(maxsize=CACHE_SIZE)
def parse_date(value: str) -> date | None:
    text = value.strip()
    if len(text) == 10 and text[4] == text[7] == "-" and text.replace("-", "").isascii() \
            and text.replace("-", "").isdigit():
        # YYYY-MM-DD, what most files hold: fromisoformat is ~20x faster than strptime (which stays the
        # reader of every other form, including this one's one-digit variants)
        try:
            return date.fromisoformat(text)
        except ValueError:
            return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


# employee_results keeps money as numeric(12, 2): anything from a cent's fraction to 10^10 overflows or
# rounds away there, so the bound is checked here, as a row error, before the database sees it.
MONEY_MAX = Decimal("9999999999.99")


def _money(value: str) -> Decimal | None:
    text = value.strip().replace("€", "").replace(",", "").replace(" ", "")
    if not text.isascii():  # Decimal() reads Arabic-Indic and fullwidth digits too
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _in_range(amount: Decimal) -> bool:
    return -MONEY_MAX <= amount <= MONEY_MAX


@lru_cache(maxsize=CACHE_SIZE)
def _gross(value: str) -> tuple[Decimal | None, str | None]:
    """The gross pay in cents, or None and the rule it breaks."""
    amount = _money(value)
    if amount is None:
        return None, "not_numeric"
    if amount < 0:
        return None, "negative"
    if not _in_range(amount):
        return None, "out_of_range"
    return amount.quantize(rules.CENT, ROUND_HALF_UP), None


@lru_cache(maxsize=CACHE_SIZE)
def _frequency(value: str) -> str:
    return value.strip().lower().replace(" ", "-")


_contributions = lru_cache(maxsize=CACHE_SIZE)(rules.contributions)
_GROSS_MESSAGES = {"not_numeric": "gross pay is not a number", "negative": "gross pay is negative",
                   "out_of_range": f"gross pay must be below EUR {MONEY_MAX + Decimal('0.01'):,}"}


def key_counts(rows: Iterable[dict[str, str]]) -> tuple[Counter[str], Counter[str]]:
    """How often each PPSN and each employee id occurs in the file: what the duplicate rules read."""
    ppsns: list[str] = []
    ids: list[str] = []
    for v in rows:  # one pass (the rows may be read as they are counted); Counter() then counts in C
        ppsns.append(v.get("ppsn", "").strip().upper())
        ids.append(v.get("employee_id", "").strip())
    return Counter(ppsns), Counter(ids)


def validate(parsed: Parsed, assessment_date: date) -> Validation:
    if len(parsed.numbers) != len(parsed.rows):
        raise ValueError("every parsed row needs its row number in the file")
    ppsns, ids = key_counts(parsed.rows)
    results = list(check_rows(zip(parsed.numbers, parsed.rows, strict=True), ppsns, ids, parsed.sources,
                              assessment_date))
    return Validation(results, parsed.warnings, parsed.encoding, assessment_date, parsed.sources, parsed.mapped)


def check_rows(rows: Iterable[tuple[int, dict[str, str]]], ppsns: Counter[str], ids: Counter[str],
               sources: dict[str, str], assessment_date: date) -> Iterator[RowResult]:
    """Each (row number, {field: cell}) checked, one at a time; `ppsns` and `ids` are key_counts of the whole file."""
    year = assessment_date.year
    flags = [f for f in YES_NO_FIELDS if f in sources]
    for number, v in rows:
        r = RowResult(row=number, values=v)
        errors = r.errors

        def fail(name: str, rule: str, message: str, errors: list[RowError] = errors, number: int = number) -> None:
            errors.append(RowError(number, sources.get(name, name), rule, message, name))

        for column in ("employee_id", "ppsn", "first_name", "last_name"):
            if not v.get(column, "").strip():
                fail(column, "required", f"{column} is empty")
        ppsn = v.get("ppsn", "").strip().upper()
        if ppsn:
            problem = rules.ppsn_problem(ppsn)
            if problem:
                fail("ppsn", "ppsn_format", problem)
            elif ppsns[ppsn] > 1:
                fail("ppsn", "duplicate", f"PPSN {ppsn} appears {ppsns[ppsn]} times in this file")
        employee_id = v.get("employee_id", "").strip()
        if employee_id and ids[employee_id] > 1:
            fail("employee_id", "duplicate", f"employee id {employee_id} appears {ids[employee_id]} times")
        dob = parse_date(v.get("date_of_birth", ""))
        if dob is None:
            fail("date_of_birth", "date_format", "not a date (use YYYY-MM-DD or DD/MM/YYYY)")
        elif dob > assessment_date:
            fail("date_of_birth", "date_in_future", "date of birth is in the future")
        elif not 14 <= (age := rules.age_on(dob, assessment_date)) <= 100:
            fail("date_of_birth", "age_range", f"gives an age of {age}, outside 14-100")
        start = parse_date(v.get("employment_start", ""))
        if start is None:
            fail("employment_start", "date_format", "not a date (use YYYY-MM-DD or DD/MM/YYYY)")
        elif start > assessment_date:
            fail("employment_start", "date_in_future", "employment start is in the future")
        gross, gross_rule = _gross(v.get("gross_pay", ""))
        if gross_rule is not None:
            fail("gross_pay", gross_rule, _GROSS_MESSAGES[gross_rule])
        frequency = _frequency(v.get("pay_frequency", ""))
        if frequency not in rules.PERIODS_PER_YEAR:
            fail("pay_frequency", "unknown_frequency",
                 f"unknown pay frequency {v.get('pay_frequency', '')!r}: use weekly, fortnightly, four-weekly or "
                 "monthly")
        thirteen = None
        if v.get("ytd_13_week_gross", "").strip():
            thirteen = _money(v["ytd_13_week_gross"])
            if thirteen is None or thirteen < 0:
                fail("ytd_13_week_gross", "not_numeric", "13-week gross is not a non-negative number")
            elif not _in_range(thirteen):
                fail("ytd_13_week_gross", "out_of_range",
                     f"13-week gross must be below EUR {MONEY_MAX + Decimal('0.01'):,}")
        answers: dict[str, bool | None] = {}
        for flag in flags:
            answers[flag] = yes_no(v.get(flag, ""))
            if answers[flag] is None:
                fail(flag, "not_yes_no", f"{sources[flag]!r} is {v.get(flag, '')[:40]!r}, not yes or no "
                                         "(use yes/no, y/n, true/false or 1/0)")
        if errors:
            yield r
            continue
        assert dob is not None and gross is not None
        r.dob, r.gross = dob, gross
        excluded = ((EXCLUDED.get(key(v["employment_type"])) if "employment_type" in v else None)
                    or ("company directors" if answers.get("director") else None)
                    or ("employees exempt from PRSI" if answers.get("prsi_exempt") else None))
        r.eligibility, r.reason = rules.eligibility(
            age=age, annual_earnings=rules.annualise(gross, frequency),
            thirteen_week_gross=thirteen, in_pension=bool(answers.get("in_pension")), excluded_category=excluded)
        if r.eligibility == "automatic":
            r.employee, r.employer, r.state = _contributions(gross, frequency, year)
        yield r
