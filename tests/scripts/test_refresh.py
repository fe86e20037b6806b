"""`ops db refresh` in the sandbox: masked end to end, refusals, a lock, and crashes at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from autoenroll.masking import MASK_RULES, NOT_PERSONAL
from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.cli import app
from ops.locks import object_lock
from ops.refresh.usecase import STEPS
from ops.sandbox.state import SandboxState
from ops.wiring import resolve
from tests.ppsn import is_valid
from tests.seed import clear, seed

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture()
def seeded(sandbox: SandboxState) -> SandboxState:
    url = sandbox.database_url("main", admin=True)
    clear(url)
    seed(url, tenants=4, employees_per_run=150, tag="refresh")
    # Duplicates across tenants: the same person on two payrolls must mask to the same values.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE employee_results SET ppsn = '1234567T', first_name = 'Dup', last_name = 'Person',"
                     " date_of_birth = '1980-05-17' WHERE row_number = 2")
    return sandbox


def personal_values(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT ppsn, first_name, last_name, date_of_birth::text, email FROM employee_results")
        values: dict[str, set[str]] = {"ppsn": set(), "first_name": set(), "last_name": set(), "dob": set(),
                                       "email": set()}
        for ppsn, first, last, dob, email in rows:
            values["ppsn"].add(ppsn)
            values["first_name"].add(first)
            values["last_name"].add(last)
            values["dob"].add(dob)
            values["email"].add(email)
        users = conn.execute("SELECT email, full_name FROM users").fetchall()
        values["email"] |= {u[0] for u in users}
        values["full_name"] = {u[1] for u in users}
    return values


def refresh_cli(sandbox: SandboxState, *args: str, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPS_SANDBOX_DIR": sandbox.root}
    if failpoint:
        env["OPS_FAILPOINT"] = failpoint
    return subprocess.run([sys.executable, "-m", "ops", "db", "refresh", *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)


def dates_of_birth(url: str) -> dict[int, str]:
    with psycopg.connect(url) as conn:
        return {int(i): str(d) for i, d in conn.execute("SELECT id, date_of_birth FROM employee_results")}


def assert_masked(sandbox: SandboxState) -> None:
    """No source PPSN, name or email appears anywhere in staging; no person keeps their date of birth."""
    source = personal_values(sandbox.database_url("main", admin=True))
    target = personal_values(sandbox.database_url("staging", admin=True))
    for column in ("ppsn", "first_name", "last_name", "email", "full_name"):
        leaked = source[column] & target[column]
        assert not leaked, f"{column} survived masking: {sorted(leaked)[:3]}"
    assert all(is_valid(p) for p in target["ppsn"]), "masked PPSNs must pass the check-letter rule"
    source_dob = dates_of_birth(sandbox.database_url("main", admin=True))
    target_dob = dates_of_birth(sandbox.database_url("staging", admin=True))
    kept = [i for i, d in target_dob.items() if source_dob.get(i) == d]
    assert not kept, f"{len(kept)} people kept their date of birth"


def test_refresh_masks_everything_and_keeps_joins(seeded: SandboxState) -> None:
    result = runner.invoke(app, ["db", "refresh", "staging", "--from", "main", "--env", "local", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["total_rows_masked"] == 4 + 4 + 4 + 600
    assert set(report["timings_s"]) == set(STEPS)
    for number, step in enumerate(STEPS, 1):  # each long step names itself on stderr, also under --json
        assert f"[{number}/{len(STEPS)}] {step}: " in result.stderr
    assert "copy main into staging_refresh_scratch" in result.stderr
    assert report["preserved_as"].startswith("staging_pre_refresh_")
    assert "/ready 200" in report["smoke"]
    assert_masked(seeded)
    with psycopg.connect(seeded.database_url("staging", admin=True)) as conn:
        dups = conn.execute("SELECT count(DISTINCT ppsn), count(DISTINCT date_of_birth), count(*)"
                            " FROM employee_results WHERE row_number = 2").fetchone()
        assert dups == (1, 1, 4)  # four tenants' copies of one person still match each other
        year_kept = conn.execute("SELECT count(*) FROM employee_results WHERE row_number = 2"
                                 " AND extract(year FROM date_of_birth) = 1980").fetchone()
        assert year_kept == (4,)
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        assert version is not None


def test_refusals_exit_3_and_change_nothing(seeded: SandboxState) -> None:
    for args in (["main", "--from", "staging"], ["production", "--from", "main"],
                 ["staging", "--from", "development"], ["staging", "--from", "staging"]):
        result = runner.invoke(app, ["db", "refresh", *args, "--env", "local", "--yes"])
        assert result.exit_code == 3, (args, result.output)
        assert "refusing" in result.output


def test_plan_mode_changes_nothing(seeded: SandboxState) -> None:
    before = personal_values(seeded.database_url("staging", admin=True))
    result = runner.invoke(app, ["db", "refresh", "staging", "--from", "main", "--env", "local", "--plan", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["applied"] is False
    assert personal_values(seeded.database_url("staging", admin=True)) == before


def test_a_second_refresh_of_the_same_target_is_locked_out(seeded: SandboxState) -> None:
    env = resolve("local")
    store = S3ObjectStore(env.storage, "backups")
    with object_lock(store, "_ops/local/refresh-staging.lock", ttl=timedelta(minutes=5), purpose="refresh of staging"):
        result = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes")
    assert result.returncode == 6, result.stderr
    assert "refresh of staging is locked by" in result.stderr


def test_crash_in_the_middle_of_masking_never_exposes_unmasked_data(seeded: SandboxState) -> None:
    crashed = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes",
                          failpoint="refresh.mask.table:3")
    assert crashed.returncode == -9
    assert_masked(seeded)  # staging still serves its previous (masked) data
    # Masked in the copy stream: the half-made copy holds some masked tables and no source value.
    scratch = seeded.database_url("staging_refresh_scratch", admin=True)
    with psycopg.connect(scratch) as conn:
        copied = conn.execute("SELECT count(*) FROM employee_results").fetchone()
        marker = conn.execute("SELECT to_regclass('public._ops_masked')").fetchone()
    assert copied is not None and copied[0] > 0 and marker == (None,)
    source = personal_values(seeded.database_url("main", admin=True))
    half = personal_values(scratch)
    # (a date of birth is masked per person, and a masked date is someone's: not compared here)
    leaked = {c: source[c] & half[c] for c in source if c != "dob"}
    assert not any(leaked.values()), f"unmasked values reached the copy: {leaked}"
    resumed = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed_from"] is None  # the copy was not finished: made again from the start
    assert report["total_rows_masked"] == 612
    assert_masked(seeded)


@pytest.mark.parametrize("step", STEPS[:-1])
def test_a_crash_after_each_step_resumes_to_a_masked_target(seeded: SandboxState, step: str) -> None:
    crashed = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes",
                          failpoint=f"refresh.after.{step}")
    assert crashed.returncode == -9
    assert_masked(seeded)
    resumed = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_from"] == step
    assert_masked(seeded)


# A partition's columns are its partitioned table's, classified under that table's name.
SCHEMA_COLUMNS = ("SELECT coalesce(pg_partition_root(format('public.%I', table_name)::regclass)::text, table_name),"
                  " column_name FROM information_schema.columns WHERE table_schema = 'public'")


def test_every_column_of_the_schema_is_classified(seeded: SandboxState) -> None:
    with psycopg.connect(seeded.database_url("main", admin=True)) as conn:
        columns = conn.execute(SCHEMA_COLUMNS).fetchall()
    unclassified = [f"{t}.{c}" for t, c in columns
                    if c not in MASK_RULES.get(t, {}) and c not in NOT_PERSONAL.get(t, set())]
    assert unclassified == [], f"classify these in app/autoenroll/masking.py: {unclassified}"


def test_a_new_personal_column_without_a_rule_fails_the_classification(seeded: SandboxState) -> None:
    url = seeded.database_url("development", admin=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN phone text")
        try:
            columns = conn.execute(SCHEMA_COLUMNS).fetchall()
        finally:
            conn.execute("ALTER TABLE users DROP COLUMN phone")
    unclassified = [f"{t}.{c}" for t, c in columns
                    if c not in MASK_RULES.get(t, {}) and c not in NOT_PERSONAL.get(t, set())]
    assert unclassified == ["users.phone"]


def test_db_migrate_reports_head(seeded: SandboxState) -> None:
    result = runner.invoke(app, ["db", "migrate", "--env", "local", "--branch", "development", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["after"] == report["head"]


def test_the_set_wise_rules_hold_over_many_values(seeded: SandboxState) -> None:
    """Every PPSN shape (with and without a second letter, lower case, its own digits) keeps a valid
    check letter and changes; NULLs stay NULL; years and pay magnitude survive; the key matters."""
    from autoenroll.masking import masked_select

    values = [(f"{n * 7919 % 10_000_000:07d}{'AW'[n % 2]}{'' if n % 3 else 'A'}".lower() if n % 5 == 0
               else f"{n * 7919 % 10_000_000:07d}{'AW'[n % 2]}{'' if n % 3 else 'A'}",
               f"19{50 + n % 50}-0{1 + n % 9}-1{n % 9}", 1000 + n * 3.17) for n in range(2000)]
    values.append((None, None, None))
    url = seeded.database_url("development", admin=True)
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TEMP TABLE employee_results (ppsn text, date_of_birth date, gross_pay numeric(12,2))")
        with conn.cursor().copy("COPY employee_results FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        query = masked_select("employee_results", ["ppsn", "date_of_birth", "gross_pay"]).replace(
            '"employee_results"', "pg_temp.employee_results")
        masked = conn.execute(query, {"key": "k1"}).fetchall()
        other_key = conn.execute(query, {"key": "k2"}).fetchall()
        again = conn.execute(query, {"key": "k1"}).fetchall()
    assert masked == again, "masking must be deterministic"
    assert masked[-1] == (None, None, None)
    for (ppsn, dob, pay), (m_ppsn, m_dob, m_pay) in zip(values[:-1], masked[:-1], strict=True):
        assert is_valid(m_ppsn), (ppsn, m_ppsn)
        assert m_ppsn[:7] != ppsn[:7]
        assert len(m_ppsn) == len(ppsn), "a second letter is kept exactly when the source had one"
        assert m_dob.year == int(dob[:4]) and str(m_dob) != dob
        assert abs(float(m_pay) - pay) <= pay * 0.1 + 0.011 and float(m_pay) != round(pay, 2)
    changed = sum(a[0] != b[0] for a, b in zip(masked, other_key, strict=True))
    assert changed > len(values) * 0.99, "another key gives other values"


def schema_of(url: str) -> str:
    from ops.pg import libpq_env
    from ops.pg.tools import tool as pg_tool

    out = subprocess.run([pg_tool("pg_dump"), "--schema-only", "--no-password", "--exclude-table=_ops_masked"],
                         env={**libpq_env(url), "PATH": os.environ["PATH"]}, capture_output=True, text=True,
                         check=True)
    skip = ("--", "\\restrict", "\\unrestrict")  # comments and pg_dump's per-run random keys
    return "\n".join(line for line in out.stdout.splitlines() if not line.startswith(skip))


def test_the_stream_copy_keeps_the_schema_grants_policies_and_sequence_values(seeded: SandboxState) -> None:
    result = runner.invoke(app, ["db", "refresh", "staging", "--from", "main", "--env", "local", "--yes", "--json"])
    assert result.exit_code == 0, result.output
    main, staging = (seeded.database_url(db, admin=True) for db in ("main", "staging"))
    assert schema_of(staging) == schema_of(main)
    sequence = "SELECT last_value FROM employee_results_id_seq"
    with psycopg.connect(main) as a, psycopg.connect(staging) as b:
        assert a.execute(sequence).fetchone() == b.execute(sequence).fetchone()


def test_an_unclassified_column_stops_the_copy_before_any_row_is_read(seeded: SandboxState) -> None:
    before = personal_values(seeded.database_url("staging", admin=True))
    with psycopg.connect(seeded.database_url("main", admin=True), autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN phone text")
        try:
            result = refresh_cli(seeded, "staging", "--from", "main", "--env", "local", "--yes")
        finally:
            conn.execute("ALTER TABLE users DROP COLUMN phone")
    assert result.returncode == 2, result.stderr
    assert "users.phone" in result.stderr
    assert personal_values(seeded.database_url("staging", admin=True)) == before


def test_the_stream_masks_with_the_key_exactly_even_with_quotes_and_backslashes(seeded: SandboxState) -> None:
    from autoenroll.masking import masked_select
    from ops.pg import create_database, drop_database
    from ops.refresh.masked_copy import masked_copy

    key, admin = "a 'b\\c\\n $1", seeded.database_url("postgres", admin=True)
    create_database(admin, "stream_key_check")
    try:
        copy = seeded.database_url("stream_key_check", admin=True)
        masked_copy(seeded.database_url("main", admin=True), copy, key)
        columns = ["id", "email", "full_name"]
        with psycopg.connect(seeded.database_url("main", admin=True)) as conn:
            expected = sorted(conn.execute(masked_select("users", columns), {"key": key}).fetchall())
        with psycopg.connect(copy) as conn:
            got = sorted(conn.execute("SELECT id, email, full_name FROM users").fetchall())
        assert got == expected and len(got) == 4
    finally:
        drop_database(admin, "stream_key_check")


def test_neons_in_place_masking_and_the_sandboxs_stream_give_the_same_copy(seeded: SandboxState) -> None:
    """One masking, two ways of applying it: production masks a Neon branch where it lies
    (mask_database), the sandbox masks in the copy stream. Both copies of the same source
    with the same key must hold the same rows, so the sandbox's refresh proves production's."""
    from autoenroll.masking import MASK_RULES
    from ops.adapters.local.branch_store import LocalBranchStore
    from ops.refresh.masking import mask_database

    store = LocalBranchStore(seeded.database_url("postgres", admin=True))
    key = "the same key for both"
    try:
        store.copy("main", "same_in_place")  # unmasked, as a Neon branch arrives
        counts, did = mask_database(store.url("same_in_place"), key)
        assert did and counts["employee_results"] > 0
        store.copy("main", "same_stream", masking_key=key)
        for table in MASK_RULES:
            query = f"SELECT * FROM {table} ORDER BY 1"  # noqa: S608 - names from the rule table
            with psycopg.connect(store.url("same_in_place")) as a, psycopg.connect(store.url("same_stream")) as b:
                in_place, stream = a.execute(query).fetchall(), b.execute(query).fetchall()
            assert in_place == stream, f"{table}: the two masking paths differ"
            assert in_place, f"{table}: no rows compared"
    finally:
        for name in ("same_in_place", "same_stream"):
            if store.exists(name):
                store.drop(name)
