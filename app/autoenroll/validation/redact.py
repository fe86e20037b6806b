"""Removing one employee from a stored payroll file, for erasure: their rows become blank rows, so the
rest of the file (and every other row's number) stays as the employer uploaded it."""

from __future__ import annotations

import csv
import io

from autoenroll.files import RejectedFile
from autoenroll.validation.parse import _decode, column_of, delimiter_of


def same_ppsn(cell: object, ppsn: str) -> bool:
    return str(cell or "").replace(" ", "").strip().upper() == ppsn


def redact(data: bytes, kind: str, ppsn: str, source: str | None = None) -> tuple[bytes, int]:
    """`data` with every row whose PPSN is `ppsn` blanked, and how many rows that was; `source` is the
    header the PPSN was read from when the file was checked (a column map may have chosen it)."""
    target = ppsn.replace(" ", "").strip().upper()
    return _redact_xlsx(data, target, source) if kind == "xlsx" else _redact_csv(data, target, source)


_CODECS = {"UTF-8 (with BOM)": "utf-8-sig", "UTF-16": "utf-16", "UTF-8": "utf-8", "Latin-1": "latin-1"}


def _redact_csv(data: bytes, ppsn: str, source: str | None) -> tuple[bytes, int]:
    text, encoding = _decode(data)
    delimiter = delimiter_of(text)
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    column = column_of(records[0] if records else [], "ppsn", source)
    if column is None:
        raise RejectedFile("the stored file has no PPSN column")
    blanked = 0
    for i, record in enumerate(records[1:], start=1):
        if column < len(record) and same_ppsn(record[column], ppsn):
            records[i] = []
            blanked += 1
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(records)
    return out.getvalue().encode(_CODECS[encoding]), blanked


def _redact_xlsx(data: bytes, ppsn: str, source: str | None) -> tuple[bytes, int]:
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(data))
    sheet = workbook.worksheets[0]
    column = None
    blanked = 0
    for row in sheet.iter_rows():
        if column is None:
            header = [str(c.value or "") for c in row]
            if any(header):
                column = column_of(header, "ppsn", source)
                if column is None:
                    raise RejectedFile("the stored workbook has no PPSN column")
            continue
        if column < len(row) and same_ppsn(row[column].value, ppsn):
            for cell in row:
                cell.value = None
            blanked += 1
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue(), blanked
