"""What an uploaded file really is, by its first bytes (never its name or Content-Type)."""

from __future__ import annotations

import io
import zipfile

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
KINDS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class RejectedFile(ValueError):
    """The file can't be accepted; the message says why in words an employer can act on."""


class NotAPayrollFile(RejectedFile):
    """Not a CSV or a workbook at all (an image, a PDF, a ZIP, binary, nothing): 415, not 422."""


def detect(data: bytes) -> str:
    """'csv' or 'xlsx', or raise RejectedFile."""
    if not data:
        raise NotAPayrollFile("the file is empty")
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            raise RejectedFile("the file looks like a spreadsheet but is damaged") from None
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        raise NotAPayrollFile("the file is a ZIP archive, not an Excel workbook")
    for signature, name in ((b"\x89PNG", "a PNG image"), (b"%PDF", "a PDF"), (b"\xff\xd8\xff", "a JPEG image"),
                            (b"GIF8", "a GIF image"), (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) file")):
        if data.startswith(signature):
            raise NotAPayrollFile(f"the file is {name}: upload a CSV or an .xlsx payroll extract")
    head = data[:65536]
    if b"\x00" in head and not (head.startswith((b"\xff\xfe", b"\xfe\xff"))):
        raise NotAPayrollFile("the file is binary, not a CSV or an .xlsx payroll extract")
    return "csv"
