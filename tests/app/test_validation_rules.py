"""Every rule of DOMAIN.md, with positive and negative cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from autoenroll.validation import rules
from autoenroll.validation.engine import validate
from autoenroll.validation.parse import Parsed, parse_csv
from autoenroll.validation.reports import errors_csv, safe_cell, summary_pdf
from tests.app.payroll import HEADER, ppsn, row

pytestmark = pytest.mark.unit
ON = date(2026, 11, 21)


@pytest.mark.parametrize("value", ["1234567T", "1234567FA", "1234567fa", " 1234567T "])
def test_valid_ppsns(value: str) -> None:
    assert rules.ppsn_problem(value) is None


@pytest.mark.parametrize(("value", "why"), [
    ("1234567A", "check letter should be T"), ("1234567TA", "check letter should be"),
    ("123456T", "seven digits"), ("12345678T", "seven digits"), ("ABCDEFGT", "seven digits"), ("", "seven digits"),
])
def test_invalid_ppsns(value: str, why: str) -> None:
    problem = rules.ppsn_problem(value)
    assert problem is not None and why in problem


def test_check_letter_w_for_remainder_zero_and_second_letter_w_counts_zero() -> None:
    # 0000000 sums to 0: remainder 0 is W.
    assert rules.check_letter("0000000") == "W"
    assert rules.ppsn_problem("0000000W") is None
    # A second letter W counts as 0, so it doesn't change the check letter.
    assert rules.check_letter("1234567", "W") == rules.check_letter("1234567")
    found = next(d for d in (f"{n:07d}" for n in range(1, 100000)) if rules.check_letter(d) == "W")
    assert rules.ppsn_problem(found + "W") is None and rules.ppsn_problem(found + "A") is not None


@pytest.mark.parametrize(("age", "annual", "thirteen", "expected"), [
    (23, 20000, None, "automatic"), (60, 20000, None, "automatic"), (40, 19999, None, "may_opt_in"),
    (40, 10000, Decimal(5000), "automatic"), (40, 10000, Decimal(4999), "may_opt_in"),
    (22, 50000, None, "may_opt_in"), (61, 50000, None, "may_opt_in"), (18, 1000, None, "may_opt_in"),
    (66, 1000, None, "may_opt_in"), (17, 50000, None, "excluded"), (67, 50000, None, "excluded"),
])
def test_eligibility_bounds(age: int, annual: int, thirteen: Decimal | None, expected: str) -> None:
    result, _why = rules.eligibility(age=age, annual_earnings=Decimal(annual), thirteen_week_gross=thirteen,
                                     in_pension=False, excluded_category=None)
    assert result == expected


def test_exclusions_win() -> None:
    for kwargs in ({"in_pension": True, "excluded_category": None},
                   {"in_pension": False, "excluded_category": "company directors"}):
        result, _ = rules.eligibility(age=30, annual_earnings=Decimal(50000), thirteen_week_gross=None, **kwargs)
        assert result == "excluded"


@pytest.mark.parametrize(("frequency", "gross", "annual"), [
    ("weekly", "400", 20800), ("fortnightly", "800", 20800), ("four-weekly", "1600", 20800), ("monthly", "1700", 20400),
])
def test_annualise(frequency: str, gross: str, annual: int) -> None:
    assert rules.annualise(Decimal(gross), frequency) == annual


@pytest.mark.parametrize(("year", "employee", "state"), [
    (2026, "1.5", "0.5"), (2028, "1.5", "0.5"), (2029, "3.0", "1.0"), (2032, "4.5", "1.5"), (2035, "6.0", "2.0"),
    (2040, "6.0", "2.0"),
])
def test_contribution_schedule(year: int, employee: str, state: str) -> None:
    rates = rules.rates_for(year)
    assert rates.employee == Decimal(employee) == rates.employer and rates.state == Decimal(state)


def test_contributions_are_capped_at_80000_a_year() -> None:
    assert rules.contributions(Decimal("3000"), "monthly", 2026) == (Decimal("45.00"), Decimal("45.00"),
                                                                     Decimal("15.00"))
    capped = rules.contributions(Decimal("10000"), "monthly", 2026)  # 120k a year: cap at 80k/12
    assert capped[0] == Decimal("100.00")


def run(lines: list[str]) -> list[tuple[int, str, str]]:
    parsed = parse_csv(("\n".join([HEADER, *lines]) + "\n").encode())
    return [(e.row, e.column, e.rule) for e in validate(parsed, ON).errors]


def test_a_good_row_has_no_errors() -> None:
    assert run([row(1)]) == []


@pytest.mark.parametrize(("line", "expected"), [
    (row(1, dob="31/02/1980"), (2, "date_of_birth", "date_format")),
    (row(1, dob="2030-01-01"), (2, "date_of_birth", "date_in_future")),
    (row(1, dob="2020-01-01"), (2, "date_of_birth", "age_range")),
    (row(1, dob="1900-01-01"), (2, "date_of_birth", "age_range")),
    (row(1, gross="-5"), (2, "gross_pay", "negative")),
    (row(1, gross="lots"), (2, "gross_pay", "not_numeric")),
    (row(1, frequency="daily"), (2, "pay_frequency", "unknown_frequency")),
    (row(1).replace("2020-01-06", "2031-01-01"), (2, "employment_start", "date_in_future")),
    (row(1).replace(ppsn(1000001), "1000001A"), (2, "ppsn", "ppsn_format")),
    (row(1).replace("Aoife1", ""), (2, "first_name", "required")),
])
def test_each_row_check_names_row_column_and_rule(line: str, expected: tuple[int, str, str]) -> None:
    assert expected in run([line])


def test_duplicates_are_named_on_every_copy() -> None:
    errors = run([row(1), row(1), row(2)])
    assert (2, "ppsn", "duplicate") in errors and (3, "ppsn", "duplicate") in errors
    assert (3, "employee_id", "duplicate") in errors and not any(e[0] == 4 for e in errors)


def test_missing_columns_are_named_and_extra_ones_warned() -> None:
    with pytest.raises(Exception, match="missing required columns: gross_pay, pay_frequency"):
        parse_csv(b"employee_id,ppsn,first_name,last_name,date_of_birth,employment_start\nE1,x,a,b,c,d\n")
    parsed = parse_csv((HEADER + ",department\n" + row(1) + ",Sales\n").encode())
    assert parsed.warnings == ["ignored extra columns: department"]


@pytest.mark.parametrize(("encoded", "encoding"), [
    ((HEADER + "\n" + row(1, first="Seán") + "\n").encode("utf-8-sig"), "UTF-8 (with BOM)"),
    ((HEADER + "\n" + row(1, first="Seán") + "\n").encode("utf-16"), "UTF-16"),
    ((HEADER + "\n" + row(1, first="Seán") + "\n").encode("latin-1"), "Latin-1"),
    ((HEADER.replace(",", ";") + "\n" + row(1, first="Seán").replace(",", ";") + "\n").encode(), "UTF-8"),
])
def test_encodings_and_semicolons(encoded: bytes, encoding: str) -> None:
    parsed = parse_csv(encoded)
    assert parsed.encoding == encoding and parsed.rows[0]["first_name"] == "Seán1"
    assert ("Latin-1" in " ".join(parsed.warnings)) == (encoding == "Latin-1")


def test_formula_injection_never_reaches_the_csv_unescaped() -> None:
    for dangerous in ("=HYPERLINK(\"http://x\")", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert safe_cell(dangerous).startswith("'")
    assert safe_cell("Byrne") == "Byrne"
    parsed = parse_csv((HEADER + "\n" + row(1, gross="=1+2", first="@evil") + "\n").encode())
    report = errors_csv(validate(parsed, ON)).decode("utf-8-sig")
    assert "'=1+2" in report and ",=1+2" not in report


def test_pdf_summary_renders() -> None:
    validation = validate(Parsed(HEADER.split(","), [], "UTF-8"), ON)
    pdf = summary_pdf(validation, "empty")
    assert pdf.startswith(b"%PDF")
