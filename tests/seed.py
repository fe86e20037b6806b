"""Deterministic test data for the app's schema (tenants, users, uploads, runs, employee results)."""

from __future__ import annotations

import uuid

import psycopg


def seed(url: str, *, tenants: int = 3, employees_per_run: int = 50, tag: str = "seed") -> dict[str, int]:
    """Insert `tenants` tenants, each with a user, an upload, a run and its employee rows."""
    with psycopg.connect(url, autocommit=False) as conn:
        for t in range(tenants):
            tenant = uuid.uuid5(uuid.NAMESPACE_DNS, f"{tag}-tenant-{t}")
            user = uuid.uuid5(uuid.NAMESPACE_DNS, f"{tag}-user-{t}")
            upload = uuid.uuid5(uuid.NAMESPACE_DNS, f"{tag}-upload-{t}")
            run = uuid.uuid5(uuid.NAMESPACE_DNS, f"{tag}-run-{t}")
            conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, f"{tag} Employer {t} Ltd"))
            conn.execute("INSERT INTO users (id, tenant_id, email, full_name, password_hash) VALUES (%s,%s,%s,%s,%s)",
                         (user, tenant, f"payroll{t}@{tag}.example.ie", f"Máire Ní Bhriain {t}", "x"))
            conn.execute("INSERT INTO uploads (id, tenant_id, user_id, object_key, original_filename, content_type,"
                         " size_bytes, sha256, status) VALUES (%s,%s,%s,%s,%s,'text/csv',100,'00','validated')",
                         (upload, tenant, user, f"compliance-evidence/{upload}", f"payroll-{t}.csv"))
            month = conn.execute("INSERT INTO validation_runs (id, tenant_id, upload_id, status, row_count)"
                                 " VALUES (%s,%s,%s,'completed',%s) RETURNING month",
                                 (run, tenant, upload, employees_per_run)).fetchone()[0]  # type: ignore[index]
            with conn.cursor().copy(
                "COPY employee_results (tenant_id, run_id, month, row_number, employee_id, ppsn, first_name,"
                " last_name, date_of_birth, email, gross_pay, pay_frequency, eligibility) FROM STDIN"
            ) as copy:
                for e in range(employees_per_run):
                    copy.write_row((tenant, run, month, e + 2, f"E{e:05d}", f"{1000000 + t * 10000 + e}A", f"Seán{e}",
                                    f"Ó Briain{t}", f"19{60 + e % 40}-0{1 + e % 9}-1{e % 9}",
                                    f"emp{e}@{tag}.example.ie", 30000 + e, "monthly", "automatic"))
        conn.commit()
    return {"tenants": tenants, "employee_results": tenants * employees_per_run}


def clear(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE tenants CASCADE")
