"""The fuzz suite: generated hostile CSV and XLSX files (tests/app/fuzz.py) through Caddy to the real
app in the sandbox. None may answer 5xx, each is read within the configured CPU budget, nothing is
left half-stored, and the app's memory comes back afterwards, also after a 100,000-row file.

    FUZZ_CASES=3000 FUZZ_SEED=7 .venv/bin/pytest tests/app/test_fuzz_uploads.py   # a larger run
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
import redis

from autoenroll.config import UploadLimits
from ops.sandbox.state import SandboxState
from tests.app.conftest import Account
from tests.app.fuzz import hostile_inputs
from tests.app.payroll import csv_file
from tests.app.test_hostile_input import footprint

pytestmark = pytest.mark.integration
CASES = int(os.environ.get("FUZZ_CASES", "300"))
SEED = int(os.environ.get("FUZZ_SEED", "18"))
CPU_BUDGET_S = UploadLimits().parse_cpu_seconds  # the app runs with the default limits in the sandbox


def app_rss_kb(sandbox: SandboxState) -> int:
    proc = sandbox.apps[sandbox.caddy.active_app].proc
    assert proc is not None
    status = Path(f"/proc/{proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]


def parse_cpu_s(headers: dict[str, str]) -> float | None:
    match = re.search(r"parse-cpu;dur=([\d.]+)", headers.get("server-timing", ""))
    return float(match.group(1)) / 1000 if match else None


def forget_rate_limits(sandbox: SandboxState) -> None:
    client = redis.Redis.from_url(sandbox.redis_url())
    for key in client.scan_iter("rate:*"):
        client.delete(key)


def upload(account: Account, name: str, content: bytes) -> tuple[int, dict[str, str], str]:
    response = account.client.post("/api/uploads", headers={**account.auth, "X-Filename": name}, content=content,
                                   timeout=120)
    return response.status_code, dict(response.headers), response.text


def test_memory_comes_back_after_a_100000_row_upload(sandbox: SandboxState, account: Account) -> None:
    assert upload(account, "warm-up.csv", csv_file(1000))[0] == 201  # first upload: imports, pool, forkserver
    before = app_rss_kb(sandbox)
    status, _headers, text = upload(account, "big.csv", csv_file(100_000))
    assert status == 201, text
    after = app_rss_kb(sandbox)
    assert after <= before * 1.2, f"app RSS {before} kB before, {after} kB after"


def test_generated_hostile_files_never_5xx_leave_nothing_and_stay_in_budget(sandbox: SandboxState,
                                                                             account: Account) -> None:
    assert upload(account, "warm-up.csv", csv_file(50))[0] == 201
    objects, uploads, runs, stuck = footprint(sandbox, account)
    rss_before = app_rss_kb(sandbox)
    statuses: Counter[int] = Counter()
    problems = []
    for n, (case, name, content) in enumerate(hostile_inputs(CASES, SEED)):
        if n % 50 == 0:
            forget_rate_limits(sandbox)  # 300 uploads a minute from one address is the rate limit's business
        status, headers, text = upload(account, name, content)
        statuses[status] += 1
        cpu = parse_cpu_s(headers)
        if status >= 500 or status not in (201, 413, 415, 422):
            problems.append((case, status, text[:300]))
        elif cpu is not None and cpu > CPU_BUDGET_S:
            problems.append((case, status, f"parse took {cpu:.2f} s CPU, budget {CPU_BUDGET_S} s"))
    assert problems == [], f"seed {SEED}: {problems[:10]}"
    assert sum(statuses.values()) == CASES and statuses[201] > 0 and statuses[422] > 0
    stored = statuses[201]
    assert footprint(sandbox, account) == (objects + 4 * stored, uploads + stored, runs + stored, stuck)
    rss_after = app_rss_kb(sandbox)
    assert rss_after <= rss_before * 1.2, f"app RSS {rss_before} kB before, {rss_after} kB after"
