"""Workbooks written part by part, so a test can put into one exactly the XML an attacker would:
a dimension out to XFD, a shared-strings table of any size, rows numbered any way, entities."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

from tests.app.payroll import HEADER, ppsn

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006"


def cell(ref: str, value: str | int) -> str:
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'


def row_xml(number: int | str, values: Sequence[str | int], first_column: int = 0) -> str:
    cells = "".join(cell(f"{chr(65 + first_column + i)}{number}", v) for i, v in enumerate(values))
    return f'<row r="{number}">{cells}</row>'


def payroll_rows(rows: int, start: int = 2) -> list[str]:
    """Valid employee rows (as XML), numbered from `start`."""
    out = [row_xml(1, HEADER.split(","))]
    for i in range(rows):
        out.append(row_xml(start + i, [f"E{i}", ppsn(2000000 + i), f"Aoife{i}", "Byrne", "1985-06-15", "2020-01-06",
                                       3000, "monthly"]))
    return out


def workbook(rows_xml: list[str] | str, *, dimension: str = "A1:H2", shared_xml: str | None = None,
             sheet_xml: str | None = None, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An .xlsx whose first sheet holds `rows_xml` (or is `sheet_xml` verbatim), with an optional
    shared-strings part given verbatim."""
    data = rows_xml if isinstance(rows_xml, str) else "".join(rows_xml)
    sheet = sheet_xml or (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'
                          f'<dimension ref="{dimension}"/><sheetData>{data}</sheetData></worksheet>')
    overrides = ('<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.'
                 'spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="'
                 'application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>')
    rels = f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    if shared_xml is not None:
        overrides += ('<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-'
                      'officedocument.spreadsheetml.sharedStrings+xml"/>')
        rels += f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
    parts = {
        "[Content_Types].xml": f'<Types xmlns="{PKG}/content-types"><Default Extension="rels" ContentType="'
                               'application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" '
                               f'ContentType="application/xml"/>{overrides}</Types>',
        "_rels/.rels": f'<Relationships xmlns="{PKG}/relationships"><Relationship Id="rId1" Type="{REL}/'
                       'officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets><sheet name="Payroll" sheetId="1" '
                           'r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": f'<Relationships xmlns="{PKG}/relationships">{rels}</Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    if shared_xml is not None:
        parts["xl/sharedStrings.xml"] = shared_xml
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def shared_strings(strings: list[str] | int) -> str:
    items = (f"<si><t>{escape(s)}</t></si>" for s in strings) if isinstance(strings, list) else (
        f"<si><t>s{i}</t></si>" for i in range(strings))
    count = len(strings) if isinstance(strings, list) else strings
    return f'<sst xmlns="{MAIN}" count="{count}" uniqueCount="{count}">{"".join(items)}</sst>'


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + f']><sst xmlns="{MAIN}"><si><t>&lol9;</t></si></sst>')
