"""The column table (validation/columns.py): every accepted spelling is read, a column that looks like a field
but isn't in the table is refused, yes/no values are strict, and a column map makes any header usable."""

from __future__ import annotations

import io
import json
from datetime import date

import openpyxl
import pytest

from autoenroll.files import RejectedFile
from autoenroll.validation import columns
from autoenroll.validation.columns import FIELDS, BadColumnMap, ColumnMap, UnrecognisedColumns, column_map
from autoenroll.validation.engine import Validation, validate
from autoenroll.validation.parse import parse_csv, parse_xlsx
from autoenroll.validation.reports import errors_csv
from ops.paths import REPO_ROOT
from tests.app.payroll import HEADER, ppsn, row

pytestmark = pytest.mark.unit
ON = date(2026, 11, 21)
MEMBER_VALUES = ("yes", "Y", "TRUE", "1")
OTHER_VALUES = ("no", "N", "False", "0")


def with_flag(header: str, rows: int = 1000, every: int = 5) -> bytes:
    """`rows` employees who would all be enrolled automatically, every `every`th of them flagged in `header`."""
    lines = [f"{HEADER},{header}"]
    for i in range(rows):
        values = MEMBER_VALUES if i % every == 0 else OTHER_VALUES
        lines.append(f"{row(i)},{values[i % len(values)]}")
    return ("\n".join(lines) + "\n").encode()


def check(data: bytes, mapping: ColumnMap | None = None) -> Validation:
    return validate(parse_csv(data, mapping), ON)


def exported(spelling: str) -> str:
    """The spelling as a payroll export might write it: capitalised words, spaces, a full stop."""
    return " ".join(w.capitalize() for w in spelling.replace("_", " ").split()) + "."


PENSION = FIELDS["in_pension"].spellings


@pytest.mark.parametrize("header", [*PENSION, *map(exported, PENSION)])
def test_every_pension_spelling_excludes_every_member(header: str) -> None:
    validation = check(with_flag(header))
    members = [r for r in validation.results if r.row % 5 == 2]  # row n+2 holds employee n
    assert len(members) == 200
    assert all(r.eligibility == "excluded" and "pension" in r.reason for r in members)
    assert validation.summary()["eligibility"] == {"automatic": 800, "may_opt_in": 0, "excluded": 200, "invalid": 0}
    assert validation.summary()["columns"]["in_pension"] == header


@pytest.mark.parametrize(("field", "header"), [(f.name, s) for f in FIELDS.values() for s in f.spellings])
def test_every_spelling_in_the_table_reads_its_field(field: str, header: str) -> None:
    names = HEADER.split(",")
    if field in names:
        names[names.index(field)] = exported(header)
    else:
        names.append(exported(header))
    resolved = columns.resolve(names)
    assert resolved.sources[field] == exported(header)
    assert resolved.warnings == []


def test_a_real_export_header_is_read_whatever_its_punctuation() -> None:
    header = ("Employee No,PPS Number,Forename,Surname,D.O.B.,Date Joined,Gross Pay (EUR),Pay Period,"
              "Occ Pension Member,PRSI-Exempt,Employment Type,Department")
    lines = [header, f"E1,{ppsn(1)},Aoife,Byrne,15/06/1985,06/01/2020,\"3,000.00\",monthly,N,no,Company Director,Sales",
             f"E2,{ppsn(2)},Seán,Ó Sé,1985-06-15,2020-01-06,lots,monthly,Y,n,employee,Sales"]
    validation = check(("\n".join(lines) + "\n").encode())
    summary = validation.summary()
    assert summary["columns"] == {"employee_id": "Employee No", "ppsn": "PPS Number", "first_name": "Forename",
                                  "last_name": "Surname", "date_of_birth": "D.O.B.", "employment_start": "Date Joined",
                                  "gross_pay": "Gross Pay (EUR)", "pay_frequency": "Pay Period", "email": None,
                                  "ytd_13_week_gross": None, "in_pension": "Occ Pension Member",
                                  "prsi_exempt": "PRSI-Exempt", "director": None, "employment_type": "Employment Type"}
    assert summary["warnings"] == ["ignored extra columns: Department"]
    first, second = validation.results
    assert (first.eligibility, first.reason) == ("excluded", "company directors are not automatically enrolled")
    # An error names the column as the file spells it; the errors CSV still carries the cell's value.
    assert [(e.row, e.column, e.rule) for e in second.errors] == [(3, "Gross Pay (EUR)", "not_numeric")]
    assert "3,Gross Pay (EUR),not_numeric,gross pay is not a number,lots" in errors_csv(validation).decode("utf-8-sig")


@pytest.mark.parametrize(("value", "expected"), [
    ("yes", True), ("YES", True), ("Yes", True), ("y", True), ("Y", True), ("true", True), ("TRUE", True),
    ("1", True), (" yes ", True), ("no", False), ("NO", False), ("n", False), ("N", False), ("false", False),
    ("False", False), ("0", False), ("maybe", None), ("", None), ("2", None), ("yes please", None), ("t", None),
    ("nope", None), ("-", None),
])
def test_yes_no_values(value: str, expected: bool | None) -> None:
    assert columns.yes_no(value) is expected
    validation = check(f"{HEADER},Pension Scheme,PRSI Exempt\n{row(1)},{value},no\n{row(2)},no,{value}\n".encode())
    pension, prsi = validation.results
    if expected is None:  # never read as "no": the row is an error naming row, column and value
        assert [(e.row, e.column, e.rule) for e in pension.errors] == [(2, "Pension Scheme", "not_yes_no")]
        assert [(e.row, e.column, e.rule) for e in prsi.errors] == [(3, "PRSI Exempt", "not_yes_no")]
        assert repr(value) in pension.errors[0].message and pension.eligibility == "invalid"
    else:
        assert pension.errors == [] and prsi.errors == []
        assert (pension.eligibility == "excluded") is expected and (prsi.eligibility == "excluded") is expected


@pytest.mark.parametrize(("value", "excluded"), [("Director", True), ("company director", True),
                                                 ("Self Employed", True), ("self-employed", True),
                                                 ("employee", False), ("", False)])
def test_employment_types_that_exclude(value: str, excluded: bool) -> None:
    result = check(f"{HEADER},Employment Type\n{row(1)},{value}\n".encode()).results[0]
    assert (result.eligibility == "excluded") is excluded


def test_a_director_column_excludes_directors() -> None:
    validation = check(f"{HEADER},Company Director\n{row(1)},Y\n{row(2)},N\n".encode())
    assert [r.eligibility for r in validation.results] == ["excluded", "automatic"]


@pytest.mark.parametrize("header", ["Member of Company Pension Plan", "Scheme Flag", "PRSA Contributor",
                                    "PPS Ref", "Gross Pay YTD", "Birth Place", "Start of Service", "PRSI Class",
                                    "Directorship", "Payment Method"])
def test_a_column_that_looks_like_a_field_is_refused_naming_it(header: str) -> None:
    data = f"{HEADER},{header}\n{row(1)},x\n".encode()
    with pytest.raises(UnrecognisedColumns) as caught:
        parse_csv(data)
    assert f"'{header}'" in str(caught.value)
    detail = caught.value.detail()["unrecognised_columns"]
    assert [d["column"] for d in detail] == [header]
    for field in detail[0]["could_be"]:  # the message lists each candidate field's accepted names
        assert ", ".join(FIELDS[field].spellings) in str(caught.value)


def test_unrelated_extra_columns_stay_a_warning() -> None:
    parsed = parse_csv(f"{HEADER},Department,Cost Centre\n{row(1)},Sales,CC1\n".encode())
    assert parsed.warnings == ["ignored extra columns: Department, Cost Centre"]


def test_a_column_map_reads_any_header_and_the_report_says_so() -> None:
    data = with_flag("Member of Company Pension Plan")
    with pytest.raises(UnrecognisedColumns):
        parse_csv(data)
    validation = check(data, column_map('{"in_pension": "Member of Company Pension Plan"}'))
    summary = validation.summary()
    assert summary["eligibility"] == {"automatic": 800, "may_opt_in": 0, "excluded": 200, "invalid": 0}
    assert summary["columns"]["in_pension"] == "Member of Company Pension Plan"
    assert summary["columns_mapped"] == ["in_pension"]


def test_a_column_map_can_ignore_a_lookalike_and_override_the_table() -> None:
    data = f"{HEADER},Country of Birth,Pension,Scheme Y/N\n{row(1)},IE,maybe,Y\n".encode()
    mapping = column_map(json.dumps({"ignore": ["Country of Birth"], "in_pension": "Scheme Y/N"}))
    validation = check(data, mapping)
    assert validation.results[0].eligibility == "excluded" and validation.errors == []
    assert validation.summary()["columns"]["in_pension"] == "Scheme Y/N"
    assert any("'Pension' (the column map reads in_pension from 'Scheme Y/N')" in w for w in validation.warnings)


@pytest.mark.parametrize(("raw", "message"), [
    ('{"in_pensions": "Scheme"}', "fields the check does not read: 'in_pensions'"),
    ("not json", "not JSON"), ('["in_pension"]', "must be a JSON object"),
    ('{"in_pension": 1}', "give each field a column name"), ('{"ignore": "x"}', "must be a list"),
    ('{"in_pension": "A", "prsi_exempt": "A"}', "more than one thing: 'A'"),
])
def test_bad_column_maps_name_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(BadColumnMap, match=message):
        column_map(raw)


def test_a_column_map_naming_a_column_the_file_lacks_is_refused() -> None:
    with pytest.raises(BadColumnMap, match="columns the file does not have: 'Scheme Flag'"):
        parse_csv(f"{HEADER}\n{row(1)}\n".encode(), column_map('{"in_pension": "Scheme Flag"}'))


def test_two_columns_for_one_field_are_refused() -> None:
    with pytest.raises(RejectedFile, match="'Start Date', 'Date Joined' are all employment_start"):
        parse_csv(f"{HEADER.replace('employment_start', 'Start Date')},Date Joined\n{row(1)},2020-01-01\n".encode())


def test_missing_required_columns_list_their_accepted_names() -> None:
    with pytest.raises(RejectedFile, match=r"missing required columns: pay_frequency .*pay period"):
        parse_csv(f"{HEADER.replace(',pay_frequency', '')}\n{row(1).rsplit(',', 1)[0]}\n".encode())


def test_the_docs_and_the_page_are_generated_from_the_table() -> None:
    readme = (REPO_ROOT / "docs" / "app.md").read_text()
    assert columns.START in readme, "docs/app.md has lost its generated column table"
    assert columns.with_readme_section(readme) == readme, \
        "docs/app.md's column table is stale: run .venv/bin/python -m autoenroll.validation.columns docs/app.md"
    help_html = columns.html_help()
    for f in FIELDS.values():
        assert all(s in readme and s in help_html for s in f.spellings[1:]), f.name


def test_a_required_field_under_an_unknown_name_is_offered_for_mapping() -> None:
    data = f"{HEADER.replace('employee_id', 'Worker Ref')},Department\n{row(1)},Sales\n".encode()
    with pytest.raises(UnrecognisedColumns, match="missing required columns: employee_id") as caught:
        parse_csv(data)
    assert [(d["column"], d["could_be"]) for d in caught.value.detail()["unrecognised_columns"]] == [
        ("Worker Ref", ["employee_id"]), ("Department", ["employee_id"])]
    parsed = parse_csv(data, column_map('{"employee_id": "Worker Ref", "ignore": ["Department"]}'))
    assert parsed.rows[0]["employee_id"] == "E1" and parsed.sources["employee_id"] == "Worker Ref"


def test_a_hostile_header_gets_a_short_answer() -> None:
    header = ",".join([HEADER, "pension " + "x" * 100_000, *(f"pay {i}" for i in range(1000))])
    with pytest.raises(UnrecognisedColumns) as caught:
        parse_csv(f"{header}\n{row(1)}\n".encode())
    assert len(str(caught.value)) < 5000 and "and 991 more" in str(caught.value)
    assert len(caught.value.detail()["unrecognised_columns"]) == columns.MAX_OFFERED


def test_an_excel_export_with_renamed_headers_and_boolean_cells() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Employee No", "PPS Number", "Forename", "Surname", "Date of Birth", "Start Date",
                  "Gross Pay (EUR)", "Pay Period", "Occ Pension Member", "PRSI Exempt"])
    for n, (member, exempt) in enumerate(((True, False), (False, False), (1, 0), (0, "maybe"))):
        sheet.append([f"E{n}", ppsn(1000000 + n), "Aoife", "Byrne", date(1985, 6, 15), date(2020, 1, 6), 3000.0,
                      "Monthly", member, exempt])
    buffer = io.BytesIO()
    workbook.save(buffer)
    validation = validate(parse_xlsx(buffer.getvalue()), ON)
    assert [r.eligibility for r in validation.results] == ["excluded", "automatic", "excluded", "invalid"]
    assert [(e.row, e.column, e.rule) for e in validation.errors] == [(5, "PRSI Exempt", "not_yes_no")]
    assert validation.summary()["columns"]["in_pension"] == "Occ Pension Member"
