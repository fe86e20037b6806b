"""Payroll validation for Irish automatic enrolment (DOMAIN.md): parse, check, decide, report."""
