"""Validation throughput and PDF time, beside the seed's targets, in one run.

    .venv/bin/python benchmarks/validation.py
    .venv/bin/python benchmarks/validation.py --renamed-pension   # only the renamed-column run

Rows per second (parse + validate, no I/O) for 500, 10,000 and 100,000 rows, and the PDF
summary for 10,000 employees. Seed: 500 rows in under 5 s, PDF under 2 s. Issue goals:
>= 50,000 rows/s, 10,000-employee PDF under 1 s. Then 100,000 rows whose pension flag is a column
named `in_pension_scheme` (every fifth employee a member), parsed, validated and reported, with how
many rows were read as pension members. Prints; never fails on time.
"""

from __future__ import annotations

import sys
import time
from datetime import date

from autoenroll.validation.engine import validate
from autoenroll.validation.parse import parse_csv
from autoenroll.validation.reports import errors_csv, summary_json, summary_pdf
from autoenroll.validation.rules import check_letter

HEADER = "employee_id,ppsn,first_name,last_name,date_of_birth,employment_start,gross_pay,pay_frequency"


def payroll(rows: int) -> bytes:
    lines = [HEADER]
    for i in range(rows):
        digits = f"{1000000 + i:07d}"
        bad = i % 50 == 0  # 2% rows with an error, as real files have
        lines.append(f"E{i},{digits}{check_letter(digits)},Aoife{i},Byrne,19{60 + i % 40}-0{1 + i % 9}-1{i % 9},"
                     f"2020-01-06,{'n/a' if bad else 1000 + i % 4000},{('monthly', 'weekly')[i % 2]}")
    return ("\n".join(lines) + "\n").encode()


def best_of(runs: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def with_pension_column(data: bytes, header: str) -> bytes:
    """The payroll with a yes/no pension flag column called `header`: every fifth employee a member (none of
    them among the rows with errors, so each member can be seen read as one)."""
    lines = data.decode().splitlines()
    flagged = [f"{line},{'yes' if i % 5 == 1 else 'no'}" for i, line in enumerate(lines[1:])]
    return ("\n".join([f"{lines[0]},{header}", *flagged]) + "\n").encode()


def renamed_pension_column(rows: int = 100_000, header: str = "in_pension_scheme") -> None:
    """End to end (parse, validate, the three reports) with the pension flag under a name other than `in_pension`:
    every member must be read as one, none classified automatic."""
    data = with_pension_column(payroll(rows), header)
    t0 = time.perf_counter()
    validation = validate(parse_csv(data), date(2026, 11, 21))
    summary_json(validation), errors_csv(validation), summary_pdf(validation, "renamed pension column")
    seconds = time.perf_counter() - t0
    members = [r for r in validation.results if r.reason == "already contributing to a pension through payroll"]
    summary = validation.summary()
    print(f"\n{rows:,} rows, pension flag in column {summary['columns']['in_pension']!r}: "
          f"{seconds:.3f} s end to end (parse, validate, JSON/CSV/PDF reports)")
    flagged = data.count(b",yes\n")
    print(f"flagged as members in the file: {flagged:,}; read as pension members: {len(members):,}; "
          f"eligibility: {summary['eligibility']}")


def main() -> None:
    if "--renamed-pension" in sys.argv[1:]:
        renamed_pension_column()
        return
    on = date(2026, 11, 21)
    print("rows      seconds    rows/s   (seed: 500 rows < 5 s; goal >= 50,000 rows/s)")
    for rows in (500, 10_000, 100_000):
        data = payroll(rows)
        seconds = best_of(3 if rows < 100_000 else 2, lambda data=data: validate(parse_csv(data), on))
        print(f"{rows:>7}  {seconds:9.3f}  {rows / seconds:9.0f}")
    validation = validate(parse_csv(payroll(10_000)), on)
    summary_pdf(validation, "warm-up")  # first call imports fpdf's fonts
    seconds = best_of(3, lambda: summary_pdf(validation, "10,000 employees"))
    print(f"\nPDF summary of 10,000 employees: {seconds:.3f} s (seed < 2 s; goal < 1 s)")
    renamed_pension_column()


if __name__ == "__main__":
    main()
