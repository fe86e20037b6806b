"""bin/test's two parts (tests/parts.py): each test runs in exactly one part, chosen by its fixtures, and
the run's last lines name every failure of both parts, with an exit code that fails when either part does."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import parts

CONFTEST = """
import pytest
from tests.parts import select

def pytest_collection_modifyitems(config, items):
    select(config, items)

@pytest.fixture
def lab():
    return "the lab"
"""

TESTS = """
def test_on_the_lab_fails(lab):
    assert lab == "another lab"

def test_needs_no_host_passes():
    assert True

def test_needs_no_host_fails():
    assert 1 == 2
"""


def test_each_test_runs_in_one_part_and_the_last_lines_name_every_failure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_sample.py").write_text(TESTS)
    code = parts.run([str(suite), "-p", "no:cacheprovider", "--rootdir", str(suite), "-q", "-ra"], tmp_path / "logs")
    out = capsys.readouterr().out
    assert code == 1
    hosts_log = (tmp_path / "logs" / "hosts.log").read_text()
    rest_log = (tmp_path / "logs" / "rest.log").read_text()
    assert "1 failed" in hosts_log and "2 deselected" in hosts_log, hosts_log
    assert "1 failed, 1 passed" in rest_log and "1 deselected" in rest_log, rest_log
    tail = out.strip().splitlines()[-8:]
    assert any("[hosts] FAILED" in line and "test_on_the_lab_fails" in line for line in tail), tail
    assert any("[rest] FAILED" in line and "test_needs_no_host_fails" in line for line in tail), tail
    assert tail[-1] == "==> suite FAILED (exit 1)"


def test_a_part_with_no_final_line_is_named_as_killed() -> None:
    log = "tests/x.py ....\nFAILED tests/x.py::test_a - assert 0\n"
    lines = parts.summary_lines("hosts", log)
    assert lines[0] == "  [hosts] FAILED tests/x.py::test_a - assert 0"
    assert "killed or crashed" in lines[-1]


def test_the_rest_part_refuses_to_make_a_test_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(parts.PART_VARIABLE, "rest")
    with pytest.raises(RuntimeError, match="a test host is made only in the hosts part"):
        parts.require_hosts_part("a test host")
    monkeypatch.setenv(parts.PART_VARIABLE, "hosts")
    parts.require_hosts_part("a test host")
    assert parts.sandbox_suffix() == "-hosts"
    monkeypatch.setenv(parts.PART_VARIABLE, "lab")
    with pytest.raises(SystemExit, match="expected one of hosts, rest"):
        parts.current_part()
