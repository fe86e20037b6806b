"""How the masked copy shares a partitioned table's months among its streams, without a database."""

from __future__ import annotations

from datetime import date

import pytest

from autoenroll.partitions import add_months, partition_name
from ops.refresh.masked_copy import _streams

COLUMNS = ("id", "ppsn", "month")


@pytest.mark.parametrize("jobs", [1, 2, 3, 5, 40])
def test_every_month_is_in_exactly_one_stream_of_consecutive_months(jobs: int) -> None:
    months = [add_months(date(2026, 1, 1), n) for n in range(14)]
    sizes = [10, 200, 30, 30, 500, 1, 0, 80, 80, 80, 90, 300, 5, 60]  # uneven, one empty month
    parts = [(size, partition_name(m), COLUMNS) for size, m in zip(sizes, months, strict=True)]
    streams = _streams("employee_results", list(reversed(parts)), jobs)
    # A stream per job while the months go round (with more jobs than months, small months may share one).
    assert len(streams) == jobs if jobs <= 5 else 1 <= len(streams) <= len(parts)
    shares = [unit.months for _bytes, unit in streams]
    assert [m for share in shares for m in share] == months  # all, once, in order: each share consecutive
    for total, unit in streams:
        assert unit.masked and unit.table == "employee_results" and unit.columns == COLUMNS
        assert total == sum(size for size, m in zip(sizes, months, strict=True) if m in unit.months)
    # The shares are balanced: none holds more than its fair part plus the biggest single month.
    assert max(t for t, _u in streams) <= sum(sizes) / len(streams) + max(sizes)
