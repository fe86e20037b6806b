"""Reports: a JSON summary, a CSV of row errors that no spreadsheet will execute, and a PDF summary."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from autoenroll.validation.engine import Validation

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """Formula-injection safe: a cell that a spreadsheet would evaluate is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(DANGEROUS_FIRST) else text


def summary_json(validation: Validation, extra: dict[str, Any] | None = None) -> bytes:
    return json.dumps({**validation.summary(), **(extra or {})}, indent=2).encode()


def errors_csv(validation: Validation) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "column", "rule", "message", "value"])
    for result in validation.results:
        for error in result.errors:
            writer.writerow([error.row, safe_cell(error.column), error.rule, safe_cell(error.message),
                             safe_cell(result.values.get(error.field_name or error.column, ""))])
    return out.getvalue().encode("utf-8-sig")  # BOM: Excel opens UTF-8 correctly


def _pdf_text(value: object) -> str:
    # The core fonts are Latin-1; names with other characters degrade, never crash.
    return str(value).encode("latin-1", "replace").decode("latin-1")


def columns_line(summary: dict[str, Any]) -> str:
    """Which column fed each field, so a reader can check that the pension flag was read."""
    mapped = set(summary.get("columns_mapped", []))
    read = [f"{f} <- '{c}'{' (column map)' if f in mapped else ''}"
            for f, c in summary.get("columns", {}).items() if c is not None]
    unread = [f for f, c in summary.get("columns", {}).items() if c is None]
    return "Columns read: " + "; ".join(read) + (f". Not in the file: {', '.join(unread)}" if unread else "")


def summary_pdf(validation: Validation, title: str) -> bytes:
    from fpdf import FPDF

    s = validation.summary()
    pdf = FPDF(format="A4")
    pdf.set_compression(False)  # so an erasure can prove, by reading the bytes back, that a PPSN is gone
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _pdf_text(f"Automatic enrolment check: {title}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=11)
    lines = [
        f"Assessment date: {s['assessment_date']}",
        f"Employees checked: {s['rows']}; rows with errors: {s['rows_with_errors']} ({s['errors']} errors)",
        "Eligibility: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s["eligibility"].items()),
        "Contributions per pay period (automatically enrolled): "
        + ", ".join(f"{k} EUR {v}" for k, v in s["contributions_per_period"].items()),
        "Rates this scheme year (% of gross, earnings capped at EUR 80,000 a year): "
        + ", ".join(f"{k} {v}%" for k, v in s["scheme_rates"].items()),
    ]
    for line in lines + [f"Note: {w}" for w in s["warnings"]] + [columns_line(s)]:
        pdf.multi_cell(0, 7, _pdf_text(line), new_x="LMARGIN", new_y="NEXT")
    errors = validation.errors[:25]
    if errors:
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, "First errors", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        for e in errors:
            pdf.multi_cell(0, 5, _pdf_text(f"Row {e.row}, {e.column} ({e.rule}): {e.message}"),
                           new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
