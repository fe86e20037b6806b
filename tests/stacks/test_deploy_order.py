"""From empty state, the stacks come up in the documented order (README: production, then staging);
a StackReference to a stack that has not come up fails, as on a real backend."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from stacks.plan import MissingStackError, run_plan

pytestmark = pytest.mark.stacks

README = Path(__file__).parents[2] / "README.md"


def documented_order() -> list[str]:
    match = re.search(r"Deploy order: `pulumi up` on (\w+), then (\w+)", README.read_text())
    assert match, "README states the deploy order as 'Deploy order: `pulumi up` on X, then Y'"
    return [match.group(1), match.group(2)]


@pytest.mark.parametrize("organization", ["organization", "komplyone"])  # self-managed backend, Pulumi Cloud
def test_stacks_come_up_in_the_documented_order_from_empty_state(organization: str) -> None:
    backend: dict[str, dict[str, Any]] = {}
    plans = {}
    for stack in documented_order():
        plan = run_plan(stack, existing_stacks=backend, organization=organization)
        assert plan.passed, plan.policies
        backend[f"{organization}/autoenroll/{stack}"] = plan.outputs
        plans[stack] = plan
    assert plans["staging"].outputs["neon_project_id"] == plans["production"].outputs["neon_project_id"]
    main = plans["production"].outputs["neon_branches"]["main"]["id"]
    assert plans["staging"].outputs["neon_branches"]["main"]["id"] == main


def test_the_other_order_fails_naming_the_missing_stack() -> None:
    with pytest.raises(Exception) as failure:
        run_plan("staging", existing_stacks={})
    assert "organization/autoenroll/production" in str(failure.value)
    assert MissingStackError.__name__ in str(failure.value) or "has not come up" in str(failure.value)


def test_a_missing_stack_is_reported_once_not_by_every_future_that_saw_it() -> None:
    """Pulumi's other futures used to log the same MissingStackError as "Future exception was never
    retrieved" at exit: ten tracebacks at the end of a CI log, where they hid pytest's summary."""
    import subprocess
    import sys

    from ops.paths import REPO_ROOT

    code = ("from stacks.plan import run_plan\n"
            "try:\n    run_plan('staging', existing_stacks={})\n"
            "except Exception as exc:\n    print(type(exc).__name__)\n"
            "for _ in range(3):\n    run_plan('production')\n")  # later plans collect the old futures
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    assert "MissingStackError" in out.stdout
    assert "never retrieved" not in out.stderr, out.stderr[-2000:]
