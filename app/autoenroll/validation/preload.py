"""Imported once by the upload checker's forkserver, so that each worker it forks starts with the
parsers and the PDF writer loaded and warm, instead of paying for that on every upload."""

from __future__ import annotations

from datetime import date

import defusedxml.ElementTree  # noqa: F401
import openpyxl
import openpyxl.worksheet._reader  # noqa: F401
from fpdf import FPDF  # noqa: F401

from autoenroll.validation import worker  # noqa: F401  (the module the workers run: each fork has it)
from autoenroll.validation.engine import validate
from autoenroll.validation.parse import parse_csv
from autoenroll.validation.reports import summary_pdf

# One small file through the whole check: the fonts' metrics, the date parsers and the regexes are loaded now.
summary_pdf(validate(parse_csv(b"employee_id,ppsn,first_name,last_name,date_of_birth,employment_start,gross_pay,"
                               b"pay_frequency\nE1,1234567T,A,B,1985-06-15,2020-01-06,1,monthly\n"), date(2026, 1, 1)),
            "warm-up")
