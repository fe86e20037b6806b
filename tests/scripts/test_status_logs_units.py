"""`ops logs`' pieces without a host: `--since` parsing, the argv the SSH path runs, and the deploy
script's `logs` verb and journal lines run for real (with journalctl and logger stood in by recorders)."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ops.adapters.cloud.ssh_hosts import Ssh, SshLogs
from ops.environment import AppHost
from ops.errors import ConfigError
from ops.logs import parse_since
from stacks.host_role import DEPLOY_SCRIPT_PATH, REPO_ROOT, render_user_data

pytestmark = pytest.mark.unit

SCRIPT = REPO_ROOT / "stacks" / "host" / "autoenroll-deploy"
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "back"), [("15m", 900), ("2h", 7200), ("1d", 86400), ("30s", 30)])
def test_since_as_a_span_is_that_long_before_now(text: str, back: int) -> None:
    assert parse_since(text, NOW) == int(NOW.timestamp()) - back


def test_since_as_an_iso_time_is_utc_unless_it_says() -> None:
    assert parse_since("2026-12-07T02:00", NOW) == int(datetime(2026, 12, 7, 2, tzinfo=UTC).timestamp())
    assert parse_since("2026-12-07T03:00+01:00", NOW) == int(datetime(2026, 12, 7, 2, tzinfo=UTC).timestamp())


def test_a_since_that_is_neither_is_bad_input_naming_it() -> None:
    with pytest.raises(ConfigError, match="'yesterday-ish' is neither a span"):
        parse_since("yesterday-ish", NOW)


def test_the_logs_argv_is_the_deploy_scripts_read_only_verb_over_the_deploys_ssh() -> None:
    logs = SshLogs([AppHost(name="app-1", role="primary", url="http://10.0.0.2:8000", address="203.0.113.7")],
                   Ssh(config_file="/tmp/ssh_config"))
    argv = logs.argv("app-1", "caddy", 50, 1796600000, True)
    assert argv == ["ssh", "-F", "/tmp/ssh_config", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-l", "deploy",
                    "203.0.113.7", f"{DEPLOY_SCRIPT_PATH} logs caddy 50 1796600000 follow"]
    assert logs.argv("app-1", "app", 10, None, False)[-1] == f"{DEPLOY_SCRIPT_PATH} logs app 10 - once"


def _script(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The deploy script with journalctl and logger replaced by recorders (no journald in a test)."""
    record = tmp_path / "record"
    for tool in ("journalctl", "logger"):
        (tmp_path / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {record}\n')
        (tmp_path / tool).chmod(0o755)
    env = {**os.environ, "JOURNALCTL": str(tmp_path / "journalctl"), "LOGGER": str(tmp_path / "logger"),
           "AUTOENROLL_ROOT": str(tmp_path)}
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False)


def _recorded(tmp_path: Path) -> list[str]:
    record = tmp_path / "record"
    return record.read_text().splitlines() if record.exists() else []


@pytest.mark.parametrize(("unit", "selector"), [("caddy", "--unit caddy.service"),
                                                ("deploy", "--identifier autoenroll-deploy")])
def test_the_logs_verb_reads_the_journal_with_lines_since_and_follow(tmp_path: Path, unit: str,
                                                                     selector: str) -> None:
    done = _script(tmp_path, "logs", unit, "50", "1796600000", "follow")
    assert done.returncode == 0, done.stderr
    assert _recorded(tmp_path) == [f"journalctl {selector} --no-pager --output short-iso --lines 50 "
                                   "--since @1796600000 --follow"]


@pytest.mark.parametrize(("args", "said"), [(["logs", "sshd", "5", "-", "once"], "unknown unit: sshd"),
                                            (["logs", "caddy", "5;id", "-", "once"], "invalid line count"),
                                            (["logs", "caddy", "5", "yesterday", "once"], "invalid since"),
                                            (["logs", "caddy", "5", "-", "tail"], "invalid mode")])
def test_the_logs_verb_refuses_anything_else(tmp_path: Path, args: list[str], said: str) -> None:
    done = _script(tmp_path, *args)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert not any(line.startswith("journalctl") for line in _recorded(tmp_path))


def test_a_verb_that_changes_the_host_is_journaled_with_its_outcome_and_a_read_is_not(tmp_path: Path) -> None:
    assert _script(tmp_path, "discard", "10.0.0.9:80").returncode == 2
    assert _script(tmp_path, "current").returncode == 0
    assert _recorded(tmp_path) == ["logger -t autoenroll-deploy -- discard 10.0.0.9:80",
                                   "logger -t autoenroll-deploy -- not an app address: 10.0.0.9:80",
                                   "logger -t autoenroll-deploy -- discard: failed (exit 2)"]


def test_the_deploy_user_reads_the_journal_without_a_sudoers_rule() -> None:
    from stacks.host_role import HostRoleArgs

    data = render_user_data(HostRoleArgs(hostname="h", environment="staging", role="primary",
                                         site_address="app.example", app_image="i", app_version="v",
                                         admin_cidrs=(), cloudflare_ranges=(), ssh_public_keys=("ssh-ed25519 A",),
                                         logs_ingest_host="s1.eu.betterstackdata.com"))
    assert "- systemd-journal" in data and "journalctl" not in data.split("sudo:", 1)[1].splitlines()[0]


_FOLLOWER = """
import sys
from ops.logs import follow
class Streams:
    def argv(self, name, unit, lines, since, follow):
        return ["sh", "-c", "echo $$; while :; do echo tick; sleep 0.01; done"]
try:
    follow(Streams(), ["a", "b"], "app", 1, None, lambda host, line: print(host, line, flush=True))
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("signum", [2, 15], ids=["SIGINT", "SIGTERM"])
def test_following_ends_on_a_signal_with_every_stream_ended(signum: int) -> None:
    """A cancelled job's SIGTERM or a Ctrl-C ends `ops logs --follow` promptly, its streams' processes
    (ssh on the hosts' path) ended rather than left behind (Python's default SIGTERM would leave them)."""
    proc = subprocess.Popen(["python", "-c", _FOLLOWER], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "scripts")})
    assert proc.stdout is not None
    pids: dict[str, int] = {}
    while len(pids) < 2:
        host, line = proc.stdout.readline().split(" ", 1)
        if line.strip().isdigit():
            pids[host] = int(line)
    for _ in range(20):  # the loop is busy emitting when the signal lands
        proc.stdout.readline()
    proc.send_signal(signum)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    alive = [host for host, pid in pids.items() if Path(f"/proc/{pid}").exists()]
    assert not alive, f"streams left running: {alive}"
