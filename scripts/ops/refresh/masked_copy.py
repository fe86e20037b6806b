"""A masked copy of a database in one pass: personal data is masked in the copy stream itself.

Copying and then masking writes the big tables three times (the copy, the masked rows,
their rebuild) and computes the masks on one core. Here each table goes across once:
`COPY (SELECT <masked columns> FROM t) TO STDOUT` on the source, piped into
`COPY t FROM STDIN` on the copy, so the source's backends compute the masks while the
copy's backends load rows, on every core at once. Big tables are split into block
ranges (a TID range scan reads only its range), so one large table uses every core too.
The payroll results, partitioned by month, go as one stream per job, each the rows of a
share of the people (by a hash of their employee id) over every month, read by one
statement that masks each of its people once however many months they recur in
(autoenroll.masking.memoized_select), written into the partitioned table, which routes each
row to its month. So every person is digested once in all, whatever the number of jobs.

Order, as pg_restore does it: the schema without indexes and keys, then the rows, then
sequence values, indexes and keys built in bulk (`pg_restore --jobs`). Every reader shares
one snapshot of the source (exported by a transaction that stays open until the last
reader has started), so the copy is consistent with itself and with the schema's dump.

Fail closed: unmasked personal data never reaches the copy (there is no moment at which
a table of the copy holds a source value), a column the masking rules don't classify
stops the copy before anything is read, and the `_ops_masked` marker is written only
after every table, sequence, index and key is in place, so a copy with the marker is
complete and masked; one without it (a crash) is dropped and made again.

The masking key reaches the source's backends as a session setting (`ops.masking_key`), set
by a statement with the key as a bound parameter, sent on psql's stdin: never on argv, never
in any statement's text.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from autoenroll.masking import MASK_RULES, NOT_PERSONAL, RECURRING, masked_select, memoized_select
from autoenroll.partitions import PARENT, add_months, month_of_partition
from ops import failpoints
from ops.errors import ConfigError, ExternalError
from ops.pg import connect, libpq_env
from ops.pg.tools import tool as pg_tool
from ops.pipeline import Pipeline, Stage

MARKER = "_ops_masked"
MONTH = "month"  # the partition key of PARENT (partitions.py): a partition holds [month, next month)
KEY_SETTING = "ops.masking_key"
# A table is split into ranges of about this many bytes, so a big table keeps every job busy
# while a small one is a single COPY (a split costs one more pair of psql processes).
SPLIT_BYTES = 64 * 1024 * 1024
# A masked stream's work_mem bounds its Memoize cache of masked values (times hash_mem_multiplier, 2 by
# default). Past that size the cache evicts, and since every month lists its people in the same order it
# then never hits: measured, 100k people over two months with the cache 70% of their size, 0 hits and
# 200,000 misses (every identity digested every month), against 100,000 hits with room for all. So the
# work_mem is sized for the people a stream meets (memo_work_mem): at least MEMO_WORK_MEM, at 235 bytes a
# person (EXPLAIN ANALYZE's peak memory of the identity cache for 100k people: 22,950 kB) and a quarter more,
# at most MEMO_WORK_MEM_CAP_KB (a 1.8M-person cache per stream, which meets its share of the people; past that,
# evictions again: slower, never wrong).
MEMO_WORK_MEM_FLOOR_KB = 64 * 1024
MEMO_WORK_MEM_CAP_KB = 256 * 1024
MEMO_WORK_MEM = f"{MEMO_WORK_MEM_FLOOR_KB}kB"
MEMO_BYTES_PER_PERSON = 235
Progress = Callable[[str], None]


def default_jobs() -> int:
    """Parallel copies: one per core of the machine running it (the database's backends do the work)."""
    return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Unit:
    """One COPY: a table, or a block range of one."""

    table: str
    columns: tuple[str, ...]
    masked: bool
    blocks: tuple[int, int] | None = None  # [first, last) heap blocks; None: the whole table
    root: str = ""  # for a partition: the partitioned table whose masking rules apply (else the table itself)
    # Partitions of `table` (a partitioned table) read as one stream, masked once per distinct value, written
    # into `table` (which routes each row to its partition); `months`: the month each of them holds.
    relations: tuple[str, ...] = ()
    months: tuple[date, ...] = ()
    # (i, n): only the rows of the i-th of n shares of the people (person_share); (0, 1): everyone.
    share: tuple[int, int] = (0, 1)
    work_mem: str = MEMO_WORK_MEM  # a masked stream's: its cache of masked values holds its people (memo_work_mem)

    @property
    def rules_of(self) -> str:
        return self.root or self.table

    def select(self) -> str:
        where = ""
        if self.blocks is not None:
            first, last = self.blocks
            where = f" WHERE s.ctid >= '({first},0)'::tid" + (f" AND s.ctid < '({last},0)'::tid" if last else "")
        key = f"current_setting('{KEY_SETTING}')"
        if self.masked and self.months:
            # Each partition's own bounds (not one range over them: a default partition may hold a gap's rows).
            month = f"s.{_quote(MONTH)}"
            bounds = [(_literal(m.isoformat()), _literal(add_months(m, 1).isoformat())) for m in self.months]
            where = "(" + " OR ".join(f"({month} >= {lo} AND {month} < {hi})" for lo, hi in bounds) + ")"
            if self.share[1] > 1:
                where += " AND " + person_share(self.rules_of, *self.share)
            return memoized_select(self.table, self.columns, key=key, where=where)
        if self.masked:
            query = masked_select(self.rules_of, self.columns, key=key,
                                  relation=self.table)
        else:
            cols = ", ".join(f"s.{_quote(c)}" for c in self.columns)
            query = f"SELECT {cols} FROM {_quote(self.table)} s"  # noqa: S608 - identifiers quoted
        # A condition on s.ctid alone: the planner makes it the table's TID range scan.
        return query + where

    def describe(self) -> str:
        if self.relations:
            people = f"people share {self.share[0] + 1} of {self.share[1]}, " if self.share[1] > 1 else ""
            return f"{self.table} ({people}{len(self.relations)} partitions)"
        return self.table + (f" blocks {self.blocks[0]}..{self.blocks[1] or 'end'}" if self.blocks else "")


def person_share(table: str, share: int, shares: int, source: str = "s") -> str:
    """The condition that keeps the rows of the `share`-th of `shares` shares of `table`'s people: a hash of
    the first column of its recurring identity (masking.RECURRING: the employee id), so a person's rows,
    every month, are in one share and each person is digested by one stream. A NULL id is in share 0.

    Written as "not in the other shares", not "= share": the planner estimates an equality on an expression
    at 0.5% of the rows, expects no person to recur, and drops the cache of masked values (measured: no
    Memoize in the plan); an inequality it estimates at 99.5%, and the cache stays."""
    column = f"{source}.{_quote(RECURRING[table][0][0])}"
    others = ", ".join(str(i) for i in range(shares) if i != share)
    return f"coalesce(abs(hashtextextended({column}, 0) % {shares}), 0) NOT IN ({others})"


def memo_work_mem(people: int, hash_mem_multiplier: float) -> str:
    """work_mem for one statement whose Memoize cache should hold `people` identities without evicting
    (see MEMO_BYTES_PER_PERSON), within [MEMO_WORK_MEM_FLOOR_KB, MEMO_WORK_MEM_CAP_KB]."""
    need = people * MEMO_BYTES_PER_PERSON * 5 / 4 / max(hash_mem_multiplier, 1.0) / 1024
    return f"{int(min(max(MEMO_WORK_MEM_FLOOR_KB, need), MEMO_WORK_MEM_CAP_KB))}kB"


def people_estimate(conn: psycopg.Connection[tuple[object, ...]], root: str) -> int:
    """How many people `root` (a partitioned table of masking.RECURRING) holds, from the catalog alone: the
    distinct identities ANALYZE estimated for it, or the rows of its biggest month (a payroll lists each
    person once a month), whichever is more; 0 for a table with no recurring identity."""
    if root not in RECURRING:
        return 0
    row = conn.execute(
        "SELECT coalesce((SELECT max(c.reltuples) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        "                  WHERE i.inhparent = to_regclass(%(t)s)), 0),"
        "       coalesce((SELECT CASE WHEN s.n_distinct >= 0 THEN s.n_distinct ELSE -s.n_distinct *"
        "                        (SELECT sum(greatest(c.reltuples, 0)) FROM pg_inherits i JOIN pg_class c"
        "                         ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%(t)s)) END"
        "                 FROM pg_stats s WHERE s.schemaname = 'public' AND s.tablename = %(t)s"
        "                 AND s.attname = %(c)s AND s.inherited), 0)",
        {"t": root, "c": RECURRING[root][0][0]}).fetchone()
    return int(max(float(row[0]), float(row[1]))) if row else 0  # type: ignore[arg-type]


def hash_mem_multiplier(conn: psycopg.Connection[tuple[object, ...]]) -> float:
    row = conn.execute("SELECT current_setting('hash_mem_multiplier')::float8").fetchone()
    return float(row[0]) if row else 2.0  # type: ignore[arg-type]


def people_work_mem(conn: psycopg.Connection[tuple[object, ...]], roots: Iterable[str], shares: int = 1) -> str:
    """work_mem for a statement that meets every person of `roots`, or one of `shares` shares of them
    (person_share): memo_work_mem, from the catalog's count."""
    people = max((people_estimate(conn, r) for r in roots), default=0)
    return memo_work_mem(-(-people // shares), hash_mem_multiplier(conn))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def plan_units(conn: psycopg.Connection[tuple[object, ...]], *, masked: bool, jobs: int = 1) -> list[Unit]:
    """Every table of the public schema as COPY units, biggest first (so the longest starts first).

    The monthly partitions of the results are copied as `jobs` streams, each every month's rows of one share
    of the people (person_share) read as one statement: a person recurs every month, one statement masks
    each distinct value once (memoized_select) however many months it reads, and no two streams meet the
    same person. Everything else is a unit per table or partition, a big one split into block ranges.

    Raises ConfigError before anything is copied if a column is neither masked nor declared
    not personal: new personal data can't slip through unclassified."""
    # Tables that hold rows (relkind 'r'): a partitioned table holds none, each of its partitions is copied
    # as a table of its own (so a month is a unit, and months copy in parallel), classified and masked by the
    # rules of the partitioned table it belongs to (pg_partition_root; NULL for a plain table).
    rows = conn.execute(
        "SELECT c.relname, coalesce(r.relname, c.relname), array_agg(a.attname ORDER BY a.attnum),"
        " pg_relation_size(c.oid), current_setting('block_size')::int"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_class r ON r.oid = pg_partition_root(c.oid)"
        " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY c.oid, c.relname, r.relname").fetchall()
    unclassified = sorted({f"{t}.{c}" for _leaf, t, cols, _s, _b in rows for c in cols  # type: ignore[attr-defined]
                           if c not in MASK_RULES.get(str(t), {}) and c not in NOT_PERSONAL.get(str(t), set())})
    if unclassified:
        raise ConfigError(f"columns without a masking classification: {', '.join(unclassified)}",
                          hint="classify each in app/autoenroll/masking.py (MASK_RULES or NOT_PERSONAL)")
    units: list[tuple[int, Unit]] = []
    memoized: dict[str, list[tuple[int, str, tuple[str, ...]]]] = {}
    for table, root_table, columns, size, block_size in rows:
        name, cols, nbytes = str(table), tuple(str(c) for c in columns), int(size)  # type: ignore[attr-defined, call-overload]
        root = str(root_table) if root_table != table else ""
        rules = masked and (root or name) in MASK_RULES
        if rules and root == PARENT and month_of_partition(name) is not None:
            memoized.setdefault(root, []).append((nbytes, name, cols))
            continue
        pieces = nbytes // SPLIT_BYTES
        if pieces < 2:
            units.append((nbytes, Unit(name, cols, rules, root=root)))
            continue
        per = nbytes // int(block_size) // pieces + 1  # type: ignore[call-overload]
        for i in range(pieces):
            # The last range is open-ended: rows a table grew by since its size was read are
            # in the snapshot's view and must not be missed.
            last = 0 if i == pieces - 1 else (i + 1) * per
            units.append((nbytes // pieces, Unit(name, cols, rules, (i * per, last), root=root)))
    streams = max(1, jobs)
    for root, parts in memoized.items():
        # Each stream meets its share of the people, every month: its cache is sized for them.
        units += _streams(root, parts, streams, work_mem=people_work_mem(conn, [root], shares=streams))
    return [u for _n, u in sorted(units, key=lambda pair: -pair[0])]


def _streams(root: str, parts: list[tuple[int, str, tuple[str, ...]]], count: int, *,
             work_mem: str = MEMO_WORK_MEM) -> list[tuple[int, Unit]]:
    """The month partitions of `root` as `count` streams, each one statement over `root` restricted to those
    months (so the partitioned table's statistics plan it; each partition's own bounds, so a partition that
    is not a month's is never read twice) and to one share of the people (person_share)."""
    ordered = sorted(parts, key=lambda p: month_of_partition(p[1]) or date.min)
    months = tuple(m for _n, name, _c in ordered if (m := month_of_partition(name)) is not None)
    relations, total = tuple(name for _n, name, _c in ordered), sum(p[0] for p in ordered)
    columns = parts[0][2]  # a partition has its partitioned table's columns (read by name, in this order)
    return [(total // count, Unit(root, columns, True, relations=relations, months=months, share=(i, count),
                                  work_mem=work_mem)) for i in range(count)]


@contextmanager
def _shared_snapshot(url: str) -> Iterator[tuple[psycopg.Connection[tuple[object, ...]], str]]:
    with connect(url) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        row = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        yield conn, str(row[0])


def _copy_unit(unit: Unit, source_env: dict[str, str], target_env: dict[str, str], snapshot: str,
               key: str) -> int:
    psql = [pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--no-password"]
    target_columns = ", ".join(_quote(c) for c in unit.columns)
    pipe = Pipeline([
        Stage(f"psql (read {unit.describe()})", psql, source_env),
        Stage(f"psql (write {unit.describe()})", [
            pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "--no-password", "-c",
            f"COPY {_quote(unit.table)} ({target_columns}) FROM STDIN (FORMAT binary)"], target_env),
    ], feed_stdin=True, capture_stdout=True)
    try:
        # The key as a bound parameter (psql's \bind), so not even the statement's text holds it.
        bound = "'" + key.replace("\\", "\\\\").replace("'", "''") + "'"
        script = (f"SET jit = off;\nSET work_mem = '{unit.work_mem}';\n"
                  f"SELECT set_config('{KEY_SETTING}', $1, false) \\bind {bound} \\g /dev/null\n"
                  if unit.masked else "") + (
            f"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;\nSET TRANSACTION SNAPSHOT {_literal(snapshot)};\n"
            f"COPY ({unit.select()}) TO STDOUT (FORMAT binary);\nCOMMIT;\n")
        pipe.stdin.write(script.encode())
        pipe.stdin.close()
        out = pipe.stdout.read().decode()
        pipe.check()
    except BaseException:
        pipe.kill()
        raise
    # psql reports "COPY <rows>" for the write; the count goes into the marker and the report.
    tags = [line.split()[1] for line in out.splitlines() if line.startswith("COPY ")]
    if not tags:
        raise ExternalError(f"copy of {unit.describe()}: psql reported no row count")
    return int(tags[-1])


def _restore(archive: Path, env: dict[str, str], *sections: str, jobs: int = 1) -> None:
    argv = [pg_tool("pg_restore"), "--exit-on-error", "--no-password", "-d", env["PGDATABASE"],
            *(f"--section={s}" for s in sections)]
    if jobs > 1:
        argv.append(f"--jobs={jobs}")
    Pipeline([Stage("pg_restore (" + ", ".join(sections) + ")", [*argv, str(archive)], env)],
             feed_stdin=False, capture_stdout=False).check()


def masked_copy(source_url: str, target_url: str, key: str, *, jobs: int | None = None,
                progress: Progress = lambda _m: None) -> dict[str, int]:
    """Copy the database at `source_url` into the empty one at `target_url`, masked; returns rows per
    masked table. A source that is itself a masked copy (it has the marker) is copied as it is."""
    return _copy(source_url, target_url, key, mask=True, jobs=jobs, progress=progress)


def unmasked_copy(source_url: str, target_url: str, *, jobs: int | None = None) -> dict[str, int]:
    """The same copy with masking turned off (same COPY out -> COPY in, same index and key builds),
    and no marker: the floor any masking refresh pays, for benchmarks/refresh.py. Never a refresh:
    the copy it makes holds the source's personal data as it is. Returns rows per table."""
    return _copy(source_url, target_url, "", mask=False, jobs=jobs, progress=lambda _m: None)


def _copy(source_url: str, target_url: str, key: str, *, mask: bool, jobs: int | None,
          progress: Progress) -> dict[str, int]:
    jobs = jobs or default_jobs()
    source_env, target_env = libpq_env(source_url), libpq_env(target_url)
    with tempfile.TemporaryDirectory(prefix="ops-refresh-") as tmp:
        archive = Path(tmp) / "schema.dump"
        with _shared_snapshot(source_url) as (conn, snapshot):
            already = marker_rows(conn) is not None
            units = plan_units(conn, masked=mask and not already, jobs=jobs)
            # Everything but the tables' rows: definitions, sequence values, indexes, keys, policies, grants.
            # Table by table: a pattern (public.*) would match the sequences too and drop their values.
            # A stream names its partitions (an excluded partitioned table's partitions would still be dumped).
            skip = [f"--exclude-table-data=public.{_quote(t)}"
                    for t in sorted({t for u in units for t in (u.table, *u.relations)})]
            Pipeline([Stage("pg_dump (schema)", [
                pg_tool("pg_dump"), "--format=custom", "--no-password", f"--snapshot={snapshot}", *skip,
                "-f", str(archive)], source_env)], feed_stdin=False, capture_stdout=False).check()
            _restore(archive, target_env, "pre-data")
            for root in sorted({u.table for u in units if u.months}):
                if not _has_own_statistics(conn, root):
                    progress(f"copy: {root} has no statistics of its own (autovacuum never gathers a partitioned"
                             f" table's): its people are masked once a month each, not once; ANALYZE {root} first")
            progress(f"copy: {len(units)} parts of {len({u.table for u in units})} tables, {jobs} at a time, "
                     + ("as they are (the source is a masked copy)" if already else "masked in the stream"))
            rows = _copy_all(units, source_env, target_env, snapshot, key, jobs)
        progress("copy: sequence values, then indexes and keys in bulk")
        _restore(archive, target_env, "data", "post-data", jobs=jobs)
    if not mask:
        return rows
    with connect(target_url) as conn:
        if already:
            return marker_rows(conn) or {}
        counts = {t: rows.get(t, 0) for t in MASK_RULES}
        mark_masked(conn, counts)
        conn.commit()
    return counts


def _copy_all(units: list[Unit], source_env: dict[str, str], target_env: dict[str, str], snapshot: str,
              key: str, jobs: int) -> dict[str, int]:
    rows: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures: dict[Future[int], Unit] = {
            pool.submit(_copy_unit, u, source_env, target_env, snapshot, key): u for u in units}
        pending: set[Future[int]] = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    unit = futures[future]
                    rows[unit.rules_of] = rows.get(unit.rules_of, 0) + future.result()
                    if unit.masked:
                        failpoints.hit("refresh.mask.table")
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return rows


def _has_own_statistics(conn: psycopg.Connection[tuple[object, ...]], table: str) -> bool:
    """Whether ANALYZE gathered `table`'s inherited statistics (what memoized_select's plan reads)."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_stats WHERE schemaname = 'public' AND tablename = %s"
                       " AND inherited)", (table,)).fetchone()
    return bool(row and row[0])


def marker_rows(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, int] | None:
    """The rows masked per table that the database's MARKER records (empty if it records none), or None
    when it has no marker: it was never masked, or its masking did not finish."""
    exists = conn.execute("SELECT to_regclass(%s)", (f"public.{MARKER}",)).fetchone()
    if not (exists and exists[0]):
        return None
    row = conn.execute(sql.SQL("SELECT rows FROM {} ORDER BY masked_at DESC LIMIT 1").format(
        sql.Identifier(MARKER))).fetchone()
    return {str(k): int(v) for k, v in dict(row[0]).items()} if row else {}  # type: ignore[call-overload]


def mark_masked(conn: psycopg.Connection[tuple[object, ...]], counts: dict[str, int]) -> None:
    """Write MARKER with the rows masked per table, in the caller's transaction: it commits the marker with
    the masked rows, so a database with the marker is complete and masked."""
    conn.execute(sql.SQL("CREATE TABLE {} (masked_at timestamptz NOT NULL DEFAULT now(), rows jsonb NOT NULL)")
                 .format(sql.Identifier(MARKER)))
    conn.execute(sql.SQL("INSERT INTO {} (rows) VALUES (%s::jsonb)").format(sql.Identifier(MARKER)),
                 (json.dumps(counts),))
