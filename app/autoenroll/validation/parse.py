"""Reading payroll files: CSV (comma or semicolon; UTF-8 with or without BOM, UTF-16, Latin-1)
and XLSX, defensively: a zip bomb, a damaged workbook or a file without the required columns
is rejected with a message an employer can act on, before anything is stored. Which header
feeds which field is columns.py's table (and the employer's column map)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from autoenroll.files import RejectedFile
from autoenroll.validation.columns import ColumnMap, resolve

MAX_ROWS = 200_000
MAX_UNCOMPRESSED = 100 * 1024 * 1024  # a 10 MB workbook never legitimately unpacks to more
MAX_RATIO = 200
MAX_MEMBERS = 2000


@dataclass
class Parsed:
    columns: list[str]
    rows: list[dict[str, str]]  # keyed by field; row number in the file is index + 2 (row 1 is the header)
    encoding: str
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # field -> the header that fed it
    mapped: tuple[str, ...] = ()  # the fields an explicit column map decided


def _reader(fields: list[str | None]) -> Callable[[list[str]], dict[str, str]]:
    """Record -> {field: cell}, leaving out the columns no field reads."""
    if all(fields):
        names = [f or "" for f in fields]
        return lambda record: dict(zip(names, record, strict=False))
    used = [(i, f) for i, f in enumerate(fields) if f]
    return lambda record: {f: record[i] for i, f in used if i < len(record)}


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "UTF-8 (with BOM)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "UTF-16"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def parse_csv(data: bytes, mapping: ColumnMap | None = None) -> Parsed:
    text, encoding = _decode(data)
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise RejectedFile("the file is empty") from None
    except csv.Error as exc:
        raise RejectedFile(f"the file is not readable as CSV: {exc}") from None
    resolved = resolve(header, mapping)
    read, warnings = _reader(resolved.fields), resolved.warnings
    if encoding == "Latin-1":
        warnings.append("the file is not UTF-8: read as Latin-1 (check names with accents)")
    rows: list[dict[str, str]] = []
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            rows.append(read(record))
            if len(rows) > MAX_ROWS:
                raise RejectedFile(f"the file has more than {MAX_ROWS:,} rows: split it")
    except csv.Error as exc:
        raise RejectedFile(f"the file is not readable as CSV near row {len(rows) + 2}: {exc}") from None
    if not rows:
        raise RejectedFile("the file has a header but no employees")
    return Parsed(header, rows, encoding, warnings, resolved.sources, resolved.mapped)


def _guard_zip(data: bytes) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise RejectedFile("the workbook is damaged") from None
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise RejectedFile("the workbook has too many parts to be a payroll extract")
    total = sum(i.file_size for i in infos)
    if total > MAX_UNCOMPRESSED or any(i.compress_size and i.file_size / i.compress_size > MAX_RATIO for i in infos):
        raise RejectedFile("the workbook unpacks to far more than its size (a zip bomb?): not accepted")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_xlsx(data: bytes, mapping: ColumnMap | None = None) -> Parsed:
    _guard_zip(data)
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        iterator = sheet.iter_rows(values_only=True)
        header = next(iterator, None)
        if header is None:
            raise RejectedFile("the workbook's first sheet is empty")
        columns = [_cell(h) for h in header]
        resolved = resolve(columns, mapping)
        read, warnings = _reader(resolved.fields), resolved.warnings
        rows = []
        for record in iterator:
            cells = [_cell(v) for v in record]
            if not any(c.strip() for c in cells):
                continue
            rows.append(read(cells))
            if len(rows) > MAX_ROWS:
                raise RejectedFile(f"the workbook has more than {MAX_ROWS:,} rows: split it")
    except RejectedFile:
        raise
    except Exception as exc:  # openpyxl raises many kinds on malformed parts
        raise RejectedFile(f"the workbook is damaged or not a real .xlsx ({exc.__class__.__name__})") from None
    if not rows:
        raise RejectedFile("the workbook has a header but no employees")
    return Parsed(columns, rows, "XLSX", warnings, resolved.sources, resolved.mapped)


def parse(data: bytes, kind: str, mapping: ColumnMap | None = None) -> Parsed:
    return parse_xlsx(data, mapping) if kind == "xlsx" else parse_csv(data, mapping)
