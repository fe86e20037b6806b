"""Masking rules for personal data, beside the schema they describe.

Every column of every table is classified here: either it has a masking rule, or it is
listed in NOT_PERSONAL. A test reads the live schema and fails on any column in neither,
so a new column holding personal data can't slip into staging unmasked.

Masking is deterministic: the same source value with the same key always gives the same
masked value (joins and duplicates survive), and the key (MASKING_KEY) never leaves the
refresh job, so masked values can't be reversed by re-hashing guesses. PPSNs keep a valid
check letter; names and emails carry a hash suffix, so they can't coincide with a real
one; dates of birth keep their year (eligibility by age still behaves) and never their
row's exact day (with 365 days a year, a masked date will be *someone's* birthday: the
guarantee is per person, not per value); pay keeps its magnitude (within 10%).
"""

from __future__ import annotations

import hashlib

# table -> column -> rule name (see SQL_FUNCTIONS)
MASK_RULES: dict[str, dict[str, str]] = {
    "tenants": {"name": "company", "stripe_customer_id": "token"},
    "users": {"email": "email", "full_name": "full_name"},
    "uploads": {"original_filename": "filename"},
    "employee_results": {
        "employee_id": "token",
        "ppsn": "ppsn",
        "first_name": "first_name",
        "last_name": "last_name",
        "date_of_birth": "date_of_birth",
        "email": "email",
        "gross_pay": "pay",
    },
}

# Columns that hold no personal data (ids, statuses, technical metadata, aggregates).
NOT_PERSONAL: dict[str, set[str]] = {
    "alembic_version": {"version_num"},
    "_ops_masked": {"masked_at", "rows"},  # the refresh's evidence that this copy was masked
    "tenants": {"id", "storage_quota_bytes", "created_at", "billing_status", "billing_event_at"},
    "stripe_events": {"id", "tenant_id", "type", "received_at"},
    "users": {"id", "tenant_id", "password_hash", "role", "created_at"},
    "uploads": {"id", "tenant_id", "user_id", "object_key", "content_type", "size_bytes", "sha256", "status",
                "created_at"},
    "validation_runs": {"id", "tenant_id", "upload_id", "status", "assessment_date", "row_count", "error_count",
                        "summary", "started_at", "finished_at"},
    "employee_results": {"id", "tenant_id", "run_id", "row_number", "pay_frequency", "eligibility",
                         "employee_contribution", "employer_contribution", "state_contribution", "errors"},
}


def sql_key(key: str) -> str:
    """The masking key as the SQL functions take it: HMAC-SHA256's inner and outer padded keys, in hex.

    HMAC is built from core sha256() rather than pgcrypto's hmac(), so masking needs no extension
    (the sandbox's PostgreSQL build has none); the pads are derived once here, not per value.
    The result equals hmac(v, key, 'sha256') byte for byte."""
    block = key.encode()
    if len(block) > 64:
        block = hashlib.sha256(block).digest()
    block = block.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block).hex() + bytes(b ^ 0x5C for b in block).hex()


# SQL functions (created in pg_temp for the masking transaction only). `k` is `sql_key(key)`.
SQL_FUNCTIONS = r"""
CREATE FUNCTION pg_temp.h(v text, k text) RETURNS bytea LANGUAGE sql IMMUTABLE AS
  $$ SELECT sha256(decode(substring(k from 129 for 128), 'hex')
                   || sha256(decode(substring(k from 1 for 128), 'hex') || convert_to(v, 'UTF8'))) $$;
CREATE FUNCTION pg_temp.n(v text, k text, modulo int) RETURNS int LANGUAGE sql IMMUTABLE AS
  $$ SELECT (('x' || encode(substring(pg_temp.h(v, k) from 1 for 4), 'hex'))::bit(32)::bigint % modulo)::int $$;
CREATE FUNCTION pg_temp.pick(v text, k text, words text[]) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT words[1 + pg_temp.n(v, k, array_length(words, 1))] $$;
CREATE FUNCTION pg_temp.token(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE 'M' || substring(encode(pg_temp.h(v, k), 'hex') from 1 for 10) END $$;
CREATE FUNCTION pg_temp.first_name(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE pg_temp.pick(v, k, ARRAY['Alex','Sam','Jamie','Robin','Casey',
     'Morgan','Jordan','Taylor','Riley','Quinn','Avery','Rowan','Emerson','Finley','Hayden','Kai']) || '-' ||
     substring(encode(pg_temp.h(v || '#first', k), 'hex') from 1 for 3) END $$;
CREATE FUNCTION pg_temp.last_name(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE pg_temp.pick(v, k, ARRAY['Ash','Birch','Cedar','Elm','Hazel',
     'Juniper','Larch','Maple','Oak','Pine','Rowan','Spruce','Willow','Yew','Alder','Holly']) || '-' ||
     substring(encode(pg_temp.h(v, k), 'hex') from 1 for 4) END $$;
CREATE FUNCTION pg_temp.full_name(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE pg_temp.first_name(v, k) || ' ' || pg_temp.last_name(v, k) END $$;
CREATE FUNCTION pg_temp.company(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE 'Employer ' || upper(substring(encode(pg_temp.h(v, k), 'hex')
     from 1 for 8)) || ' Ltd' END $$;
CREATE FUNCTION pg_temp.email(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE 'user-' || substring(encode(pg_temp.h(lower(v), k), 'hex')
     from 1 for 12) || '@example.invalid' END $$;
CREATE FUNCTION pg_temp.filename(v text, k text) RETURNS text LANGUAGE sql IMMUTABLE AS
  $$ SELECT CASE WHEN v IS NULL THEN NULL ELSE 'upload-' || substring(encode(pg_temp.h(v, k), 'hex')
     from 1 for 10) || coalesce(substring(v from '\.[A-Za-z0-9]{1,5}$'), '') END $$;
-- PPSN: 7 digits from the hash, the check letter computed (weights 8..2, mod 23, 0 = W),
-- and a second letter kept when the source had one (so the format's variety survives).
CREATE FUNCTION pg_temp.ppsn(v text, k text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  digits text; second text := ''; total int := 0; i int; out text;
BEGIN
  IF v IS NULL THEN RETURN NULL; END IF;
  digits := lpad((pg_temp.n(v, k, 10000000))::text, 7, '0');
  IF upper(v) ~ '^[0-9]{7}[A-W][A-Z]$' THEN
    second := chr(65 + pg_temp.n(v || '#2', k, 9));  -- A..I
  END IF;
  FOR i IN 1..7 LOOP
    total := total + substring(digits from i for 1)::int * (9 - i);
  END LOOP;
  IF second <> '' THEN total := total + (ascii(second) - 64) * 9; END IF;
  out := digits || CASE total % 23 WHEN 0 THEN 'W' ELSE chr(64 + total % 23) END || second;
  IF out = upper(v) THEN  -- astronomically rare; never keep the source value
    RETURN pg_temp.ppsn(v || '#', k);
  END IF;
  RETURN out;
END $$;
CREATE FUNCTION pg_temp.date_of_birth(v date, k text) RETURNS date LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE out date;
BEGIN
  IF v IS NULL THEN RETURN NULL; END IF;
  out := make_date(extract(year FROM v)::int, 1, 1) + pg_temp.n(v::text, k, 365);
  IF out = v THEN out := CASE WHEN extract(doy FROM v) > 1 THEN v - 1 ELSE v + 1 END; END IF;
  RETURN out;
END $$;
CREATE FUNCTION pg_temp.pay(v numeric, k text) RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE out numeric;
BEGIN
  IF v IS NULL THEN RETURN NULL; END IF;
  out := round(v * (0.9 + pg_temp.n(v::text, k, 2001) / 10000.0), 2);
  IF out = v THEN out := out + 0.01; END IF;
  RETURN out;
END $$;
"""


def update_statements() -> dict[str, str]:
    """One UPDATE per table, every masked column in one pass. `%(key)s` is bound at run time."""
    statements = {}
    for table, columns in MASK_RULES.items():
        sets = ", ".join(f"{column} = pg_temp.{rule}({column}, %(key)s)" for column, rule in columns.items())
        statements[table] = f"UPDATE {table} SET {sets}"  # noqa: S608 - identifiers from MASK_RULES, not input
    return statements
