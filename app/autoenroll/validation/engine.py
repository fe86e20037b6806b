"""Check every row; decide eligibility and contributions. Each error names row, column and rule."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from autoenroll.validation import rules
from autoenroll.validation.columns import EXCLUDED_TYPES, FIELDS, key, yes_no
from autoenroll.validation.parse import Parsed

EXCLUDED = {key(t): why for t, why in EXCLUDED_TYPES.items()}
YES_NO_FIELDS = tuple(f.name for f in FIELDS.values() if f.yes_no)


@dataclass(frozen=True)
class RowError:
    row: int
    column: str  # as the file's header spells it
    rule: str
    message: str
    field_name: str = ""  # the field the column fed (the key of RowResult.values)


@dataclass
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
class Validation:
    results: list[RowResult]
    warnings: list[str]
    encoding: str
    assessment_date: date
    sources: dict[str, str] = field(default_factory=dict)
    mapped: tuple[str, ...] = ()

    @property
    def errors(self) -> list[RowError]:
        return [e for r in self.results for e in r.errors]

    def summary(self) -> dict[str, Any]:
        counts = Counter(r.eligibility for r in self.results)
        automatic = [r for r in self.results if r.eligibility == "automatic"]
        total = {k: str(sum((getattr(r, k) or Decimal(0) for r in automatic), Decimal(0)))
                 for k in ("employee", "employer", "state")}
        return {"rows": len(self.results), "errors": len(self.errors),
                "rows_with_errors": sum(1 for r in self.results if r.errors),
                "eligibility": {k: counts.get(k, 0) for k in ("automatic", "may_opt_in", "excluded", "invalid")},
                "contributions_per_period": total, "assessment_date": self.assessment_date.isoformat(),
                "scheme_rates": {k: str(v) for k, v in vars(rules.rates_for(self.assessment_date.year)).items()},
                "encoding": self.encoding, "warnings": self.warnings,
                # which header fed each field (None: not in the file, so the field's default), so a reviewer
                # can see that the pension flag was read
                "columns": {f: self.sources.get(f) for f in FIELDS}, "columns_mapped": list(self.mapped)}


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


def validate(parsed: Parsed, assessment_date: date) -> Validation:
    if len(parsed.numbers) != len(parsed.rows):
        raise ValueError("every parsed row needs its row number in the file")
    results = [RowResult(row=number, values=values) for number, values in zip(parsed.numbers, parsed.rows,
                                                                              strict=True)]
    ppsns = Counter(r.values.get("ppsn", "").strip().upper() for r in results)
    ids = Counter(r.values.get("employee_id", "").strip() for r in results)
    year = assessment_date.year
    sources = parsed.sources
    flags = [f for f in YES_NO_FIELDS if f in sources]
    for r in results:
        v = r.values

        def fail(name: str, rule: str, message: str, r: RowResult = r) -> None:
            r.errors.append(RowError(r.row, sources.get(name, name), rule, message, name))

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
        elif not 14 <= rules.age_on(dob, assessment_date) <= 100:
            fail("date_of_birth", "age_range", f"gives an age of {rules.age_on(dob, assessment_date)}, "
                                               "outside 14-100")
        start = parse_date(v.get("employment_start", ""))
        if start is None:
            fail("employment_start", "date_format", "not a date (use YYYY-MM-DD or DD/MM/YYYY)")
        elif start > assessment_date:
            fail("employment_start", "date_in_future", "employment start is in the future")
        gross = _money(v.get("gross_pay", ""))
        if gross is None:
            fail("gross_pay", "not_numeric", "gross pay is not a number")
        elif gross < 0:
            fail("gross_pay", "negative", "gross pay is negative")
        elif not _in_range(gross):
            fail("gross_pay", "out_of_range", f"gross pay must be below EUR {MONEY_MAX + Decimal('0.01'):,}")
            gross = None
        else:
            gross = gross.quantize(rules.CENT, ROUND_HALF_UP)
        frequency = v.get("pay_frequency", "").strip().lower().replace(" ", "-")
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
        if r.errors:
            continue
        assert dob is not None and gross is not None
        r.dob, r.gross = dob, gross
        excluded = ((EXCLUDED.get(key(v["employment_type"])) if "employment_type" in v else None)
                    or ("company directors" if answers.get("director") else None)
                    or ("employees exempt from PRSI" if answers.get("prsi_exempt") else None))
        r.eligibility, r.reason = rules.eligibility(
            age=rules.age_on(dob, assessment_date), annual_earnings=rules.annualise(gross, frequency),
            thirteen_week_gross=thirteen, in_pension=bool(answers.get("in_pension")), excluded_category=excluded)
        if r.eligibility == "automatic":
            r.employee, r.employer, r.state = rules.contributions(gross, frequency, year)
    return Validation(results, parsed.warnings, parsed.encoding, assessment_date, parsed.sources, parsed.mapped)
