"""Hostile payroll files, generated from a seed: truncation, byte flips, encodings, NUL, huge numbers,
lookalike digits, XML entity expansion, dimension and shared-strings blow-ups, many columns, bad row
numbers. `hostile_inputs(count, seed)` is the same list for the same arguments, so a failure found by a
large benchmark run is replayed by its seed; CI runs a small set."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from tests.app.hostile_files import BILLION_LAUGHS, payroll_rows, row_xml, shared_strings, workbook
from tests.app.payroll import HEADER, csv_file, ppsn, row

Maker = Callable[[random.Random], tuple[str, bytes]]
NUMBERS = ["10000000000", "9e999999", "1e-999999", "-1e999999", "NaN", "sNaN", "Infinity", "-0", "1" * 400,
           "0x10", "1_000", "١٢٣٤", "３０００", "1e10", "9999999999.995", "€3,000.00", "3 000", "", " "]
TEXT = ["Ó Súilleabháin", "\u202eevil", "e\u0301", "😀", "=cmd|' /C calc'!A0", "@SUM(1)", "+1", "-1", "\t", "'",
        '"', "\\", "a" * 3000, "\u00a0", "\ufeff", "\u2028"]


def _base(rng: random.Random, rows: int | None = None) -> bytes:
    return csv_file(rows if rows is not None else rng.randint(1, 40))


def truncated(rng: random.Random) -> tuple[str, bytes]:
    data = _base(rng)
    return "truncated.csv", data[:rng.randint(1, len(data))]


def byte_flips(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(_base(rng))
    for _ in range(rng.randint(1, 20)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return "flipped.csv", bytes(data)


def nul(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(_base(rng, rng.choice([5, 1200])))  # 1,200 rows: past the first 64 KB the sniffer reads
    data.insert(rng.randrange(len(data) // 2, len(data)), 0)
    return "nul.csv", bytes(data)


def bad_utf8_after_bom(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(b"\xef\xbb\xbf" + _base(rng))
    data.insert(rng.randrange(3, len(data)), rng.choice([0x80, 0xC3, 0xFF, 0xED]))
    return "bom.csv", bytes(data)


def utf16(rng: random.Random) -> tuple[str, bytes]:
    text = _base(rng).decode()
    data = bytearray(text.encode("utf-16"))
    choice = rng.randrange(4)
    if choice == 0:
        data = data[:-1]  # odd length
    elif choice == 1:
        position = rng.randrange(2, len(data) - 2) & ~1
        data[position:position + 2] = b"\x00\xd8"  # a lone high surrogate
    elif choice == 2:
        position = rng.randrange(2, len(data) - 2) & ~1
        data[position:position + 2] = b"\x00\x00"  # U+0000
    return "utf16.csv", bytes(data)


def odd_numbers(rng: random.Random) -> tuple[str, bytes]:
    extra = [row(100 + i, gross=rng.choice(NUMBERS).replace(",", "")) for i in range(rng.randint(1, 8))]
    header = HEADER + ",ytd_13_week_gross"
    lines = [header, *(line + "," + rng.choice(NUMBERS).replace(",", "") for line in extra)]
    return "numbers.csv", ("\n".join(lines) + "\n").encode()


def odd_text(rng: random.Random) -> tuple[str, bytes]:
    lines = [HEADER]
    for i in range(rng.randint(1, 10)):
        digits = "".join(rng.choice("0123456789٠١٢٣٤٥٦٧٨٩０１２３") for _ in range(7))
        identifier = rng.choice([ppsn(4000000 + i), digits + "T", ppsn(4000000 + i).lower() + " "])
        first, last = (rng.choice(TEXT).replace(",", "").replace("\n", "") for _ in range(2))
        lines.append(f"E{i},{identifier},{first},{last},{rng.choice(['1985-06-15', '31/02/1990', '9999-99-99'])},"
                     f"2020-01-06,3000,{rng.choice(['monthly', 'Weekly', 'yearly', ''])}")
    return "text.csv", ("\n".join(lines) + "\n").encode(rng.choice(["utf-8", "utf-8-sig", "utf-16"]))


def many_columns(rng: random.Random) -> tuple[str, bytes]:
    width = rng.choice([65, 300, 5000, 200_000])
    header = HEADER + "," + ",".join(f"x{i}" for i in range(width))
    return "wide.csv", (header + "\n" + row(1) + "\n").encode()


def long_field(rng: random.Random) -> tuple[str, bytes]:
    return "long.csv", csv_file(2, [row(9, first="a" * rng.choice([1000, 140_000]))])


def quotes(rng: random.Random) -> tuple[str, bytes]:
    lines = [HEADER, row(1), '"' + row(2), row(3, first='"Mary""Ann"'), row(4).replace(",", ";")]
    rng.shuffle(lines[1:])
    return "quotes.csv", ("\r".join(lines) if rng.random() < 0.3 else "\n".join(lines)).encode()


def binary(rng: random.Random) -> tuple[str, bytes]:
    prefix = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"%PDF-1.7", b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"GIF89a"])
    return "binary.csv", prefix + rng.randbytes(rng.randint(0, 2000))


def xlsx_dimension(rng: random.Random) -> tuple[str, bytes]:
    rows = payroll_rows(rng.randint(1, 300))
    if rng.random() < 0.5:
        rows.insert(rng.randrange(1, len(rows)), '<row r="500000"/>')  # a far gap, then rows numbered below it
    return "dimension.xlsx", workbook(rows, dimension=rng.choice(["A1:XFD1048576", "A1:A1", "A0:ZZ", "XFD1"]))


def xlsx_row_numbers(rng: random.Random) -> tuple[str, bytes]:
    rows = payroll_rows(rng.randint(2, 6))
    position = rng.randrange(1, len(rows))
    bad = rng.choice(["abc", "0", "-3", "1.5", "2.0", "1048577", "1", ""])
    rows[position] = rows[position].replace(rows[position].split('"')[1], bad, 1)
    return "rows.xlsx", workbook(rows)


def xlsx_shared_strings(rng: random.Random) -> tuple[str, bytes]:
    strings = [f"name{i}" for i in range(rng.randint(1, 50))]
    rows = [row_xml(1, HEADER.split(","))]
    for i in range(5):
        rows.append(f'<row r="{i + 2}"><c r="A{i + 2}" t="s"><v>{rng.randrange(len(strings) + 3)}</v></c></row>')
    return "shared.xlsx", workbook(rows, shared_xml=shared_strings(strings))


def xlsx_entities(rng: random.Random) -> tuple[str, bytes]:
    if rng.random() < 0.5:
        return "laughs.xlsx", workbook(payroll_rows(2), shared_xml=BILLION_LAUGHS)
    sheet = BILLION_LAUGHS.replace("<sst", "<worksheet").replace("</sst>", "</worksheet>").replace(
        "<si><t>&lol9;</t></si>", "<sheetData><row r='1'><c t='inlineStr'><is><t>&lol9;</t></is></c></row></sheetData>")
    return "laughs-sheet.xlsx", workbook([], sheet_xml=sheet)


def xlsx_flips(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(workbook(payroll_rows(rng.randint(1, 20))))
    for _ in range(rng.randint(1, 10)):
        data[rng.randrange(4, len(data))] = rng.randrange(256)
    return "flipped.xlsx", bytes(data)


def xlsx_wide_value(rng: random.Random) -> tuple[str, bytes]:
    column = rng.choice(["AMK", "XFD", "AAAA", "ZZZZZZ"])
    rows = [*payroll_rows(2), f'<row r="4"><c r="{column}4" t="inlineStr"><is><t>x</t></is></c></row>']
    return "wide.xlsx", workbook(rows)


def xlsx_bomb(rng: random.Random) -> tuple[str, bytes]:
    """A few KB that unpack to millions of empty cells or rows: refused by the ratio or the cell count."""
    count = rng.choice([200_000, 3_000_000])
    if rng.random() < 0.5:
        return "cells.xlsx", workbook([row_xml(1, HEADER.split(",")), "<row r='2'>" + "<c/>" * count + "</row>"])
    return "blank-rows.xlsx", workbook([row_xml(1, HEADER.split(",")), "<row/>" * count])


def big_shared_strings(rng: random.Random) -> tuple[str, bytes]:
    """Heavy, so one per run: past the default limit of shared strings (refused before they are loaded)."""
    return "sst-bomb.xlsx", workbook(payroll_rows(2), shared_xml=shared_strings(1_000_001 + rng.randrange(10)))


MAKERS: list[Maker] = [truncated, byte_flips, nul, bad_utf8_after_bom, utf16, odd_numbers, odd_text, many_columns,
                       long_field, quotes, binary, xlsx_dimension, xlsx_row_numbers, xlsx_shared_strings,
                       xlsx_entities, xlsx_flips, xlsx_wide_value, xlsx_bomb]
ONCE: list[Maker] = [big_shared_strings]


def hostile_inputs(count: int, seed: int) -> Iterator[tuple[str, str, bytes]]:
    """(case id, file name, content) for `count` generated files; the same for the same seed."""
    rng = random.Random(seed)
    for i in range(count):
        maker = ONCE[i] if i < len(ONCE) else rng.choice(MAKERS)
        name, content = maker(rng)
        yield f"{i}-{maker.__name__}", name, content
