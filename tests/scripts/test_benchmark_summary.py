"""benchmarks/backup.py's summary compares two steps by the medians its table prints, and says which way."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from ops.paths import REPO_ROOT

pytestmark = pytest.mark.unit


def bench() -> ModuleType:
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))  # as the script itself runs: measure.py beside it
    spec = importlib.util.spec_from_file_location("bench_backup", REPO_ROOT / "benchmarks" / "backup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_jobs_line_is_the_ratio_of_the_medians_with_its_direction_named() -> None:
    b = bench()
    run = b.measure.Run
    # The shape: pairs whose per-pair ratios (jobs1 / jobs2: 1.11, 1.05, 0.08; median 1.05) read as
    # "--jobs 2 faster" while the medians the table prints (2 s and 19 s) say --jobs 2 was much slower.
    jobs1 = [run(1.0, 0), run(20.0, 0), run(2.0, 0)]
    jobs2 = [run(0.9, 0), run(19.0, 0), run(25.0, 0)]
    line = b.compare("--jobs 2", jobs2, "--jobs 1", jobs1)
    assert line == "--jobs 2 is 9.50x slower than --jobs 1 (medians 19.00 s vs 2.00 s)"
    assert b.measure.median(jobs2).seconds / b.measure.median(jobs1).seconds == pytest.approx(9.5)
    faster = b.compare("--jobs 2", [run(6.0, 0)], "--jobs 1", [run(10.98, 0)])
    assert faster == "--jobs 2 is 1.83x faster than --jobs 1 (medians 6.00 s vs 10.98 s)"
