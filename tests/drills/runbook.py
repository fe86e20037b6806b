"""Run a runbook's shell blocks, in order, in one bash session, as an on-call engineer would.

Every ```bash block runs, except one whose first line is `# not-in-sandbox: <reason>`
(it needs something only a real environment has); those are reported as skipped with
their reason. A failing command fails the runbook test, naming the block.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ops.paths import REPO_ROOT

RUNBOOKS = REPO_ROOT / "runbooks"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


@dataclass
class RunbookResult:
    ran: list[str]
    skipped: list[str]
    output: str


def blocks(runbook: Path) -> list[str]:
    return BLOCK.findall(runbook.read_text())


def run_runbook(runbook: Path, env: dict[str, str], cwd: Path, timeout: float = 900) -> RunbookResult:
    ran, skipped, script = [], [], ["set -euo pipefail"]
    for index, block in enumerate(blocks(runbook), 1):
        first = block.strip().splitlines()[0] if block.strip() else ""
        if first.startswith("# not-in-sandbox"):
            skipped.append(f"block {index}: {first.split(':', 1)[-1].strip()}")
            continue
        ran.append(block)
        script.append(f"echo '>>> {runbook.name} block {index}' >&2")
        script.append(block)
    venv_bin = str(REPO_ROOT / ".venv" / "bin")
    full_env = {**os.environ, **env, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}
    out = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=full_env, capture_output=True, text=True,
                         timeout=timeout, check=False)
    if out.returncode != 0:
        raise AssertionError(f"{runbook.name} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return RunbookResult(ran, skipped, out.stdout + out.stderr)
