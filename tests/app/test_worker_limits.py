"""The upload worker stops at each of its limits, and a stopped worker is gone: CPU time (the kernel's
RLIMIT_CPU), memory (RLIMIT_AS), wall time, and a client that hangs up."""

from __future__ import annotations

import asyncio
import os
from datetime import date

import pytest

from autoenroll.config import UploadLimits
from autoenroll.validation.worker import Checked, Checker, Refused
from tests.app.payroll import HEADER, csv_file, row

pytestmark = pytest.mark.unit
ON = date(2026, 11, 21)
# Several times the CPU and wall limits below even on a quiet machine (the checker reads about
# 80,000 rows a second here): 60,000 rows once passed a 1 s wall limit when the machine was idle.
# The row and cell caps are raised so that time, not size, is what stops it.
ROOM = {"max_rows": 1_000_000, "max_cells": 20_000_000}
BIG = csv_file(300_000)
ALL_WRONG = ("\n".join([HEADER, *(row(i, gross="n/a") for i in range(150_000))]) + "\n").encode()


def _children(pid: int) -> set[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return {int(p) for p in f.read().split()}
    except FileNotFoundError:
        return set()


def workers() -> set[int]:
    """Live workers: the children of this process's forkserver (its command line names it)."""
    found = set()
    for pid in _children(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"forkserver" in f.read():
                    found |= _children(pid)
        except FileNotFoundError:
            continue
    return found


def run(limits: UploadLimits, data: bytes, gone: object = None) -> Checked | Refused:
    async def go() -> Checked | Refused:
        return await Checker(limits).run(data, "csv", "x.csv", "run", ON, None, gone)  # type: ignore[arg-type]

    return asyncio.run(go())


def test_a_small_file_is_checked_in_a_worker() -> None:
    outcome = run(UploadLimits(), csv_file(3))
    assert isinstance(outcome, Checked) and outcome.summary["rows"] == 3 and outcome.peak_rss_kb > 0


@pytest.mark.parametrize(("limits", "data", "named"), [
    (UploadLimits(parse_cpu_seconds=1, **ROOM), BIG, "parse_cpu_seconds"),
    (UploadLimits(parse_seconds=0.5, **ROOM), BIG, "parse_seconds"),
    # every row with an error, so every row is kept for the reports: ~330 MB
    (UploadLimits(parse_memory_mb=256), ALL_WRONG, "parse_memory_mb"),
])
def test_each_limit_stops_the_worker_and_is_named(limits: UploadLimits, data: bytes, named: str) -> None:
    outcome = run(limits, data)
    assert isinstance(outcome, Refused) and named in outcome.message, outcome
    assert outcome.limits[named] == getattr(limits, named)
    assert workers() == set()


def hog() -> None:
    """Holds memory until the kernel's RLIMIT_AS refuses more: a MemoryError outside `check`'s handler."""
    held = []
    while True:
        held.append(bytearray(8 * 1024 * 1024))


def test_running_out_of_memory_anywhere_in_the_worker_is_named() -> None:
    # Once seen in CI: the worker died with code 1 (a second MemoryError while the first one's frames were
    # still held) and the answer named no limit.
    limits = UploadLimits(parse_memory_mb=256)

    async def go() -> object:
        return await Checker(limits).call(hog, ())

    outcome = asyncio.run(go())
    assert isinstance(outcome, Refused) and "parse_memory_mb" in outcome.message, outcome
    assert workers() == set()


def test_a_client_that_hangs_up_stops_the_work() -> None:
    asked = []

    async def gone() -> bool:
        asked.append(True)
        return True

    outcome = run(UploadLimits(**ROOM), BIG, gone)
    assert isinstance(outcome, Refused) and "hung up" in outcome.message and asked
    assert workers() == set()
