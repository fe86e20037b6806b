"""Validation throughput and PDF time, beside the seed's targets, in one run.

    .venv/bin/python benchmarks/validation.py

Rows per second (parse + validate, no I/O) for 500, 10,000 and 100,000 rows, and the PDF
summary for 10,000 employees. Seed: 500 rows in under 5 s, PDF under 2 s. Issue goals:
>= 50,000 rows/s, 10,000-employee PDF under 1 s. Prints; never fails on time.
"""

from __future__ import annotations

import time
from datetime import date

from autoenroll.validation.engine import validate
from autoenroll.validation.parse import parse_csv
from autoenroll.validation.reports import summary_pdf
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


def main() -> None:
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


if __name__ == "__main__":
    main()
