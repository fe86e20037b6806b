"""The SQL that masking builds, without a database: the hashing floor's SELECT computes exactly the
digests the masked copy computes (benchmarks/refresh.py compares the two, so they must not drift)."""

from __future__ import annotations

import re

import pytest

from autoenroll.masking import MASK_RULES, digests_only_select, masked_select

KEY = "current_setting('ops.masking_key')"


def _digests(query: str) -> set[str]:
    return set(re.findall(r"sha256\(convert_to\(.*?, 'UTF8'\)\) AS \"\w+\"", query))


@pytest.mark.parametrize("table", sorted(MASK_RULES))
def test_the_hashing_floor_computes_the_masked_copys_digests(table: str) -> None:
    columns = ["id", *MASK_RULES[table], "created_at"]
    floor, masked = digests_only_select(table, columns, key=KEY), masked_select(table, columns, key=KEY)
    assert _digests(floor) == _digests(masked)
    assert len(_digests(floor)) == len(MASK_RULES[table])
    assert "{key}" not in floor and KEY in floor
    # Every digest is used, so the planner can't drop one: the sum reads each by name.
    for column in MASK_RULES[table]:
        assert f'octet_length(d."{column}")' in floor


def test_a_table_without_masked_columns_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="stripe_events"):
        digests_only_select("stripe_events", ["id", "type"], key=KEY)
