"""The parser against files built to exhaust or confuse it, with no server: each is refused by the
limit it meets (named in the message), in bounded time, or read with the rows numbered as the file
numbers them."""

from __future__ import annotations

import resource
from datetime import date
from decimal import Decimal

import pytest

from autoenroll.config import UploadLimits
from autoenroll.files import RejectedFile
from autoenroll.validation.engine import validate
from autoenroll.validation.parse import parse_csv, parse_xlsx
from autoenroll.validation.redact import redact
from autoenroll.validation.rules import ppsn_problem
from autoenroll.validation.worker import Checked, Refused, check
from tests.app.hostile_files import BILLION_LAUGHS, payroll_rows, row_xml, shared_strings, workbook
from tests.app.payroll import HEADER, csv_file, ppsn, row

pytestmark = pytest.mark.unit
ON = date(2026, 11, 21)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_a_sheet_declaring_16384_columns_is_read_at_its_real_width() -> None:
    data = workbook(payroll_rows(3000), dimension="A1:XFD1048576")
    started = cpu()
    parsed = parse_xlsx(data)
    assert len(parsed.rows) == 3000 and set(parsed.rows[0]) == set(HEADER.split(","))
    # openpyxl's own iter_rows pads each of these rows to 16,384 cells: seconds, not this
    assert cpu() - started < 2.0


def test_a_value_beyond_the_column_limit_is_refused_by_name() -> None:
    rows = [*payroll_rows(2), '<row r="4"><c r="XFD4" t="inlineStr"><is><t>x</t></is></c></row>']
    with pytest.raises(RejectedFile, match=r"row 4 has a value in column XFD.*max_columns"):
        parse_xlsx(workbook(rows))


def test_a_csv_header_of_100000_columns_is_refused_at_once() -> None:
    data = (",".join(f"c{i}" for i in range(100_000)) + "\n1\n").encode()
    started = cpu()
    with pytest.raises(RejectedFile, match=r"row 1 has 100,000 columns.*max_columns"):
        parse_csv(data)
    assert cpu() - started < 1.0


def test_shared_strings_past_the_limit_are_counted_before_openpyxl_loads_them() -> None:
    limits = UploadLimits(max_shared_strings=1000)
    data = workbook(payroll_rows(2), shared_xml=shared_strings(1001))
    with pytest.raises(RejectedFile, match=r"more than 1,000 shared strings.*max_shared_strings"):
        parse_xlsx(data, limits=limits)
    assert parse_xlsx(workbook(payroll_rows(2), shared_xml=shared_strings(1000)), limits=limits).rows


def test_entity_expansion_is_refused() -> None:
    with pytest.raises(RejectedFile, match=r"shared strings are damaged or unsafe"):
        parse_xlsx(workbook(payroll_rows(2), shared_xml=BILLION_LAUGHS))


def test_cells_past_the_limit_are_refused_blank_rows_included() -> None:
    limits = UploadLimits(max_cells=500)
    blank_rows = [f'<row r="{n}"/>' for n in range(2, 600)]
    with pytest.raises(RejectedFile, match=r"more than 500 cells.*max_cells"):
        parse_xlsx(workbook([row_xml(1, HEADER.split(",")), *blank_rows]), limits=limits)
    with pytest.raises(RejectedFile, match=r"more than 500 cells.*max_cells"):
        parse_csv(csv_file(100), limits=limits)


@pytest.mark.parametrize(("numbers", "message"), [
    (["3", "2"], r"the row after row 3 is numbered 2"),
    (["2", "2"], r"the row after row 2 is numbered 2"),
    (["0"], r"the row after row 1 is numbered 0"),
    (["abc"], r"the row after row 1 has no usable row number"),
    (["1048577"], r"numbered 1048577"),
])
def test_rows_that_cannot_be_numbered_are_an_error_not_a_drop(numbers: list[str], message: str) -> None:
    rows = [row_xml(1, HEADER.split(","))]
    for i, number in enumerate(numbers):
        rows.append(f'<row r="{number}">' + "".join(
            f'<c t="inlineStr"><is><t>{v}</t></is></c>' for v in [f"E{i}", ppsn(3000000 + i), "A", "B", "1985-06-15",
                                                                     "2020-01-06", "3000", "monthly"]) + "</row>")
    with pytest.raises(RejectedFile, match=message):
        parse_xlsx(workbook(rows))


def test_rows_are_numbered_from_the_file_with_gaps_and_blank_lines() -> None:
    xlsx = parse_xlsx(workbook([row_xml(1, HEADER.split(",")), *payroll_rows(2, start=5)[1:]]))
    assert xlsx.numbers == [5, 6]
    text = "\n".join([HEADER, row(1), "", ",,,,,,,", row(2, first='"Mary\nAnn"'), row(3, gross="lots")])
    parsed = parse_csv((text + "\n").encode())
    assert parsed.numbers == [2, 5, 6]
    errors = validate(parsed, ON).errors
    # a quoted newline does not start a row, a blank line does: the bad pay is row 6, as a spreadsheet shows it
    assert {(e.row, e.rule) for e in errors} == {(6, "not_numeric")}


@pytest.mark.parametrize(("data", "message"), [
    (b"\xef\xbb\xbf" + HEADER.encode() + b"\n" + row(1).encode() + b"\n\xff\xfe bad\n", r"row 3 is not valid UTF-8"),
    ((HEADER + "\n" + row(1) + "\n").encode("utf-16") + b"\x00", r"not valid UTF-16"),
    (b"\xff\xfe" + (HEADER + "\n").encode("utf-16-le") + b"\x00\xd8A\x00", r"row 2 is not valid UTF-16"),
    (csv_file(3000) + b"E9,\x00\n", r"row 3002 contains a NUL"),
    (b"\xff\xfe" + (HEADER + "\n" + row(1) + "\x00\n").encode("utf-16-le"), r"row 2 contains a NUL"),
])
def test_decoding_errors_name_the_row(data: bytes, message: str) -> None:
    with pytest.raises(RejectedFile, match=message):
        parse_csv(data)


@pytest.mark.parametrize(("gross", "rule"), [
    ("10000000000", "out_of_range"), ("9e999999", "out_of_range"), ("-1e999999", "negative"), ("NaN", "not_numeric"),
    ("Infinity", "not_numeric"), ("١٢٣", "not_numeric"), ("３０００", "not_numeric"),
])
def test_money_is_bounded_by_its_column(gross: str, rule: str) -> None:
    result = validate(parse_csv(csv_file(0, [row(1, gross=gross)])), ON).results[0]
    assert [e.rule for e in result.errors] == [rule]


def test_a_vanishingly_small_amount_is_stored_as_cents() -> None:
    result = validate(parse_csv(csv_file(0, [row(1, gross="1e-999999")])), ON).results[0]
    assert result.errors == [] and result.gross == Decimal("0.00")


@pytest.mark.parametrize("value", ["١٢٣٤٥٦٧T", "１２３４５６７T", "1234567T\u200b", "123456７T", "1234567ı"])
def test_ppsn_digits_and_letters_are_ascii_only(value: str) -> None:
    assert ppsn_problem(value) is not None
    assert ppsn_problem("1234567T") is None  # the same PPSN in ASCII is valid


def test_check_returns_reports_rows_and_cpu() -> None:
    outcome = check(csv_file(5), "csv", "march.csv", "run-1", ON, UploadLimits())
    assert isinstance(outcome, Checked)
    assert set(outcome.reports) == {"summary.json", "errors.csv", "summary.pdf"} and outcome.cpu_seconds > 0
    refused = check(b"a,b\n1,2\n", "csv", "x.csv", "run-1", ON, UploadLimits())
    assert isinstance(refused, Refused) and "missing required columns" in refused.message
    assert refused.limits["max_cells"] == UploadLimits().max_cells


def test_redaction_blanks_the_employees_rows_and_keeps_the_others_numbers() -> None:
    target = ppsn(1000001)
    data = csv_file(3)
    redacted, blanked = redact(data, "csv", target.lower())
    assert blanked == 1 and target.encode() not in redacted
    parsed = parse_csv(redacted)
    assert parsed.numbers == [2, 4]
    xlsx = workbook(payroll_rows(3))
    redacted_xlsx, blanked = redact(xlsx, "xlsx", ppsn(2000001))
    assert blanked == 1 and parse_xlsx(redacted_xlsx).numbers == [2, 4]


@pytest.mark.parametrize("text", ["2020-01-06", "2020-13-01", "2020-02-30", "0000-01-01", "2020-1-6", "06/01/2020",
                                  "٢٠٢٠-٠١-٠٦", "2020-01-0a", "20200106", " 2020-01-06 ", "2020-W01-1", "1985-06-15"])
def test_the_iso_fast_path_reads_dates_as_strptime_does(text: str) -> None:
    from datetime import datetime

    from autoenroll.validation.engine import parse_date

    def slow(value: str) -> date | None:
        for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return datetime.strptime(value.strip(), fmt).date()
            except ValueError:
                continue
        return None

    assert parse_date(text) == slow(text)
