"""Upload -> validate -> report for hostile and broken files: a clear 4xx a person can act on, and
nothing half-written left behind (no orphan object, no run stuck "processing")."""

from __future__ import annotations

import csv
import io
import zipfile

import psycopg
import pytest

from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.payroll import HEADER, csv_file, ppsn, row

pytestmark = pytest.mark.integration


def footprint(sandbox: SandboxState, account: Account) -> tuple[int, int, int, int]:
    """Objects in the uploads bucket, and this tenant's uploads / runs / stuck runs."""
    s3 = c.s3_client(sandbox)
    objects = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="autoenroll-local-uploads"))
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        uploads, runs, stuck = conn.execute(
            "SELECT (SELECT count(*) FROM uploads WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM validation_runs WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM validation_runs WHERE status = 'processing')", {"t": account.tenant_id}).fetchone()  # type: ignore[misc]
    return objects, uploads, runs, stuck


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\x00" * (200 * 1024 * 1024))
    return buffer.getvalue()


def malformed_xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<not-a-workbook")
    return buffer.getvalue()


HOSTILE = [
    ("png-renamed.csv", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 415, "PNG image"),
    ("wrong-magic.xlsx", b"%PDF-1.4 not a workbook", 415, "PDF"),
    ("empty.csv", b"", 415, "empty"),
    ("header-only.csv", (HEADER + "\n").encode(), 422, "no employees"),
    ("missing-columns.csv", b"employee_id,ppsn\nE1,1234567T\n", 422, "missing required columns: first_name"),
    ("bomb.xlsx", zip_bomb(), 422, "zip bomb"),
    ("broken.xlsx", malformed_xlsx(), 422, "damaged"),
    ("huge.csv", b"a" * (10 * 1024 * 1024 + 1), 413, "10 MB"),
]


@pytest.mark.parametrize(("name", "content", "status", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_and_leave_nothing(sandbox: SandboxState, account: Account, name: str,
                                                     content: bytes, status: int, message: str) -> None:
    before = footprint(sandbox, account)
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": name}, content=content)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert footprint(sandbox, account) == before


def test_a_100000_row_file_is_validated_and_reported(sandbox: SandboxState, account: Account) -> None:
    content = csv_file(100_000)
    assert len(content) < 10 * 1024 * 1024
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "big.csv"},
                                   content=content, timeout=300)
    assert response.status_code == 201, response.text
    summary = response.json()["summary"]
    assert summary["rows"] == 100_000 and summary["errors"] == 0
    assert summary["eligibility"]["automatic"] == 100_000
    run = account.client.get(f"/api/runs/{response.json()['run_id']}", headers=account.auth).json()
    assert run["status"] == "completed"


def test_mixed_line_endings_quoted_newlines_and_formulas(sandbox: SandboxState, account: Account) -> None:
    lines = [HEADER, row(1), row(2, first="\"Mary\nAnn\""), row(3, gross="=HYPERLINK(\"http://evil\")"),
             row(4, first="@cmd"), row(5, last="+44"), row(6, frequency="-monthly")]
    content = (lines[0] + "\r\n" + lines[1] + "\n" + lines[2] + "\r\n" + "\n".join(lines[3:]) + "\r\n").encode()
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "mixed.csv"},
                                   content=content)
    assert response.status_code == 201, response.text
    summary = response.json()["summary"]
    assert summary["rows"] == 6
    run_id = response.json()["run_id"]
    report = account.client.get(f"/api/runs/{run_id}/report.csv", headers=account.auth)
    assert report.status_code == 200
    cells = [cell for record in csv.reader(io.StringIO(report.content.decode("utf-8-sig"))) for cell in record]
    assert any(cell.startswith("'=HYPERLINK") for cell in cells)
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    errors = account.client.get(f"/api/runs/{run_id}", headers=account.auth).json()["errors"]
    # Rows are records as a spreadsheet shows them: the quoted newline keeps "Mary\nAnn" in row 3.
    assert {(e["row"], e["column"], e["rule"]) for e in errors} >= {(4, "gross_pay", "not_numeric"),
                                                                   (7, "pay_frequency", "unknown_frequency")}
    pdf = account.client.get(f"/api/runs/{run_id}/report.pdf", headers=account.auth)
    assert pdf.content.startswith(b"%PDF")
    assert account.client.get(f"/api/runs/{run_id}/report.json", headers=account.auth).json()["rows"] == 6


def test_cells_that_copy_must_escape_are_stored_as_they_were(sandbox: SandboxState, account: Account) -> None:
    # The rows reach the database as COPY text: a tab, a backslash, a newline or a literal \N in a cell
    # must come back as written, not split a row, shift a column or turn into NULL.
    names = [("Tab\there", "back\\slash"), ("\\N", "line\nbreak"), ("carriage\rreturn", "plain")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)  # a lone \r is a record end unquoted
    writer.writerow(HEADER.split(","))
    for n, (first, last) in enumerate(names, start=1):
        writer.writerow([f"E{n}", ppsn(1000000 + n), first, last, "1985-06-15", "2020-01-06", "3000", "monthly"])
    writer.writerow(["E9", ppsn(1000009), "Aoife", "Byrne", "1985-06-15", "2020-01-06", "3000", "we\\ek\tly"])
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "escapes.csv"},
                                   content=out.getvalue().encode())
    assert response.status_code == 201, response.text
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        stored = conn.execute("SELECT first_name, last_name, pay_frequency, errors FROM employee_results"
                              " WHERE run_id = %s ORDER BY row_number", (response.json()["run_id"],)).fetchall()
    assert [(first, last) for first, last, _, _ in stored] == [*names, ("Aoife", "Byrne")]
    assert stored[3][2] == "we\\ek\tly"
    assert [e["rule"] for e in stored[3][3]] == ["unknown_frequency"]
    assert "we\\\\ek\\tly" in stored[3][3][0]["message"]  # the message quotes the value as Python's repr
