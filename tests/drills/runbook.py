"""Run a runbook's shell blocks, in order, in one bash session, as an on-call engineer would.

Every ```bash block runs, except one whose first line is `# not-in-sandbox: <reason>`
(it needs something only a real environment has); those are reported as skipped with
their reason. A failing command fails the runbook test, naming the block.
"""

from __future__ import annotations

import os
import pty
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


def run_runbook(runbook: Path, env: dict[str, str], cwd: Path, timeout: float = 900,
                typed: str | None = None) -> RunbookResult:
    """`typed`: the blocks run at a terminal where that word (an environment's name) is typed
    ahead for every confirmation prompt, as the engineer would type it (the confirmation policy
    asks on production and refuses without a terminal)."""
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
    if typed is None:
        out = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=full_env, capture_output=True,
                             text=True, timeout=timeout, check=False)
    else:
        # A pseudo-terminal as stdin, the answers typed ahead: the line discipline hands one line to
        # each prompt's readline, and the terminal's echo (a few bytes) stays in its buffer.
        controller, terminal = pty.openpty()
        try:
            os.write(controller, f"{typed}\n".encode() * 8)
            out = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=full_env, stdin=terminal,
                                 capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            os.close(terminal)
            os.close(controller)
    if out.returncode != 0:
        raise AssertionError(f"{runbook.name} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return RunbookResult(ran, skipped, out.stdout + out.stderr)
