"""A plan runs in a process where asyncio.run() has already come and gone (as in the full suite)."""

from __future__ import annotations

import asyncio

import pytest

from stacks.plan import run_plan

pytestmark = pytest.mark.stacks


def test_a_plan_runs_after_asyncio_run_left_the_thread_without_a_loop() -> None:
    # asyncio.run() ends by setting the thread's loop to None; Pulumi's mocks then found no loop
    # and every later plan in the suite failed with "There is no current event loop".
    asyncio.run(asyncio.sleep(0))
    plan = run_plan("staging")
    assert plan.outputs["public_url"].startswith("https://")
    assert not any(plan.policies.values()), plan.policies
