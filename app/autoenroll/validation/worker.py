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
from autoenroll.validation.engine import RowResult, Tally, Validation, check_rows, key_counts
from autoenroll.validation.parse import read
from autoenroll.validation.redact import redact
from autoenroll.validation.reports import errors_csv, summary_json, summary_pdf


@dataclass(frozen=True)
class Checked:
    """What the worker hands back for a file it could read."""

    summary: dict[str, Any]
    reports: dict[str, bytes]
    rows_copy: list[bytes]  # employee_results rows in COPY's text format (RESULT_COLUMNS), ROWS_PER_CHUNK a chunk
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


# A chunk is one write to the database's COPY: a few hundred kB, whatever the file.
ROWS_PER_CHUNK = 5000
RESULT_COLUMNS = ("row_number", "employee_id", "ppsn", "first_name", "last_name", "date_of_birth", "email", "gross_pay",
                  "pay_frequency", "eligibility", "employee_contribution", "employer_contribution",
                  "state_contribution", "errors")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES) if ("\\" in value or "\t" in value or "\n" in value or "\r" in value) \
        else value


def _number(value: object) -> str:
    return _NULL if value is None else str(value)


class ResultRows:
    """employee_results rows, written as COPY text while the rows are checked, so no row is kept for it; each
    chunk goes to `emit` as soon as it is full (the app stores it while the rest is checked), or is kept."""

    def __init__(self, emit: Callable[[bytes], None] | None = None) -> None:
        self.chunks: list[bytes] = []
        self._lines: list[str] = []
        self._emit = emit

    def add(self, r: RowResult) -> None:
        # Lengths match employee_results' use of each text column; numbers are already in numeric(12, 2) range.
        v = r.values
        get = v.get
        texts = [get("employee_id", "")[:100], get("ppsn", "")[:20], get("first_name", "")[:200],
                 get("last_name", "")[:200], get("email", "")[:320], get("pay_frequency", "")[:40],
                 json.dumps([{"column": e.column, "rule": e.rule, "message": e.message} for e in r.errors],
                            ensure_ascii=False) if r.errors else "[]"]
        # Most rows hold nothing COPY must escape: one look at all the text at once instead of one per field.
        text = "\t".join(texts)
        if "\\" in text or "\n" in text or "\r" in text or text.count("\t") != len(texts) - 1:
            texts = [_copy_text(t) for t in texts]
        employee_id, ppsn, first_name, last_name, email, frequency, errors = texts
        line = "\t".join((str(r.row), employee_id, ppsn, first_name, last_name,
                           r.dob.isoformat() if r.dob else _NULL, email or _NULL, _number(r.gross), frequency,
                           r.eligibility, _number(r.employee), _number(r.employer), _number(r.state), errors))
        self._lines.append(line + "\n")
        if len(self._lines) == ROWS_PER_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._lines:
            # "replace": a lone surrogate (which no decoder here produces) becomes "?", never a failed COPY
            chunk = "".join(self._lines).encode("utf-8", "replace")
            self._lines = []
            if self._emit is None:
                self.chunks.append(chunk)
            else:
                self._emit(chunk)

    def done(self) -> list[bytes]:
        self._flush()
        return self.chunks


def _checked(data: bytes, kind: str, run_id: str, filename: str, on: date, limits: UploadLimits,
             raw_column_map: str | None, emit: Callable[[bytes], None] | None) -> tuple[
                 Validation, dict[str, bytes], list[bytes]]:
    """Read the file twice (the duplicate rules count the whole file first), keeping only the rows with errors:
    the reports need those, and every other row goes straight into COPY text."""
    sheet = read(data, kind, column_map(raw_column_map), limits)
    ppsns, ids = key_counts(values for _, values in sheet.rows())
    tally, with_errors, rows = Tally(), [], ResultRows(emit)
    for r in check_rows(sheet.rows(), ppsns, ids, sheet.sources, on):
        tally.add(r)
        rows.add(r)
        if r.errors:
            with_errors.append(r)
    del ppsns, ids
    validation = Validation(with_errors, sheet.warnings, sheet.encoding, on, sheet.sources, sheet.mapped, tally)
    reports = {"summary.json": summary_json(validation, {"run_id": run_id}),
               "errors.csv": errors_csv(validation), "summary.pdf": summary_pdf(validation, filename)}
    return validation, reports, rows.done()


def check(data: bytes, kind: str, filename: str, run_id: str, on: date, limits: UploadLimits,
          raw_column_map: str | None = None, emit: Callable[[bytes], None] | None = None) -> Checked | Refused:
    """Parse, validate and build the reports, in this process (the worker, or a test). `raw_column_map`
    is the employer's JSON {field: header in the file} (validation/columns.py); `emit`, if given, receives
    the employee_results rows chunk by chunk as they are checked (then Checked.rows_copy is empty)."""
    started = time.process_time()
    out_of_memory = False
    try:
        validation, reports, rows_copy = _checked(data, kind, run_id, filename, on, limits, raw_column_map, emit)
    except UnrecognisedColumns as exc:
        return Refused(str(exc), 422, limits.describe(), time.process_time() - started, exc.detail())
    except RejectedFile as exc:
        return Refused(str(exc), 422, limits.describe(), time.process_time() - started)
    except CpuLimit:
        return Refused(f"reading the file took more than {limits.parse_cpu_seconds} s of CPU "
                       "(limit parse_cpu_seconds): split it or save it as CSV", 422, limits.describe(),
                       time.process_time() - started)
    except MemoryError:
        # Answered after the handler: inside it the traceback still holds the failed check's frames (every
        # row read so far), so building the answer there could fail again and kill the worker unnamed.
        out_of_memory = True
    if out_of_memory:
        return _memory_refused(limits, time.process_time() - started)
    summary = validation.summary()
    if raw_column_map:
        summary["column_map"] = raw_column_map  # kept with the run: an erasure re-reads the file the same way
    return Checked(summary, reports, rows_copy, time.process_time() - started,
                   resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _memory_refused(limits: UploadLimits, cpu_seconds: float = 0.0) -> Refused:
    return Refused(f"reading the file needed more than {limits.parse_memory_mb} MB of memory "
                   "(limit parse_memory_mb): split it or save it as CSV", 422, limits.describe(), cpu_seconds)


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


def _worker(conn: Any, task: Callable[..., Any], args: tuple[Any, ...], limits: UploadLimits, stream: bool) -> None:
    signal.signal(signal.SIGXCPU, _raise_cpu_limit)  # the soft limit; the hard one, a second later, kills
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.parse_cpu_seconds, limits.parse_cpu_seconds + 1))
    memory = limits.parse_memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    # Messages: ("rows", COPY text chunk) while a streamed check runs, then one ("done", outcome).
    # A MemoryError anywhere (outside `check`'s own handler: sending a large outcome pickles a copy of it)
    # still answers naming the limit, once the frames that held the memory are gone.
    out_of_memory = False
    try:
        outcome = task(*args, emit=lambda chunk: conn.send(("rows", chunk))) if stream else task(*args)
        del args
        conn.send(("done", outcome))
    except MemoryError:
        out_of_memory = True
    if out_of_memory:
        outcome = None
        conn.send(("done", _memory_refused(limits)))
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

    def slot(self) -> asyncio.Semaphore:
        """A worker slot, for `async with`: a caller that opens a database transaction around a streamed check
        takes it first (and passes slot_held=True), so uploads waiting for a worker hold no connection."""
        return self._slots

    async def run(self, data: bytes, kind: str, filename: str, run_id: str, on: date,
                  raw_column_map: str | None = None,
                  gone: Callable[[], Awaitable[bool]] | None = None,
                  on_rows: Callable[[bytes], Awaitable[None]] | None = None, slot_held: bool = False) -> (
                      Checked | Refused):
        """The check's outcome; `gone()` is asked now and then whether the client hung up (then the work stops);
        `on_rows`, if given, is handed the employee_results rows (COPY text) chunk by chunk while the check runs."""
        args = (data, kind, filename, run_id, on, self.limits, raw_column_map)
        outcome = await (self._call(check, args, gone, on_rows) if slot_held else
                         self.call(check, args, gone, on_rows))
        assert isinstance(outcome, Checked | Refused)
        return outcome

    async def call(self, task: Callable[..., Any], args: tuple[Any, ...],
                   gone: Callable[[], Awaitable[bool]] | None = None,
                   on_rows: Callable[[bytes], Awaitable[None]] | None = None) -> Any:
        """`task(*args)` in a worker under the limits, or a Refused saying which limit stopped it. With `on_rows`,
        the task is also given `emit=`, and what it emits is handed to `on_rows` in order, as it arrives."""
        async with self._slots:
            return await self._call(task, args, gone, on_rows)

    async def _call(self, task: Callable[..., Any], args: tuple[Any, ...],
                    gone: Callable[[], Awaitable[bool]] | None,
                    on_rows: Callable[[bytes], Awaitable[None]] | None) -> Any:
        loop = asyncio.get_running_loop()
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_worker, args=(sender, task, args, self.limits, on_rows is not None),
                                        daemon=True)
        await asyncio.to_thread(process.start)
        sender.close()
        # The pipe is read as fast as the worker writes (a full pipe would stop it); chunks wait here for on_rows.
        chunks: asyncio.Queue[bytes | None] = asyncio.Queue()

        async def deliver() -> None:
            while (chunk := await chunks.get()) is not None:
                assert on_rows is not None
                await on_rows(chunk)

        delivering = asyncio.ensure_future(deliver()) if on_rows is not None else None
        deadline = loop.time() + self.limits.parse_seconds
        try:
            while True:
                message = await self._next(receiver, process, deadline, gone, delivering)
                if isinstance(message, Refused):
                    return message
                tag, payload = message
                if tag == "rows":
                    chunks.put_nowait(payload)
                    continue
                if delivering is not None:
                    chunks.put_nowait(None)
                    await delivering
                return payload
        finally:
            if delivering is not None and not delivering.done():
                delivering.cancel()
                await asyncio.wait({delivering})
            if process.is_alive():
                process.kill()
            await asyncio.to_thread(process.join)
            receiver.close()
            process.close()

    async def _next(self, receiver: Any, process: Any, deadline: float, gone: Callable[[], Awaitable[bool]] | None,
                    delivering: asyncio.Future[None] | None) -> tuple[str, Any] | Refused:
        """The worker's next message, or a Refused when a limit, the client or the worker ends the work; a failed
        on_rows (the database) raises here."""
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(receiver.fileno(), ready)
        try:
            while not readable.done():
                if delivering is not None and delivering.done():
                    delivering.result()  # on_rows failed: its exception
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return self._refused(f"reading the file took longer than {self.limits.parse_seconds:g} s "
                                         "(limit parse_seconds): split it or save it as CSV")
                waiting: set[asyncio.Future[None]] = {readable} if delivering is None else {readable, delivering}
                await asyncio.wait(waiting, timeout=min(0.2, remaining), return_when=asyncio.FIRST_COMPLETED)
                if gone is not None and not readable.done() and await gone():
                    return self._refused("the client hung up before the file was read")
        finally:
            if not readable.done():
                readable.cancel()
            loop.remove_reader(receiver.fileno())
        os.set_blocking(receiver.fileno(), True)  # uvloop's add_reader made it non-blocking; recv needs it whole
        try:
            message: tuple[str, Any] = await asyncio.to_thread(receiver.recv)
        except EOFError:  # the worker died without answering: the kernel's hard CPU limit, or a crash
            await asyncio.to_thread(process.join, 5)
            if process.exitcode == -signal.SIGKILL or process.exitcode == -signal.SIGXCPU:
                return self._refused(f"reading the file took more than {self.limits.parse_cpu_seconds} s of "
                                     "CPU (limit parse_cpu_seconds): split it or save it as CSV")
            return self._refused(f"the file could not be read within this service's limits (the reader "
                                 f"stopped with code {process.exitcode})")
        return message
