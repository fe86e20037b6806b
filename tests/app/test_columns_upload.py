"""The column table through the API and the page, against the sandbox: every pension spelling is read,
an unknown pension-looking column is a 422 naming it, and a column map (header or the page's form) fixes it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from autoenroll.validation.columns import FIELDS
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.test_columns import with_flag
from tests.app.test_employer_page import CHROMIUM, FLAGS

pytestmark = pytest.mark.integration
EVERYONE_ENROLLED_BUT_MEMBERS = {"automatic": 800, "may_opt_in": 0, "excluded": 200, "invalid": 0}
UNKNOWN = "Member of Company Pension Plan"


def upload(account: Account, data: bytes, **headers: str) -> tuple[int, dict[str, object]]:
    response = account.client.post("/api/uploads", content=data,
                                   headers={**account.auth, "X-Filename": "payroll.csv", **headers})
    return response.status_code, response.json()


def runs(account: Account) -> int:
    return len(account.client.get("/api/uploads", headers=account.auth).json()["items"])


def test_every_pension_spelling_uploaded_classifies_no_member_as_automatic(sandbox: SandboxState,
                                                                          account: Account) -> None:
    for header in FIELDS["in_pension"].spellings:
        status, body = upload(account, with_flag(header))
        assert status == 201, body
        summary = body["summary"]
        assert isinstance(summary, dict)
        assert summary["eligibility"] == EVERYONE_ENROLLED_BUT_MEMBERS, header
        assert summary["columns"]["in_pension"] == header


def test_an_unknown_pension_column_is_refused_until_a_column_map_names_it(sandbox: SandboxState,
                                                                         account: Account) -> None:
    data = with_flag(UNKNOWN)
    status, body = upload(account, data)
    assert status == 422 and f"'{UNKNOWN}'" in str(body["error"])
    assert body["unrecognised_columns"] == [{"column": UNKNOWN, "could_be": ["in_pension"],
                                             "accepted": {"in_pension": list(FIELDS["in_pension"].spellings)}}]
    assert runs(account) == 0  # refused before anything was stored

    for bad, message in ((json.dumps({"pension_flag": UNKNOWN}), "'pension_flag'"),
                         (json.dumps({"in_pension": "Scheme Flag"}), "does not have: 'Scheme Flag'"),
                         ("{in_pension: x}", "not JSON")):
        status, body = upload(account, data, **{"X-Column-Map": bad})
        assert status == 422 and message in str(body["error"]), body

    status, body = upload(account, data, **{"X-Column-Map": json.dumps({"in_pension": UNKNOWN})})
    assert status == 201, body
    summary = body["summary"]
    assert isinstance(summary, dict) and summary["eligibility"] == EVERYONE_ENROLLED_BUT_MEMBERS
    stored = account.client.get(f"/api/runs/{body['run_id']}/report.json", headers=account.auth).json()
    assert stored["columns"]["in_pension"] == UNKNOWN and stored["columns_mapped"] == ["in_pension"]


def test_a_column_map_header_may_carry_raw_utf8(sandbox: SandboxState, account: Account) -> None:
    header = "Pinsean Ceirde (Sí/Ní)"  # no spelling in the table, but it mentions nothing the check reads
    mapping = json.dumps({"in_pension": header}, ensure_ascii=False).encode()
    response = account.client.post("/api/uploads", content=with_flag(header, rows=10),
                                   headers=[(b"Authorization", account.auth["Authorization"].encode()),
                                            (b"X-Column-Map", mapping)])
    assert response.status_code == 201, response.text
    assert response.json()["summary"]["columns"]["in_pension"] == header
    assert response.json()["summary"]["eligibility"]["excluded"] == 2


def test_the_page_offers_the_mapping_when_a_column_is_unrecognised(sandbox: SandboxState, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    payroll = tmp_path / "export.csv"
    payroll.write_bytes(with_flag(UNKNOWN))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(sandbox.public_url() + "/")
        email = f"cols-{uuid.uuid4().hex[:8]}@example.ie"
        for field, value in (("company", "Columns Ltd"), ("full_name", "Pat"), ("email", email),
                             ("password", "a long enough password")):
            page.fill(f"form[action='/signup'] input[name={field}]", value)
        page.click("form[action='/signup'] button")
        page.wait_for_url("**/app")
        assert "occ pension member" in (page.locator("#columns-help").text_content() or "")
        page.set_input_files("form[action='/app/upload'] input[type=file]", str(payroll))
        page.click("form[action='/app/upload'] button")
        assert UNKNOWN in page.inner_text("[role=alert]")
        form = page.locator("#column-map form")
        assert UNKNOWN in form.inner_text()
        form.locator("select").select_option("in_pension")
        form.locator("input[type=file]").set_input_files(str(payroll))
        form.locator("button").click()
        page.wait_for_url("**/app/runs/**")
        assert "excluded: 200" in page.inner_text("#summary") and "automatic: 800" in page.inner_text("#summary")
        assert f"{UNKNOWN} (your column map)" in page.inner_text("#columns")
        browser.close()
