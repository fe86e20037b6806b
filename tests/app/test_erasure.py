"""Erasing one employee leaves no stored object holding their PPSN: the uploads bucket is read back,
object by object (workbooks unpacked), after the API answers `erased: true`."""

from __future__ import annotations

import io
import zipfile

import httpx
import psycopg
import pytest

from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.hostile_files import payroll_rows, row_xml, workbook
from tests.app.payroll import HEADER, ppsn, row

pytestmark = pytest.mark.integration
BUCKET = "autoenroll-local-uploads"


def texts(body: bytes) -> list[bytes]:
    if zipfile.is_zipfile(io.BytesIO(body)):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return [archive.read(name) for name in archive.namelist()]
    return [body]


def objects_holding(sandbox: SandboxState, value: str, prefixes: list[str]) -> list[str]:
    """Every object under `prefixes` (the tenant's uploads and reports) whose bytes spell `value`."""
    s3 = c.s3_client(sandbox)
    found = []
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
                if any(value.encode(codec) in part.upper() for part in texts(body)
                       for codec in ("utf-8", "utf-16-le")):
                    found.append(item["Key"])
    return found


def test_erasing_an_employee_leaves_no_object_with_their_ppsn(sandbox: SandboxState, account: Account) -> None:
    target = ppsn(1000002)  # row(2)'s PPSN

    def upload(name: str, content: bytes) -> httpx.Response:
        return account.client.post("/api/uploads", headers={**account.auth, "X-Filename": name}, content=content)

    # A CSV where they have an error (duplicated: the message and the errors report quote the PPSN),
    # a workbook, a UTF-16 file, and a file with no one else in it.
    csv_lines = [HEADER, row(1), row(2), row(3), row(2).replace("E2,", "E9,")]
    runs = [upload("march.csv", ("\n".join(csv_lines) + "\n").encode()),
            upload("april.xlsx", workbook([row_xml(1, HEADER.split(",")), row_xml(2, row(2).split(",")),
                                           *payroll_rows(2, start=3)[1:]])),
            upload("may.csv", ("\n".join([HEADER, row(2), row(4)]) + "\n").encode("utf-16")),
            upload("alone.csv", ("\n".join([HEADER, row(2)]) + "\n").encode())]
    assert [r.status_code for r in runs] == [201] * 4, [r.text for r in runs]
    march = account.client.get(f"/api/runs/{runs[0].json()['run_id']}/report.csv", headers=account.auth)
    assert target in march.text  # the errors report quoted them before
    prefixes = [p for r in runs for p in (f"compliance-evidence/{r.json()['id']}", f"reports/{r.json()['run_id']}/")]
    before = set(objects_holding(sandbox, target, prefixes))
    assert {f"compliance-evidence/{r.json()['id']}" for r in runs} | {
        f"reports/{runs[0].json()['run_id']}/errors.csv", f"reports/{runs[0].json()['run_id']}/summary.pdf"} <= before

    report = account.client.delete(f"/api/employees/{target.lower()}", headers=account.auth)
    assert report.status_code == 200, report.text
    answer = report.json()
    assert answer["erased"] is True and answer["remaining_objects"] == [] and answer["deleted_rows"] == 5
    assert list(answer["removed_files"]) == [f"compliance-evidence/{runs[3].json()['id']}"]
    assert objects_holding(sandbox, target, prefixes) == []

    # Everyone else is still there, on the rows the employer's file numbers them.
    after = account.client.get(f"/api/runs/{runs[0].json()['run_id']}", headers=account.auth).json()
    assert after["summary"]["rows"] == 2 and after["summary"]["errors"] == 0
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        numbers = conn.execute("SELECT row_number FROM employee_results WHERE run_id = %s ORDER BY 1",
                               (runs[0].json()["run_id"],)).fetchall()
        total, quota_bytes = conn.execute(
            "SELECT (SELECT sum(size_bytes) FROM uploads WHERE tenant_id = %(t)s),"
            " (SELECT count(*) FROM uploads WHERE tenant_id = %(t)s)", {"t": account.tenant_id}).fetchone()  # type: ignore[misc]
    assert numbers == [(2,), (4,)] and quota_bytes == 3
    evidence = account.client.get(f"/api/uploads/{runs[0].json()['id']}/download", headers=account.auth).json()
    kept = httpx.get(evidence["url"], timeout=10).content.decode()
    assert ppsn(1000001) in kept and ppsn(1000003) in kept and total > 0
