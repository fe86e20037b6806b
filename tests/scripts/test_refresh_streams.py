"""How the masked copy shares a partitioned table's people among its streams, without a database."""

from __future__ import annotations

import re
from datetime import date

import pytest

from autoenroll.partitions import add_months, partition_name
from ops.refresh.masked_copy import Unit, _streams, person_share

COLUMNS = ("id", "employee_id", "ppsn", "month")


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_every_stream_reads_every_month_for_its_own_share_of_the_people(count: int) -> None:
    months = [add_months(date(2026, 1, 1), n) for n in range(14)]
    sizes = [10, 200, 30, 30, 500, 1, 0, 80, 80, 80, 90, 300, 5, 60]  # uneven, one empty month
    parts = [(size, partition_name(m), COLUMNS) for size, m in zip(sizes, months, strict=True)]
    streams = _streams("employee_results", list(reversed(parts)), count)
    assert len(streams) == count
    assert sorted(unit.share for _b, unit in streams) == [(i, count) for i in range(count)]
    for total, unit in streams:
        assert unit.masked and unit.table == "employee_results" and unit.columns == COLUMNS
        assert list(unit.months) == months and set(unit.relations) == {p[1] for p in parts}
        assert total == sum(sizes) // count
        assert ("NOT IN" in unit.select()) == (count > 1)


@pytest.mark.parametrize("count", [2, 3, 7])
def test_the_shares_of_the_people_are_disjoint_and_cover_every_residue(count: int) -> None:
    """Each share excludes exactly the other shares' residues, so a person (a value of the hash) is in one."""
    for i in range(count):
        condition = person_share("employee_results", i, count)
        assert condition.startswith('coalesce(abs(hashtextextended(s."employee_id", 0) % ')
        others = {int(r) for r in re.search(r"NOT IN \(([^)]*)\)", condition)[1].split(", ")}  # type: ignore[index]
        assert others == set(range(count)) - {i}


def test_a_stream_names_its_share() -> None:
    unit = Unit("employee_results", COLUMNS, True, relations=("a", "b"), months=(date(2026, 1, 1),), share=(1, 2))
    assert unit.describe() == "employee_results (people share 2 of 2, 2 partitions)"
