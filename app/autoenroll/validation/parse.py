"""Reading payroll files: CSV (comma or semicolon; UTF-8 with or without BOM, UTF-16, Latin-1)
and XLSX, defensively: a zip bomb, a damaged workbook or a file without the required columns
is rejected with a message an employer can act on, before anything is stored. Which header
feeds which field is columns.py's table (and the employer's column map). Every file's cost is
bounded by UploadLimits (config.py), and each row keeps the number the file gives it."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from autoenroll.config import UploadLimits
from autoenroll.files import RejectedFile
from autoenroll.validation.columns import ColumnMap, Resolved, key, resolve

XLSX_MAX_ROW = 1_048_576  # Excel's last row
SHEET_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
DEFAULT_LIMITS = UploadLimits()
MAX_UNCOMPRESSED = 100 * 1024 * 1024  # a 10 MB workbook never legitimately unpacks to more
MAX_RATIO = 200
MAX_MEMBERS = 2000


@dataclass
class Parsed:
    columns: list[str]
    rows: list[dict[str, str]]  # keyed by field
    encoding: str
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # field -> the header that fed it
    mapped: tuple[str, ...] = ()  # the fields an explicit column map decided
    numbers: list[int] = field(default_factory=list)  # each row's number in the file (the header is row 1)


def _reader(fields: list[str | None]) -> Callable[[list[str]], dict[str, str]]:
    """Record -> {field: cell}, leaving out the columns no field reads."""
    if all(fields):
        names = [f or "" for f in fields]
        return lambda record: dict(zip(names, record, strict=False))
    used = [(i, f) for i, f in enumerate(fields) if f]
    return lambda record: {f: record[i] for i, f in used if i < len(record)}


def column_of(header: list[str], name: str, source: str | None = None) -> int | None:
    """Which column of `header` fed the field `name`: the one headed `source` (as a run's summary records
    it), else the one the table of spellings reads as `name`; None if neither is there."""
    if source is not None:
        for wanted in (source, key(source)):
            for i, h in enumerate(header):
                if h == wanted or key(h) == wanted:
                    return i
    try:
        fields = resolve(header).fields
    except RejectedFile:
        return None
    return fields.index(name) if name in fields else None


def delimiter_of(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _row_of(text: str) -> int:
    """The record number (the header is 1) that the character after `text` falls in, as a spreadsheet counts rows."""
    try:
        records = sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
    except csv.Error:
        records = text.count("\n")
    return records + 1 if not text or text.endswith(("\n", "\r")) else records


def _decode(data: bytes) -> tuple[str, str]:
    """The text and what it was read as; bytes that are not valid in the encoding the file declares (a BOM)
    are a RejectedFile naming the row, never a guess."""
    if data.startswith(b"\xef\xbb\xbf"):
        body, codec, name = data[3:], "utf-8", "UTF-8 (with BOM)"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        body, codec, name = data, "utf-16", "UTF-16"
    else:
        try:
            return data.decode("utf-8"), "UTF-8"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "Latin-1"
    try:
        return body.decode(codec), name
    except UnicodeDecodeError as exc:
        readable = body[:exc.start].decode(codec, errors="ignore")
        raise RejectedFile(f"row {_row_of(readable)} is not valid {name} (bytes {exc.start}-{exc.end} of the file "
                           f"cannot be read: {exc.reason}): save the file again as UTF-8") from None


class Budget:
    """Counts the work an upload causes against its limits, so a small file built to blow up (too
    many columns, cells or rows) stops early with a message that names the limit."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.cells = 0
        self.rows = 0

    def record(self, number: int, width: int) -> None:
        """A CSV record of `width` fields: both its width and its cells count."""
        if width > self.limits.max_columns:
            raise RejectedFile(f"row {number} has {width:,} columns, more than the {self.limits.max_columns} "
                               "this service reads (limit max_columns)")
        self.charge(number, width)

    def charge(self, number: int, cells: int) -> None:
        self.cells += max(1, cells)  # a blank row is work too
        if self.cells > self.limits.max_cells:
            raise RejectedFile(f"the file has more than {self.limits.max_cells:,} cells by row {number} "
                               "(limit max_cells): split it")

    def employee(self) -> None:
        self.rows += 1
        if self.rows > self.limits.max_rows:
            raise RejectedFile(f"the file has more than {self.limits.max_rows:,} rows (limit max_rows): split it")


@dataclass
class Sheet:
    """A file whose header is read and whose columns are resolved; `rows()` reads its employee rows, as
    (row number in the file, {field: cell}), as often as it is called, with every limit checked on the way.
    A check reads a CSV twice (the duplicate rules count the whole file first) rather than keep every row."""

    columns: list[str]
    encoding: str
    rows: Callable[[], Iterator[tuple[int, dict[str, str]]]]
    warnings: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    mapped: tuple[str, ...] = ()

    def parsed(self) -> Parsed:
        numbers: list[int] = []
        rows: list[dict[str, str]] = []
        for number, values in self.rows():
            numbers.append(number)
            rows.append(values)
        return Parsed(self.columns, rows, self.encoding, self.warnings, self.sources, self.mapped, numbers)


def read_csv(data: bytes, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Sheet:
    text, encoding = _decode(data)
    nul = text.find("\x00")
    if nul >= 0:
        raise RejectedFile(f"row {_row_of(text[:nul])} contains a NUL character: the file is damaged or not a CSV")
    delimiter = delimiter_of(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise RejectedFile("the file is empty") from None
    except csv.Error as exc:
        raise RejectedFile(f"the file is not readable as CSV: {exc}") from None
    Budget(limits).record(1, len(header))
    resolved = resolve(header, mapping)
    read, warnings = _reader(resolved.fields), resolved.warnings
    if encoding == "Latin-1":
        warnings.append("the file is not UTF-8: read as Latin-1 (check names with accents)")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        budget = Budget(limits)
        number = 1
        try:
            budget.record(1, len(next(records)))
            for number, record in enumerate(records, start=2):
                budget.record(number, len(record))
                if not "".join(record).strip():
                    continue  # a blank row still counts: the rows after it keep the numbers the employer sees
                budget.employee()
                yield number, read(record)
        except csv.Error as exc:
            raise RejectedFile(f"the file is not readable as CSV near row {number + 1}: {exc}") from None
        if not budget.rows:
            raise RejectedFile("the file has a header but no employees")

    return Sheet(header, encoding, rows, warnings, resolved.sources, resolved.mapped)


def parse_csv(data: bytes, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Parsed:
    return read_csv(data, mapping, limits).parsed()


def _guard_zip(data: bytes, limits: UploadLimits) -> None:
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
    _guard_shared_strings(archive, limits)


def _guard_shared_strings(archive: zipfile.ZipFile, limits: UploadLimits) -> None:
    """openpyxl holds the whole shared-strings table in memory before the first row is read, so a
    few MB of tiny strings become hundreds of MB; count them first, streaming, and refuse past the limit."""
    from defusedxml.ElementTree import iterparse

    names = [n for n in archive.namelist() if n.lower().endswith("sharedstrings.xml")]
    tag = f"{{{SHEET_MAIN_NS}}}si"
    for name in names:
        count = 0
        try:
            with archive.open(name) as source:
                for _event, element in iterparse(source):
                    if element.tag == tag:
                        count += 1
                        element.clear()
                        if count > limits.max_shared_strings:
                            raise RejectedFile(f"the workbook has more than {limits.max_shared_strings:,} shared "
                                               "strings (limit max_shared_strings): save it as CSV")
        except RejectedFile:
            raise
        except Exception as exc:  # defusedxml refuses entities and DTDs; expat refuses broken XML
            raise RejectedFile(f"the workbook's shared strings are damaged or unsafe ({exc.__class__.__name__})") \
                from None


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


def _sheet_rows(data: bytes, limits: UploadLimits) -> Iterator[tuple[int, dict[int, str], int]]:
    """(row number, {column: text}, cells in the file) for each row element of the first sheet, numbered by the file.

    openpyxl's own iter_rows pads every row to the width the sheet *declares* (16,384 cells a row for
    a dimension out to XFD), pads the gaps between row numbers with blank rows, and silently skips a
    row whose number does not increase; its row parser has none of these, so the rows are read with it."""
    import openpyxl
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._reader import WorkSheetParser

    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = workbook.worksheets[0]
    previous = 0
    with sheet._get_source() as source:
        parser = WorkSheetParser(source, workbook.shared_strings, data_only=True, epoch=workbook.epoch,
                                 date_formats=workbook._date_formats, timedelta_formats=workbook._timedelta_formats)
        rows = parser.parse()
        while True:
            try:
                number, cells = next(rows)
            except StopIteration:
                return
            except ValueError as exc:
                raise RejectedFile(f"the row after row {previous} has no usable row number or cell reference "
                                   f"({exc}): save the workbook again from Excel") from None
            if not previous < number <= XLSX_MAX_ROW:
                raise RejectedFile(f"the row after row {previous} is numbered {number}: rows must be numbered "
                                   f"upwards from 1 to {XLSX_MAX_ROW:,}")
            previous = number
            values: dict[int, str] = {}
            for cell in cells:
                text = _cell(cell["value"])
                if not text:
                    continue
                if cell["column"] > limits.max_columns:
                    raise RejectedFile(f"row {number} has a value in column {get_column_letter(cell['column'])}, "
                                       f"beyond the {limits.max_columns} columns this service reads "
                                       "(limit max_columns)")
                values[cell["column"]] = text
            yield number, values, len(cells)


def read_xlsx(data: bytes, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Sheet:
    # openpyxl is slow and a workbook is small (MAX_UPLOAD_BYTES, MAX_UNCOMPRESSED): its rows are read once and kept.
    _guard_zip(data, limits)
    budget = Budget(limits)
    header: list[str] | None = None
    resolved: Resolved | None = None
    read = _reader([])
    rows: list[dict[str, str]] = []
    numbers: list[int] = []
    try:
        for number, values, width in _sheet_rows(data, limits):
            budget.charge(number, width)
            if header is None:
                if not values:
                    continue
                header = [values.get(i, "") for i in range(1, max(values) + 1)]
                resolved = resolve(header, mapping)
                read = _reader(resolved.fields)
                continue
            if "\x00" in "".join(values.values()):
                raise RejectedFile(f"row {number} contains a NUL character: the workbook is damaged")
            if not any(v.strip() for v in values.values()):
                continue
            budget.employee()
            rows.append(read([values.get(i, "") for i in range(1, len(header) + 1)]))
            numbers.append(number)
    except RejectedFile:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises many kinds on malformed parts
        raise RejectedFile(f"the workbook is damaged or not a real .xlsx ({exc.__class__.__name__})") from None
    if header is None or resolved is None:
        raise RejectedFile("the workbook's first sheet is empty")
    if not rows:
        raise RejectedFile("the workbook has a header but no employees")
    pairs = list(zip(numbers, rows, strict=True))
    return Sheet(header, "XLSX", lambda: iter(pairs), resolved.warnings, resolved.sources, resolved.mapped)


def parse_xlsx(data: bytes, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Parsed:
    return read_xlsx(data, mapping, limits).parsed()


def read(data: bytes, kind: str, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Sheet:
    return read_xlsx(data, mapping, limits) if kind == "xlsx" else read_csv(data, mapping, limits)


def parse(data: bytes, kind: str, mapping: ColumnMap | None = None, limits: UploadLimits = DEFAULT_LIMITS) -> Parsed:
    return read(data, kind, mapping, limits).parsed()
