"""The employer's page end to end in headless Chromium (Debian's, driven by Playwright) against the
sandbox: sign up, upload a payroll file, read the summary and the row errors, download the PDF."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from ops.sandbox.state import SandboxState
from tests.app.payroll import HEADER, row

pytestmark = pytest.mark.integration
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_employer_uploads_a_file_and_reads_the_result(sandbox: SandboxState, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: bin/setup installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    payroll = tmp_path / "march.csv"
    payroll.write_text("\n".join([HEADER, row(1), row(2, gross="lots"), row(3, dob="1990-13-01")]) + "\n")
    email = f"page-{uuid.uuid4().hex[:8]}@example.ie"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(accept_downloads=True)
        page.goto(sandbox.public_url() + "/")
        page.fill("form[action='/signup'] input[name=company]", "Page Test Ltd")
        page.fill("form[action='/signup'] input[name=full_name]", "Pat Employer")
        page.fill("form[action='/signup'] input[name=email]", email)
        page.fill("form[action='/signup'] input[name=password]", "a long enough password")
        page.click("form[action='/signup'] button")
        page.wait_for_url("**/app")
        page.set_input_files("input[type=file]", str(payroll))
        page.click("form[action='/app/upload'] button")
        page.wait_for_url("**/app/runs/**")
        summary = page.inner_text("#summary")
        assert "3 employees checked" in summary and "2 rows with" in summary
        errors = page.inner_text("#errors")
        assert "gross_pay" in errors and "not_numeric" in errors and "date_of_birth" in errors
        page.screenshot(path=str(tmp_path / "result.png"), full_page=True)
        with page.expect_download() as download:
            page.click("text=PDF summary")
        pdf = Path(download.value.path())
        assert pdf.read_bytes().startswith(b"%PDF")
        page.click("text=Back")
        page.click("form[action='/logout'] button")
        page.goto(sandbox.public_url() + "/app")
        assert "Please sign in" in page.content()
        browser.close()


def test_hostile_file_through_the_page_gets_a_clear_message(sandbox: SandboxState, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    fake = tmp_path / "payroll.csv"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32)
    email = f"page-{uuid.uuid4().hex[:8]}@example.ie"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(sandbox.public_url() + "/")
        for field, value in (("company", "X Ltd"), ("full_name", "X"), ("email", email),
                             ("password", "a long enough password")):
            page.fill(f"form[action='/signup'] input[name={field}]", value)
        page.click("form[action='/signup'] button")
        page.wait_for_url("**/app")
        page.set_input_files("input[type=file]", str(fake))
        page.click("form[action='/app/upload'] button")
        assert "PNG image" in page.inner_text("[role=alert]")
        browser.close()
