"""Every API route, sent malformed parameters and bodies of the wrong type, through Caddy to the
real app: a 4xx whose body names the field, never a 5xx; and an unexpected error is still a JSON 500
with the request id, logged with the id and the traceback."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from autoenroll.logs import JsonFormatter
from autoenroll.main import unexpected
from autoenroll.middleware import RequestContextMiddleware
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.payroll import csv_file

GOOD = {"company": "Acme", "full_name": "Úna Owner", "email": "x@example.ie", "password": "a long enough password"}
RUN = str(uuid.uuid4())

# (method, path, json body or None, query, the field the 4xx must name)
CASES: list[tuple[str, str, Any, dict[str, str] | None, str]] = [
    ("POST", "/api/signup", {**GOOD, "company": 12}, None, "company"),
    ("POST", "/api/signup", {**GOOD, "email": ["x@example.ie"]}, None, "email"),
    ("POST", "/api/signup", {**GOOD, "email": {"a": "x@example.ie"}}, None, "email"),
    ("POST", "/api/signup", {**GOOD, "email": "x" * 300 + "@example.ie"}, None, "email"),
    ("POST", "/api/signup", {**GOOD, "email": "not an address"}, None, "email"),
    ("POST", "/api/signup", {**GOOD, "full_name": "Úna\x00Owner"}, None, "full_name"),
    ("POST", "/api/signup", {**GOOD, "password": "short"}, None, "password"),
    ("POST", "/api/signup", {**GOOD, "password": None}, None, "password"),
    ("POST", "/api/signup", {**GOOD, "role": "admin"}, None, "role"),
    ("POST", "/api/signup", [GOOD], None, "body"),
    ("POST", "/api/signup", "[" * 100_000, None, "body"),
    ("POST", "/api/auth/login", {"email": 5, "password": "a long enough password"}, None, "email"),
    ("POST", "/api/auth/login", {"email": "x@example.ie", "password": {"$ne": ""}}, None, "password"),
    ("POST", "/api/auth/login", {"email": "x@example.ie"}, None, "password"),
    ("PATCH", "/api/tenant", {"name": 5}, None, "name"),
    ("PATCH", "/api/tenant", {"name": "Acme\x00"}, None, "name"),
    ("PATCH", "/api/tenant", {"name": "A" * 201}, None, "name"),
    ("PATCH", "/api/tenant", {"name": ""}, None, "name"),
    ("GET", "/api/uploads", None, {"offset": "abc"}, "offset"),
    ("GET", "/api/uploads", None, {"offset": "-1"}, "offset"),
    ("GET", "/api/uploads", None, {"offset": str(10 ** 30)}, "offset"),
    ("GET", "/api/uploads", None, {"limit": "0"}, "limit"),
    ("GET", "/api/uploads", None, {"limit": "1.5"}, "limit"),
    ("POST", "/api/uploads/presign", {"size_bytes": "10"}, None, "size_bytes"),
    ("POST", "/api/uploads/presign", {"size_bytes": -1}, None, "size_bytes"),
    ("POST", "/api/uploads/presign", {}, None, "size_bytes"),
    ("POST", "/api/uploads/presign", {"size_bytes": 10 ** 12}, None, "size_bytes"),
    ("GET", f"/api/uploads/{RUN}/download", None, None, "upload_id"),
    ("GET", f"/api/runs/{RUN}", None, {"offset": "abc"}, "offset"),
    ("GET", f"/api/runs/{RUN}", None, {"offset": "-1"}, "offset"),
    ("GET", f"/api/runs/{RUN}", None, None, "run_id"),
    ("GET", f"/api/runs/{RUN}/report.exe", None, None, "kind"),
    ("DELETE", "/api/employees/" + "1" * 21, None, None, "ppsn"),
    ("DELETE", "/api/employees/123%00T", None, None, "ppsn"),
]


@pytest.mark.integration
def test_each_route_names_the_wrong_field(sandbox: SandboxState, account: Account) -> None:
    failures = []
    limits = redis.Redis.from_url(sandbox.redis_url())
    for method, path, body, query, field in CASES:
        for key in limits.scan_iter("rate:*"):  # sign-up allows 10 a minute from one address
            limits.delete(key)
        content = body if isinstance(body, str) else None
        response = account.client.request(method, path, headers={**account.auth, "Content-Type": "application/json"},
                                          json=None if content is not None else body, content=content, params=query)
        named = response.headers.get("content-type", "").startswith("application/json") and (
            response.json().get("field") == field)
        if not (400 <= response.status_code < 500 and named):
            failures.append((method, path, body if not isinstance(body, str) else body[:10], query,
                             response.status_code, response.text[:200]))
    assert failures == []


@pytest.mark.integration
def test_uploads_with_hostile_names_and_values_are_4xx_or_stored(account: Account) -> None:
    numbers = ["10000000000", "9e999999", "1e-999999", "NaN", "-0", "1" * 5000, "١٢٣"]
    content = csv_file(0, [f"E{i},{'1234567T' if i == 0 else '١٢٣٤٥٦٧T'},A,B,1985-06-15,2020-01-06,{n},monthly"
                           for i, n in enumerate(numbers)])
    stored = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": 'a"b;\tc.csv'},
                                 content=content)
    assert stored.status_code == 201, stored.text
    summary = stored.json()["summary"]
    assert summary["rows"] == len(numbers) and summary["rows_with_errors"] >= 5
    listed = account.client.get("/api/uploads", headers=account.auth).json()["items"]
    assert listed[0]["filename"] == "a_b;_c.csv"
    url = account.client.get(f"/api/uploads/{stored.json()['id']}/download", headers=account.auth).json()["url"]
    disposition = httpx.get(url, timeout=10).headers["content-disposition"]
    assert disposition.startswith('attachment; filename="a_b;_c.csv"')
    # Written by hand: httpx would percent-encode the NUL and the quote a hostile client sends as they are.
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="march\x00\x07.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n" + csv_file(2) + b"\r\n--b0undary--\r\n")
    page = account.client.post("/app/upload", follow_redirects=False, content=body,
                               headers={"Content-Type": "multipart/form-data; boundary=b0undary",
                                        "Cookie": f"ae_token={account.token}"})
    assert page.status_code == 303, page.text
    names = [i["filename"] for i in account.client.get("/api/uploads", headers=account.auth).json()["items"]]
    assert "march__.csv" in names


class Lines(logging.Handler):
    """The JSON lines as the app writes them, formatted when logged (the request id is set only then)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


def test_an_unexpected_error_is_a_json_500_logged_with_its_request_id() -> None:
    async def boom(_request: Request) -> Response:
        raise RuntimeError("payroll row 1234567T broke")

    app = RequestContextMiddleware(Starlette(routes=[Route("/boom", boom)], exception_handlers={Exception: unexpected}))
    handler, logger = Lines(), logging.getLogger("autoenroll.access")
    logger.addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:  # type: ignore[arg-type]
            response = client.get("/boom", headers={"X-Request-ID": "req-42"})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 500 and response.json()["request_id"] == "req-42"
    entries = [line for line in handler.lines if "traceback" in line]
    assert len(entries) == 1 and entries[0]["request_id"] == "req-42"
    assert "RuntimeError" in entries[0]["traceback"] and "1234567T" not in entries[0]["traceback"]  # scrubbed
