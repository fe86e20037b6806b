"""`pytest tests/infra --hosts=ssh://...` is the path a real server takes; prove it works end to end.

The suite is run in a child pytest against the local test host named as a server would be
(an alias in an ssh config file, the site name, a CA file on the host), so the --hosts path
(spec parsing, `ssh -G` address resolution, sudo for the root views, no skips) is exercised.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from ops.paths import REPO_ROOT
from tests.infra.checks import CHECKS
from tests.infra.testhost import SITE_NAME, LocalTestHost

NEEDS_SUDO = {"sshd-settings", "firewall-rules"}


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """check name -> (outcome, message) from a JUnit XML report."""
    found = {}
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314 - our own child pytest wrote it
        name = case.attrib["name"].split("-", 1)[1].rstrip("]")  # test_host_role[ssh://testhost-<check>]
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        found[name] = ("passed", "") if problem is None else (problem.tag, problem.attrib.get("message", ""))
    return found


def test_the_suite_runs_against_a_server_named_by_hosts(local_test_host: LocalTestHost, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "tests/infra/test_host_role.py", "-p", "no:cacheprovider", "-q",
         "--hosts=ssh://testhost", f"--ssh-config={local_test_host.ssh_config}", f"--site-address={SITE_NAME}",
         f"--ca-file={local_test_host.ca_file}", f"--junitxml={junit}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    results = outcomes(junit)
    assert set(results) == {c.name for c in CHECKS}
    # Nothing is skipped against a server: the VM-only checks run (and fail here: no Docker, no units).
    assert not [n for n, (outcome, _) in results.items() if outcome == "skipped"]
    # The root views go through sudo, which this machine's deploy user is not granted.
    for name in NEEDS_SUDO:
        assert results[name][0] == "failure" and "sudo" in results[name][1], results[name]
    server_agnostic = {c.name for c in CHECKS if not c.server_only} - NEEDS_SUDO
    assert {n: results[n] for n in server_agnostic if results[n][0] != "passed"} == {}
