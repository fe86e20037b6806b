"""The suite in two parts run side by side: `hosts` (every test that needs test hosts: the lab, its
Docker engines, tests/infra's local test host) and `rest` (everything else). `bin/test` runs them.

Why two processes: the lab's drills spend most of their time waiting on SSH, containers starting and
health checks, while the rest spend theirs on this machine's two cores. One after the other they took
about 45 minutes; side by side, the hosts part sets the run's length. A pytest plugin (pytest-xdist)
would deal tests out to workers test by test; here the split must follow the tests' fixtures (the
lab is built once, in one process, and the machine-wide `deploy` user and the test hosts' network
namespaces admit one owner), so it is a deselection by fixture in conftest plus this small runner.

The hosts part sets the run's length, so the rest part runs at a lower CPU priority (nice 10): in the
first side-by-side run, on two cores, the lab's drills took twice as long as alone and the hosts part
ended 17 minutes after the rest.

Each part gets its own sandbox folders (`sandbox_suffix`), so the two never share a sandbox. A test
of the rest part that tries to make a test host fails naming itself (`require_hosts_part`), so a
misfiled test is found, not raced.

The runner prints the rest part's log after the hosts part's (which streams live), then one summary
whose last lines name every failed test of both parts; its exit code is the worst of the two.
"""

from __future__ import annotations

import ctypes
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

PART_VARIABLE = "AUTOENROLL_TEST_PART"
PARTS = ("hosts", "rest")
REST_NICENESS = 10

# A test whose fixtures include one of these needs test hosts: it runs in the hosts part.
HOSTS_FIXTURES = frozenset({
    "docker_engine", "app_image", "lab_registry", "lab_host",  # tests/lab/fixtures.py
    "lab_session", "lab",                                       # tests/drills/conftest.py
    "local_test_host", "target",                                # tests/infra/conftest.py
    "testhost",                                                 # tests/infra/test_checks_catch_breakage.py
})


def current_part() -> str | None:
    part = os.environ.get(PART_VARIABLE) or None
    if part is not None and part not in PARTS:
        raise SystemExit(f"{PART_VARIABLE}={part!r}: expected one of {', '.join(PARTS)}")
    return part


def sandbox_suffix() -> str:
    """Appended to the test sandboxes' folder names, so the two parts never share one."""
    return "-hosts" if current_part() == "hosts" else ""


def require_hosts_part(what: str) -> None:
    """Test hosts (namespaces, the deploy user, Docker engines) are made only in the hosts part."""
    if current_part() == "rest":
        raise RuntimeError(f"{what} is made only in the hosts part of the suite (tests/parts.py), and this "
                           f"is the rest part: give the test one of the fixtures {sorted(HOSTS_FIXTURES)}")


def needs_hosts(item: pytest.Item) -> bool:
    return bool(HOSTS_FIXTURES & set(getattr(item, "fixturenames", ())))


def select(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the current part's tests (conftest's collection hook calls this)."""
    part = current_part()
    if part is None:
        return
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (keep if needs_hosts(item) == (part == "hosts") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = keep


# ---------------------------------------------------------------------------- the runner

_FAILED = re.compile(r"^(FAILED|ERROR) ")
_FINAL = re.compile(r"^=+ .*\b(passed|failed|error|errors|skipped|deselected|no tests ran)\b.* in [0-9.]+s")


def _pump(process: subprocess.Popen[str], log: Path, echo: bool) -> None:
    assert process.stdout is not None
    with log.open("w") as out:
        for line in process.stdout:
            out.write(line)
            out.flush()
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()


def summary_lines(part: str, log_text: str) -> list[str]:
    """A part's failed tests and its final count, from its log."""
    lines = log_text.splitlines()
    failed = [f"  [{part}] {line}" for line in lines if _FAILED.match(line)]
    final = [line for line in lines if _FINAL.match(line)]
    count = final[-1].strip("= ") if final else "no final line (the part was killed or crashed: see its log)"
    return [*failed, f"  [{part}] {count}"]


def _interrupt_when_the_runner_dies() -> None:
    """In the child before pytest starts: the kernel sends it SIGINT if the runner dies, even by SIGKILL.
    The parts run in sessions of their own, so a terminal's Ctrl-C reaches them once, forwarded by the
    runner, and pytest tears down instead of being cut off by a second SIGINT."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def _start(part: str) -> Callable[[], None]:
    def start() -> None:
        _interrupt_when_the_runner_dies()
        if part == "rest":
            # The hosts part is the run's critical path (it finished 17 minutes after the rest in the
            # first side-by-side run, its drills twice as slow as alone): the rest yields the CPU to it.
            os.nice(REST_NICENESS)
    return start


def run(pytest_args: list[str], logs: Path) -> int:
    logs.mkdir(parents=True, exist_ok=True)
    processes: dict[str, subprocess.Popen[str]] = {}
    pumps: list[threading.Thread] = []
    # The whole run includes the drills a developer's run skips for time (each says so in its skip reason).
    opt_ins = {"AUTOENROLL_SCALE_LAB": "1", "AUTOENROLL_LB_LAB": "1", "AUTOENROLL_SANDBOX_REPLICA": "1"}
    for part in ("rest", "hosts"):
        env = {**opt_ins, **os.environ, PART_VARIABLE: part}
        process = subprocess.Popen([sys.executable, "-m", "pytest", *pytest_args], env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
                                   start_new_session=True, preexec_fn=_start(part))
        processes[part] = process
        pump = threading.Thread(target=_pump, args=(process, logs / f"{part}.log", part == "hosts"), daemon=True)
        pump.start()
        pumps.append(pump)
    def interrupt(signum: int, frame: object) -> None:
        # pytest ends its session, and tears its fixtures down, on SIGINT; a SIGTERM would leave
        # the parts' lab and sandboxes behind, so the runner's own SIGTERM/SIGHUP/SIGINT is passed on as SIGINT
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        codes = {part: process.wait() for part, process in processes.items()}
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for pump in pumps:
        pump.join()
    rest_log = (logs / "rest.log").read_text()
    print(f"\n==> the rest part's log ({logs / 'rest.log'})", flush=True)
    sys.stdout.write(rest_log)
    print("\n==> summary of both parts (hosts: test hosts and the lab; rest: everything else)")
    for part in ("hosts", "rest"):
        for line in summary_lines(part, (logs / f"{part}.log").read_text()):
            print(line)
        print(f"  [{part}] exit code {codes[part]}")
    # pytest's 5 (no tests collected) is not a failure of a part that had nothing to run; a part
    # killed by a signal (a negative code) is
    bad = [code for code in codes.values() if code not in (0, 5)]
    worst = 0 if not bad else max(bad) if min(bad) > 0 else 1
    print("==> suite " + ("passed" if worst == 0 else f"FAILED (exit {worst})"), flush=True)
    return worst


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], Path(os.environ.get("AUTOENROLL_TEST_LOGS", ".test-logs"))))
