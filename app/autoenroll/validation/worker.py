"""Reading an upload in a worker process that can be stopped.

Parsing is the one place where a client's bytes decide how much CPU and memory the app spends, so it
runs in a process of its own (forked from a forkserver that has the parsers imported already) under
kernel limits: `RLIMIT_CPU` for CPU time and `RLIMIT_AS` for memory, plus a wall-time deadline and a
client that hangs up, either of which kills it. When it exits its memory goes back to the system
with it, however big the file was; the app only receives the finished reports and the rows to store.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from autoenroll.config import UploadLimits
from autoenroll.files import RejectedFile
from autoenroll.validation.columns import UnrecognisedColumns, column_map
from autoenroll.validation.engine import RowResult, Validation, validate
from autoenroll.validation.parse import parse
from autoenroll.validation.redact import redact
from autoenroll.validation.reports import errors_csv, summary_json, summary_pdf


@dataclass(frozen=True)
class Checked:
    """What the worker hands back for a file it could read."""

    summary: dict[str, Any]
    reports: dict[str, bytes]
    rows_json: list[str]  # employee_results rows as JSON arrays of ROWS_PER_CHUNK (one statement each)
    cpu_seconds: float
    peak_rss_kb: int


@dataclass(frozen=True)
class Refused:
    """A file the worker would not or could not read, and why, in words for the employer."""

    message: str
    status: int = 422
    limits: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)  # columns.UnrecognisedColumns: what the page offers


class CpuLimit(Exception):
    pass


def _raise_cpu_limit(_signum: int, _frame: object) -> None:
    raise CpuLimit


# libpq keeps its send buffer as large as the largest statement it sent, for the life of the pooled
# connection: chunks keep that (and the app's peak) to a few MB, whatever the file.
ROWS_PER_CHUNK = 5000


def _row(r: RowResult) -> dict[str, Any]:
    # Lengths match employee_results' use of each text column; numbers are already in numeric(12, 2) range.
    v = r.values
    return {
        "row_number": r.row, "employee_id": v.get("employee_id", "")[:100], "ppsn": v.get("ppsn", "")[:20],
        "first_name": v.get("first_name", "")[:200], "last_name": v.get("last_name", "")[:200],
        "date_of_birth": r.dob.isoformat() if r.dob else None, "email": v.get("email", "")[:320] or None,
        "gross_pay": str(r.gross) if r.gross is not None else None,
        "pay_frequency": v.get("pay_frequency", "")[:40], "eligibility": r.eligibility,
        "employee_contribution": str(r.employee) if r.employee is not None else None,
        "employer_contribution": str(r.employer) if r.employer is not None else None,
        "state_contribution": str(r.state) if r.state is not None else None,
        "errors": [{"column": e.column, "rule": e.rule, "message": e.message} for e in r.errors],
    }


def _rows_json(validation: Validation) -> list[str]:
    # One chunk's dicts at a time: all 100,000 at once would be the worker's largest allocation.
    results = validation.results
    return [json.dumps([_row(r) for r in results[i:i + ROWS_PER_CHUNK]], ensure_ascii=False, separators=(",", ":"))
            for i in range(0, len(results), ROWS_PER_CHUNK)]


def check(data: bytes, kind: str, filename: str, run_id: str, on: date, limits: UploadLimits,
          raw_column_map: str | None = None) -> Checked | Refused:
    """Parse, validate and build the reports, in this process (the worker, or a test). `raw_column_map`
    is the employer's JSON {field: header in the file} (validation/columns.py)."""
    started = time.process_time()
    try:
        validation = validate(parse(data, kind, column_map(raw_column_map), limits), on)
        reports = {"summary.json": summary_json(validation, {"run_id": run_id}),
                   "errors.csv": errors_csv(validation), "summary.pdf": summary_pdf(validation, filename)}
        rows_json = _rows_json(validation)
    except UnrecognisedColumns as exc:
        return Refused(str(exc), 422, limits.describe(), time.process_time() - started, exc.detail())
    except RejectedFile as exc:
        return Refused(str(exc), 422, limits.describe(), time.process_time() - started)
    except CpuLimit:
        return Refused(f"reading the file took more than {limits.parse_cpu_seconds} s of CPU "
                       "(limit parse_cpu_seconds): split it or save it as CSV", 422, limits.describe(),
                       time.process_time() - started)
    except MemoryError:
        return Refused(f"reading the file needed more than {limits.parse_memory_mb} MB of memory "
                       "(limit parse_memory_mb): split it or save it as CSV", 422, limits.describe(),
                       time.process_time() - started)
    summary = validation.summary()
    if raw_column_map:
        summary["column_map"] = raw_column_map  # kept with the run: an erasure re-reads the file the same way
    return Checked(summary, reports, rows_json, time.process_time() - started,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def redact_and_check(data: bytes, kind: str, filename: str, run_id: str, on: date, limits: UploadLimits,
                     ppsn: str, columns: dict[str, str | None], raw_column_map: str | None) -> tuple[
                         bytes, int, Checked | Refused]:
    """The file without `ppsn`'s rows (blanked, so every other row keeps its number), how many rows
    were blanked, and the check of what is left, read with the same columns as the first time
    (`columns`: the run summary's field -> header): what an employee's erasure stores in place of both."""
    try:
        redacted, blanked = redact(data, kind, ppsn, columns.get("ppsn"))
    except RejectedFile as exc:
        return data, 0, Refused(str(exc), 422, limits.describe())
    return redacted, blanked, check(redacted, kind, filename, run_id, on, limits, raw_column_map)


def _worker(conn: Any, task: Callable[..., Any], args: tuple[Any, ...], limits: UploadLimits) -> None:
    signal.signal(signal.SIGXCPU, _raise_cpu_limit)  # the soft limit; the hard one, a second later, kills
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.parse_cpu_seconds, limits.parse_cpu_seconds + 1))
    memory = limits.parse_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    outcome = task(*args)
    del args
    conn.send(outcome)
    conn.close()


class Checker:
    """Runs `check` in stoppable worker processes, at most `parse_workers` at once (more wait)."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self._context = multiprocessing.get_context("forkserver")
        # Each worker re-runs the parent's __main__ module (multiprocessing's "main fixup"): preloading it
        # too (autoenroll.serve in the container) keeps that to the module's own few lines.
        main = getattr(sys.modules["__main__"].__spec__, "name", None)
        self._context.set_forkserver_preload(["autoenroll.validation.preload", *([main] if main else [])])
        self._slots = asyncio.Semaphore(limits.parse_workers)

    def start(self) -> None:
        """Start the forkserver now (it imports the parsers once), not on the first upload."""
        from multiprocessing import forkserver

        forkserver.ensure_running()

    def _refused(self, message: str) -> Refused:
        return Refused(message, 422, self.limits.describe())

    async def run(self, data: bytes, kind: str, filename: str, run_id: str, on: date,
                  raw_column_map: str | None = None,
                  gone: Callable[[], Awaitable[bool]] | None = None) -> Checked | Refused:
        """The check's outcome; `gone()` is asked now and then whether the client hung up (then the work stops)."""
        outcome = await self.call(check, (data, kind, filename, run_id, on, self.limits, raw_column_map), gone)
        assert isinstance(outcome, Checked | Refused)
        return outcome

    async def call(self, task: Callable[..., Any], args: tuple[Any, ...],
                   gone: Callable[[], Awaitable[bool]] | None = None) -> Any:
        """`task(*args)` in a worker under the limits, or a Refused saying which limit stopped it."""
        async with self._slots:
            return await self._call(task, args, gone)

    async def _call(self, task: Callable[..., Any], args: tuple[Any, ...],
                    gone: Callable[[], Awaitable[bool]] | None) -> Any:
        loop = asyncio.get_running_loop()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_worker, args=(sender, task, args, self.limits), daemon=True)
        await asyncio.to_thread(process.start)
        sender.close()
        readable: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(receiver.fileno(), ready)
        deadline = loop.time() + self.limits.parse_seconds
        try:
            while not readable.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return self._refused(f"reading the file took longer than {self.limits.parse_seconds:g} s "
                                         "(limit parse_seconds): split it or save it as CSV")
                await asyncio.wait({readable}, timeout=min(0.2, remaining))
                if gone is not None and not readable.done() and await gone():
                    return self._refused("the client hung up before the file was read")
            loop.remove_reader(receiver.fileno())
            os.set_blocking(receiver.fileno(), True)  # uvloop's add_reader made it non-blocking; recv needs it whole
            try:
                outcome = await asyncio.to_thread(receiver.recv)
            except EOFError:  # the worker died without answering: the kernel's hard CPU limit, or a crash
                await asyncio.to_thread(process.join, 5)
                if process.exitcode == -signal.SIGKILL or process.exitcode == -signal.SIGXCPU:
                    return self._refused(f"reading the file took more than {self.limits.parse_cpu_seconds} s of "
                                         "CPU (limit parse_cpu_seconds): split it or save it as CSV")
                return self._refused(f"the file could not be read within this service's limits (the reader "
                                     f"stopped with code {process.exitcode})")
            return outcome
        finally:
            if not readable.done():
                readable.cancel()
            loop.remove_reader(receiver.fileno())
            if process.is_alive():
                process.kill()
            await asyncio.to_thread(process.join)
            receiver.close()
            process.close()
