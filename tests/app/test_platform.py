"""The app's platform against the sandbox's real PostgreSQL, Redis and S3: auth and Redis keys,
rate limits, the cache, object storage, tenant isolation through the API, GDPR erasure."""

from __future__ import annotations

import io

import httpx
import psycopg
import pytest
import redis

from ops.sandbox import components as c
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account, sign_up
from tests.app.payroll import HEADER, csv_file

pytestmark = pytest.mark.integration


def r(sandbox: SandboxState) -> redis.Redis:
    return redis.Redis.from_url(sandbox.redis_url(), decode_responses=True)


def xlsx_bytes() -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER.split(","))
    for line in csv_file(3).decode().splitlines()[1:]:
        sheet.append(line.split(","))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_session_and_logout_revocation_use_the_domain_keys(sandbox: SandboxState, account: Account) -> None:
    store = r(sandbox)
    assert 1790 <= store.ttl(f"session:{account.user_id}") <= 1800
    assert account.client.get("/api/me", headers=account.auth).status_code == 200
    jti = store.get(f"session:{account.user_id}")
    assert jti and "jti" in jti
    assert account.client.post("/api/auth/logout", headers=account.auth).status_code == 204
    revoked = [k for k in store.scan_iter("blacklist:*") if store.ttl(k) > 0]
    assert revoked, "logout must write blacklist:{jti} with a TTL"
    assert all(0 < store.ttl(k) <= 1800 for k in revoked)
    after = account.client.get("/api/me", headers=account.auth)
    assert after.status_code == 401 and "revoked" in after.json()["error"]


def test_a_forged_or_missing_token_is_refused(api: httpx.Client) -> None:
    assert api.get("/api/me").status_code == 401
    assert api.get("/api/me", headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x"}).status_code == 401


def test_login_rate_limit_answers_429_with_retry_after(sandbox: SandboxState, api: httpx.Client) -> None:
    statuses = [api.post("/api/auth/login", json={"email": "nobody@example.ie", "password": "wrong password!!"})
                for _ in range(11)]
    assert [s.status_code for s in statuses[:10]] == [401] * 10
    assert statuses[10].status_code == 429
    assert 1 <= int(statuses[10].headers["retry-after"]) <= 60
    keys = list(r(sandbox).scan_iter("rate:*:/api/auth/login"))
    assert keys and all(0 < r(sandbox).ttl(k) <= 60 for k in keys)


def test_cache_is_invalidated_on_write_and_correct_when_flushed(sandbox: SandboxState, account: Account) -> None:
    store = r(sandbox)
    cache_key = f"cache:tenant:{account.tenant_id}"
    assert account.client.get("/api/me", headers=account.auth).json()["tenant"]["name"] == "Acme Payroll Ltd"
    assert store.exists(cache_key)
    renamed = account.client.patch("/api/tenant", headers=account.auth, json={"name": "Acme Renamed Ltd"})
    assert renamed.json()["name"] == "Acme Renamed Ltd"
    assert account.client.get("/api/me", headers=account.auth).json()["tenant"]["name"] == "Acme Renamed Ltd"
    store.delete(cache_key)  # a flushed cache: slower, never wrong
    assert account.client.get("/api/me", headers=account.auth).json()["tenant"]["name"] == "Acme Renamed Ltd"


def test_uploads_are_stored_under_uuid_keys_with_the_name_as_metadata(sandbox: SandboxState,
                                                                      account: Account) -> None:
    content = csv_file(2)
    created = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "Payroll March.csv"},
                                  content=content)
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    s3 = c.s3_client(sandbox)
    head = s3.head_object(Bucket="autoenroll-local-uploads", Key=f"compliance-evidence/{upload_id}")
    assert head["Metadata"]["original-filename"] == "Payroll March.csv"
    url = account.client.get(f"/api/uploads/{upload_id}/download", headers=account.auth).json()["url"]
    assert httpx.get(url, timeout=10).content == content
    xlsx = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "p.xlsx"}, content=xlsx_bytes())
    assert xlsx.status_code == 201 and xlsx.json()["kind"] == "xlsx"


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 415, "empty"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "PNG"),
        (b"PK\x03\x04not really a zip", 422, "damaged"),
        (b"%PDF-1.7\n", 415, "PDF"),
    ],
)
def test_magic_bytes_decide_not_the_name(account: Account, content: bytes, status: int, message: str) -> None:
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "payroll.csv",
                                                             "Content-Type": "text/csv"}, content=content)
    assert response.status_code == status and message in response.json()["error"]


def test_size_limit_and_tenant_quota(sandbox: SandboxState, account: Account) -> None:
    too_big = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "big.csv"},
                                  content=b"a,b\n" * (10 * 1024 * 1024 // 4 + 1))
    assert too_big.status_code == 413 and "10 MB" in too_big.json()["error"]
    small = csv_file(1)
    first = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "a.csv"}, content=small)
    assert first.status_code == 201
    with psycopg.connect(sandbox.database_url("main", admin=True), autocommit=True) as conn:
        reports = conn.execute("SELECT report_bytes FROM validation_runs WHERE id = %s",
                               (first.json()["run_id"],)).fetchone()
        assert reports is not None and reports[0] > 0  # the stored reports count, not only the upload
        # Room for one more upload of the file, but not for its reports as well.
        conn.execute("UPDATE tenants SET storage_quota_bytes = %s WHERE id = %s",
                     (2 * len(small) + reports[0] + 10, account.tenant_id))
    second = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "b.csv"}, content=small)
    assert second.status_code == 413 and "quota" in second.json()["error"]


def test_direct_upload_by_presigned_url_is_bounded_and_erased_with_the_tenant(sandbox: SandboxState,
                                                                              account: Account) -> None:
    content = b"a,b\n1,2\n"
    presigned = account.client.post("/api/uploads/presign", headers=account.auth,
                                    json={"size_bytes": len(content)}).json()
    assert presigned["key"].startswith(f"temp/{account.tenant_id}/")
    assert httpx.put(presigned["url"], content=content + b"3,4\n" * 1000, timeout=10).status_code >= 400
    assert httpx.put(presigned["url"], content=content, timeout=10).status_code == 200
    too_big = account.client.post("/api/uploads/presign", headers=account.auth, json={"size_bytes": 10 ** 9})
    assert too_big.status_code == 413 and too_big.json()["field"] == "size_bytes"
    report = account.client.delete("/api/tenant", headers=account.auth).json()
    assert report["erased"] is True
    listing = c.s3_client(sandbox).list_objects_v2(Bucket="autoenroll-local-uploads",
                                                   Prefix=f"temp/{account.tenant_id}/")
    assert listing.get("KeyCount", 0) == 0


def test_listing_paginates_at_most_50_and_sees_only_its_tenant(api: httpx.Client, account: Account) -> None:
    other = sign_up(api, "Other Employer Ltd")
    for n in range(3):
        account.client.post("/api/uploads", headers={**account.auth, "X-Filename": f"{n}.csv"}, content=csv_file(1))
    other.client.post("/api/uploads", headers={**other.auth, "X-Filename": "theirs.csv"}, content=csv_file(1))
    page = api.get("/api/uploads?limit=2", headers=account.auth).json()
    assert len(page["items"]) == 2 and page["next_offset"] == 2
    assert api.get("/api/uploads?limit=500", headers=account.auth).json()["limit"] == 50
    names = {i["filename"] for i in api.get("/api/uploads", headers=account.auth).json()["items"]}
    assert "theirs.csv" not in names and len(names) == 3


def test_gdpr_erasure_of_a_tenant_leaves_nothing(sandbox: SandboxState, account: Account) -> None:
    upload = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": "p.csv"},
                                 content=csv_file(2)).json()
    account.client.get("/api/me", headers=account.auth)  # populate the cache
    report = account.client.delete("/api/tenant", headers=account.auth).json()
    assert report["erased"] is True
    assert report["deleted"]["objects"] == 4 and report["remaining"]["objects"] == []  # the file + 3 reports
    assert report["deleted"]["rows"]["employee_results"] == 2
    with pytest.raises(Exception, match=r"404|Not Found"):
        c.s3_client(sandbox).head_object(Bucket="autoenroll-local-uploads", Key=f"compliance-evidence/{upload['id']}")
    with psycopg.connect(sandbox.database_url("main", admin=True)) as conn:
        for table in ("users", "uploads", "validation_runs", "employee_results"):
            row = conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",  # noqa: S608
                               (account.tenant_id,)).fetchone()
            assert row == (0,), table
    assert not r(sandbox).exists(f"cache:tenant:{account.tenant_id}", f"session:{account.user_id}")


def test_gdpr_erasure_of_one_employee(sandbox: SandboxState, account: Account) -> None:
    with psycopg.connect(sandbox.database_url("main", admin=True), autocommit=True) as conn:
        upload = conn.execute("INSERT INTO uploads (tenant_id, user_id, object_key, original_filename, content_type,"
                              " size_bytes, sha256) VALUES (%s, %s, %s, 'f.csv', 'text/csv', 1, 'x') RETURNING id",
                              (account.tenant_id, account.user_id, f"k-{account.user_id}")).fetchone()
        run = conn.execute("INSERT INTO validation_runs (tenant_id, upload_id) VALUES (%s, %s) RETURNING id, month",
                           (account.tenant_id, upload[0])).fetchone()  # type: ignore[index]
        for ppsn in ("1234567T", "1234567T", "7654321W"):
            conn.execute("INSERT INTO employee_results (tenant_id, run_id, month, row_number, ppsn)"
                         " VALUES (%s, %s, %s, 2, %s)", (account.tenant_id, run[0], run[1], ppsn))  # type: ignore[index]
    report = account.client.delete("/api/employees/1234567t", headers=account.auth).json()
    assert (report["deleted_rows"], report["remaining_rows"], report["erased"]) == (2, 0, True)
    assert report["missing_objects"] == [f"k-{account.user_id}"]  # the row named an object that was never stored
