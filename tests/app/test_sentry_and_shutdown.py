"""Sentry events arrive scrubbed (a real sentry-sdk sending to an HTTP fake of Sentry's ingest on
loopback), and SIGTERM lets an in-flight request finish."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from autoenroll.sentry import FILTERED, before_send, scrub
from ops.paths import APP_DIR
from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from ops.tcp_ports import free_port

PII = {"ppsn": "1234567T", "email": "mary.murphy@example.ie", "dob": "1984-03-12",
       "db": "postgresql://app:s3cret-pw@db.internal:5432/main"}


@pytest.mark.unit
def test_before_send_scrubs_keys_and_values() -> None:
    event = {
        "message": f"bad row for {PII['ppsn']} ({PII['email']}), born {PII['dob']}",
        "extra": {"DATABASE_URL": PII["db"], "gross_pay": 41000, "row": {"first_name": "Mary"}},
        "request": {"headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"}},
        "exception": {"values": [{"value": f"connect failed: {PII['db']}"}]},
    }
    scrubbed = before_send(event, {})
    text = repr(scrubbed)
    for value in (*PII.values(), "Mary", "41000", "eyJ"):
        assert value not in text, value
    assert scrubbed is not None and scrubbed["extra"]["gross_pay"] == FILTERED
    assert scrub({"status": "processing"}) == {"status": "processing"}  # non-personal data survives


class _Ingest(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        _Ingest.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"id":"0"}')

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture()
def fake_sentry() -> Iterator[int]:
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Ingest.received = []
    yield port
    server.shutdown()


@pytest.mark.integration
def test_an_exception_with_pii_arrives_at_sentry_scrubbed(fake_sentry: int) -> None:
    script = f"""
import sentry_sdk
from autoenroll.sentry import init
assert init("http://publickey@127.0.0.1:{fake_sentry}/1", "test", "v1")
def validate(row):
    ppsn = row["ppsn"]
    raise ValueError("row 7: PPSN " + ppsn + " for " + row["email"] + " born " + row["dob"] + " via " + row["db"])
try:
    validate({PII!r})
except ValueError:
    sentry_sdk.capture_exception()
sentry_sdk.flush(5)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert _Ingest.received, "no event reached the fake Sentry"
    payload = b"".join(_Ingest.received).decode(errors="replace")
    assert "ValueError" in payload  # the event arrived
    for value in PII.values():
        assert value not in payload, f"{value} reached Sentry"


@pytest.mark.integration
def test_sigterm_lets_an_in_flight_upload_finish(sandbox: SandboxState) -> None:
    from tests.app.conftest import sign_up

    port = free_port()
    env = {**c.app_env(sandbox, "standby", "shutdown-test"), "PORT": str(port)}
    proc = subprocess.Popen(c.app_argv(), env=env, cwd=APP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(base + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as client:
            account = sign_up(client)

            def slow_body() -> Iterator[bytes]:
                from tests.app.payroll import HEADER, row

                yield (HEADER + "\n").encode()
                for n in range(20):
                    time.sleep(0.1)
                    if n == 3:
                        os.kill(proc.pid, signal.SIGTERM)  # the deploy stops this process mid-request
                    yield (row(n) + "\n").encode()

            response = client.post("/api/uploads", headers={**account.auth, "X-Filename": "slow.csv"},
                                   content=slow_body())
        assert response.status_code == 201, response.text
        # ...and then it exits by itself (uvicorn re-raises SIGTERM after its graceful shutdown).
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
