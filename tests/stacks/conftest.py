"""Plans of both stacks, computed once per session (the program under Pulumi's mocks)."""

from __future__ import annotations

import pytest

from stacks.plan import Plan, run_plan


@pytest.fixture(scope="session")
def production_plan() -> Plan:
    return run_plan("production")


@pytest.fixture(scope="session")
def staging_plan() -> Plan:
    return run_plan("staging")
