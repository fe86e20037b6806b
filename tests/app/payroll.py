"""Payroll files for tests: valid rows with computed PPSN check letters, and ways to break them."""

from __future__ import annotations

from autoenroll.validation.rules import check_letter

HEADER = "employee_id,ppsn,first_name,last_name,date_of_birth,employment_start,gross_pay,pay_frequency"


def ppsn(n: int, second: str = "") -> str:
    digits = f"{n:07d}"
    return digits + check_letter(digits, second) + second


def row(n: int, *, dob: str = "1985-06-15", gross: str = "3000", frequency: str = "monthly",
        first: str = "Aoife", last: str = "Byrne") -> str:
    return f"E{n},{ppsn(1000000 + n)},{first}{n},{last},{dob},2020-01-06,{gross},{frequency}"


def csv_file(rows: int = 3, extra: list[str] | None = None) -> bytes:
    return ("\n".join([HEADER, *(row(i) for i in range(rows)), *(extra or [])]) + "\n").encode()
