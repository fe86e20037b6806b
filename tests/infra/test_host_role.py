"""The host role, checked on the machine: sockets, sshd, firewall, TLS, headers, /health.

Against a real server every check runs; on the local test host the ones only a VM can
answer are skipped with their reason (see checks.CHECKS).
"""

from __future__ import annotations

import pytest

from tests.infra.checks import CHECKS, Check
from tests.infra.target import Target


@pytest.mark.parametrize("check", CHECKS, ids=[c.name for c in CHECKS])
def test_host_role(check: Check, target: Target) -> None:
    if target.local and check.server_only:
        pytest.skip(f"{check.name}: {check.server_only}")
    evidence = check.run(target)
    print(f"{check.name}: {evidence}")
