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

The rules are plain SQL expressions over one keyed SHA-256 digest per masked value
(PostgreSQL's built-in `sha256` of key || value: no extension needed, and measured 2.6x
faster than pgcrypto's `hmac`), so a whole table is masked by one set-wise statement: no
function call per row, no plpgsql, each digest computed once (a LATERAL subquery the
planner may not flatten, `OFFSET 0`, keeps PostgreSQL from evaluating it once per use).
A key-prefix hash is safe here because no rule exposes more than 12 of the digest's 32
bytes, so length extension (HMAC's reason to exist) has nothing to extend.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# table -> column -> rule name (see RULES)
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
    # month: the first day of the run's UTC month, the partition key (partitions.py), no more personal than
    # started_at.
    "validation_runs": {"id", "tenant_id", "upload_id", "status", "assessment_date", "row_count", "error_count",
                        "summary", "started_at", "finished_at", "report_bytes", "month"},
    "employee_results": {"id", "tenant_id", "run_id", "row_number", "pay_frequency", "eligibility",
                         "employee_contribution", "employer_contribution", "state_contribution", "errors", "month"},
}

FIRST_NAMES = ("Alex", "Sam", "Jamie", "Robin", "Casey", "Morgan", "Jordan", "Taylor", "Riley", "Quinn", "Avery",
               "Rowan", "Emerson", "Finley", "Hayden", "Kai")
LAST_NAMES = ("Ash", "Birch", "Cedar", "Elm", "Hazel", "Juniper", "Larch", "Maple", "Oak", "Pine", "Rowan", "Spruce",
              "Willow", "Yew", "Alder", "Holly")
KEY = "{key}"  # becomes the `key` parameter, bound at run time: the key is never part of the statement's text


def _u32(d: str, at: int) -> str:
    """Four digest bytes from `at` (0-based) as a non-negative bigint."""
    return (f"(get_byte({d}, {at})::bigint << 24 | get_byte({d}, {at + 1}) << 16"
            f" | get_byte({d}, {at + 2}) << 8 | get_byte({d}, {at + 3}))")


def _hex(d: str, start: int, length: int) -> str:
    return f"encode(substring({d} from {start + 1} for {length}), 'hex')"


def _words(words: Sequence[str]) -> str:
    return "(ARRAY[" + ", ".join(f"'{w}'" for w in words) + "])"


def _first(d: str) -> str:
    return f"{_words(FIRST_NAMES)}[1 + get_byte({d}, 0) % {len(FIRST_NAMES)}] || '-' || left({_hex(d, 4, 2)}, 3)"


def _last(d: str) -> str:
    return f"{_words(LAST_NAMES)}[1 + get_byte({d}, 1) % {len(LAST_NAMES)}] || '-' || {_hex(d, 8, 2)}"


def _ppsn_digits(v: str, d: str) -> str:
    """Seven digits as an int from the digest; never the source's own seven digits."""
    first = f"({_u32(d, 0)} % 10000000)"
    other = f"(({first} + 1 + {_u32(d, 8)} % 9999999) % 10000000)"
    return f"CASE WHEN lpad({first}::text, 7, '0') = left({v}, 7) THEN {other} ELSE {first} END"


def _ppsn_second(v: str, d: str) -> str:
    """A second letter A..I (as 1..9) when the source had one (nine characters), so the format's variety
    survives; else 0. By length, not a regular expression: measured, the match cost a quarter of the rule."""
    return f"CASE WHEN length({v}) = 9 THEN 1 + get_byte({d}, 4) % 9 ELSE 0 END"


def _ppsn() -> str:
    """The digits, then the check letter by arithmetic on them (weights 8..2, 9 for the second letter,
    mod 23, 0 = W), then the second letter."""
    n, second = "{m.digits}", "{m.second}"
    total = " + ".join(f"({n} / {10 ** (6 - i)} % 10) * {8 - i}" for i in range(7))
    return (f"lpad({n}::text, 7, '0') || substr('WABCDEFGHIJKLMNOPQRSTUV', (1 + ({total} + {second} * 9) % 23)::int, 1)"
            f" || CASE WHEN {second} = 0 THEN '' ELSE chr(64 + {second}) END")


@dataclass(frozen=True)
class Rule:
    """`{v}` is the source column, `{d}` its digest, `{m.NAME}` one of `middle`'s values."""

    hashed: str  # what the digest is of
    masked: str
    middle: tuple[tuple[str, str], ...] = ()  # values the masked expression uses more than once, computed once


def _date_rule() -> Rule:
    # date_part (double precision), not extract (numeric since PostgreSQL 14, measured slower per row).
    shifted = "(make_date(date_part('year', {v})::int, 1, 1) + (" + _u32("{d}", 0) + " % 365)::int)"
    return Rule("{v}::text", "CASE WHEN {m.shifted} <> {v} THEN {m.shifted} WHEN date_part('doy', {v}) > 1"
                " THEN {v} - 1 ELSE {v} + 1 END", (("shifted", shifted),))


def _pay_rule() -> Rule:
    scaled = "round({v} * (0.9 + (" + _u32("{d}", 0) + " % 2001) / 10000.0), 2)"
    return Rule("{v}::text", "CASE WHEN {m.scaled} = {v} THEN {m.scaled} + 0.01 ELSE {m.scaled} END",
                (("scaled", scaled),))


RULES: dict[str, Rule] = {
    "token": Rule("{v}", "'M' || " + _hex("{d}", 0, 5)),
    "company": Rule("{v}", "'Employer ' || upper(" + _hex("{d}", 0, 4) + ") || ' Ltd'"),
    "email": Rule("lower({v})", "'user-' || " + _hex("{d}", 0, 6) + " || '@example.invalid'"),
    "filename": Rule("{v}", "'upload-' || " + _hex("{d}", 0, 5)
                     + r" || coalesce(substring({v} from '\.[A-Za-z0-9]{1,5}$'), '')"),
    "first_name": Rule("{v}", _first("{d}")),
    "last_name": Rule("{v}", _last("{d}")),
    "full_name": Rule("{v}", _first("{d}") + " || ' ' || " + _last("{d}")),
    "ppsn": Rule("{v}", _ppsn(), (("digits", _ppsn_digits("{v}", "{d}")), ("second", _ppsn_second("{v}", "{d}")))),
    "date_of_birth": _date_rule(),
    "pay": _pay_rule(),
}


def _fill(template: str, column: str, v: str) -> str:
    out = template.replace("{v}", v).replace("{d}", f"d.{_ident(column)}")
    return re.sub(r"\{m\.(\w+)\}", lambda match: f"m.{_ident(column + '__' + match[1])}", out)


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"not a plain identifier: {name!r}")
    return f'"{name}"'


def _digests(table: str, columns: Sequence[str], source: str) -> list[str]:
    """The keyed digest of each masked column of `table` (`{key}` still in place), named after it."""
    rules = MASK_RULES.get(table, {})
    return [f"sha256(convert_to({KEY} || {_fill(RULES[rules[c]].hashed, c, f'{source}.{_ident(c)}')}, 'UTF8'))"
            f" AS {_ident(c)}" for c in columns if c in rules]


def digests_only_select(table: str, columns: Sequence[str], *, key: str, source: str = "s") -> str:
    """One row for the whole table that costs what its masking's digests cost: every digest computed
    (the same expressions `masked_select` uses) and reduced to a sum of lengths, the rules not applied.
    `key` is an SQL expression giving the masking key. For benchmarks/refresh.py's hashing floor."""
    names = [_ident(c) for c in columns if c in MASK_RULES.get(table, {})]
    if not names:
        raise ValueError(f"table {table!r} has no masked columns among {list(columns)}")
    total = " + ".join(f"octet_length(d.{n})" for n in names)
    return (f"SELECT sum({total}) FROM {_ident(table)} {source} CROSS JOIN LATERAL"  # noqa: S608 - identifiers checked
            f" (SELECT {', '.join(_digests(table, columns, source))} OFFSET 0) d").replace(KEY, f"({key})")


def masked_select(table: str, columns: Sequence[str], *, source: str = "s", key: str | None = None,
                  relation: str | None = None) -> str:
    """A SELECT of every column of `table` in order (read from `source`), personal ones masked;
    run it with psycopg and the parameter `key` (the masking key, text). With `key` (an SQL
    expression giving the masking key, e.g. a session setting's) it is plain SQL with no parameters,
    for `COPY (...) TO STDOUT`, which takes none.

    `relation` (default `table`) is what is read: one partition of `table`, masked by `table`'s rules.

    A NULL stays NULL: every rule is strict in its source value (a hash of NULL is NULL)."""
    return _with_key(_select(table, columns, source, f"{_ident(relation or table)} {source}"), key)


def _with_key(query: str, key: str | None) -> str:
    if key is not None:
        return query.replace(KEY, f"({key})")
    # For psycopg: the modulo operators are escaped, the key is its one parameter.
    return query.replace("%", "%%").replace(KEY, "%(key)s")


def _select(table: str, columns: Sequence[str], source: str, from_item: str) -> str:
    rules = MASK_RULES.get(table, {})
    digests, middles, out = _digests(table, columns, source), [], []
    for column in columns:
        v = f"{source}.{_ident(column)}"
        rule_name = rules.get(column)
        if rule_name is None:
            out.append(v)
            continue
        rule = RULES[rule_name]
        middles += [f"{_fill(expr, column, v)} AS {_ident(column + '__' + name)}" for name, expr in rule.middle]
        out.append(f"{_fill(rule.masked, column, v)} AS {_ident(column)}")
    sql = f"SELECT {', '.join(out)} FROM {from_item}"  # noqa: S608 - identifiers checked
    if digests:
        sql += f" CROSS JOIN LATERAL (SELECT {', '.join(digests)} OFFSET 0) d"
    if middles:
        sql += f" CROSS JOIN LATERAL (SELECT {', '.join(middles)} OFFSET 0) m"
    return sql


# Masked columns whose values recur together, row after row: one person's identity is on their row every
# month. Each group is masked once per distinct combination (memoized_select); a masked column in no group
# here is a group of its own (pay: a person's pay may change from month to month, so it is cached alone).
RECURRING: dict[str, tuple[tuple[str, ...], ...]] = {
    "employee_results": (("employee_id", "ppsn", "first_name", "last_name", "date_of_birth", "email"),),
}


def masking_groups(table: str, columns: Sequence[str]) -> list[tuple[str, ...]]:
    """The masked columns among `columns`, as the groups memoized_select masks once per distinct value."""
    rules = MASK_RULES.get(table, {})
    masked = [c for c in columns if c in rules]
    groups = [tuple(c for c in group if c in masked) for group in RECURRING.get(table, ())]
    groups = [g for g in groups if g]
    grouped = {c for g in groups for c in g}
    return groups + [(c,) for c in masked if c not in grouped]


def memoized_select(table: str, columns: Sequence[str], *, where: str = "", key: str | None = None,
                    source: str = "s") -> str:
    """`masked_select`'s rows (the same rules, so the same masked values) of `table` (optionally only
    those matching `where`, a condition on `source`), with each distinct personal value masked once
    per statement instead of once per row.

    People recur: a payroll holds the same employee every month, so a year of results holds each
    person's identity twelve times, and the keyed digests are most of masking's cost (measured on
    1.2M rows of 100k people: 19 s masked row by row, 4 s memoized, 0.1 s the scan alone). Each group
    of masking_groups is masked in a LATERAL subquery of the group's columns alone, which PostgreSQL's
    Memoize node caches per distinct parameter value for the whole statement (EXPLAIN ANALYZE counts
    its misses: the values digested). PostgreSQL's own cache rather than a mapping table: it needs no
    write on the source (a read-only snapshot or a standby serves it), and the source values it pairs
    with their masks live only in the reading backend's memory, for the statement. work_mem x
    hash_mem_multiplier bounds it; past that, entries are evicted and recomputed: slower, never different.

    The planner memoizes only when the table's statistics show repeats: for a partitioned table those
    are its own (inherited) statistics, which only an explicit ANALYZE of it gathers (autovacuum
    analyzes partitions, never the partitioned table). Without them the statement masks row by row:
    slower, the same rows. Read from `table` itself (not a UNION ALL of its partitions, which has no
    statistics at all) for that reason; `where` on the partition key prunes the partitions not read."""
    out = {c: f"{source}.{_ident(c)}" for c in columns}
    laterals = []
    for i, group in enumerate(masking_groups(table, columns)):
        alias = f"g{i}"
        params = ", ".join(f"{source}.{_ident(c)} AS {_ident(c)}" for c in group)
        # OFFSET 0: the subquery stays a subquery (not flattened into the outer query), so Memoize can cache it.
        inner = _select(table, group, "x", f"(SELECT {params}) x")
        laterals.append(f" CROSS JOIN LATERAL ({inner} OFFSET 0) {alias}")
        out.update({c: f"{alias}.{_ident(c)}" for c in group})
    sql = (f"SELECT {', '.join(out[c] for c in columns)} FROM {_ident(table)} {source}"  # noqa: S608
           + "".join(laterals) + (f" WHERE {where}" if where else ""))
    return _with_key(sql, key)
