"""`ops --help` and shell completion stay cheap: building the command tree imports no SDK.

Every <TAB> of an installed completion runs `ops` to build the whole command tree, and so does
`ops --help`; neither needs boto3, the Cloudflare or Hetzner SDKs, Pulumi, psycopg or httpx. The
CLI modules bind those through ops/cli/lazy.py and the commands load them on first use. Each check
runs the console script in a fresh interpreter (this test session has imported everything already) and
reads the modules it imported from `-X importtime` (PYTHONPROFILEIMPORTTIME), the interpreter's own record.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

# What a help or a completion must not load: the SDKs and drivers that made `ops --help` take seconds.
HEAVY = ("boto3", "botocore", "cloudflare", "hcloud", "pulumi", "psycopg", "httpx")
OPS = Path(sys.executable).with_name("ops")  # the console script of the interpreter running the tests


def _imported(argv: list[str], extra_env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The top-level packages `ops ARGV` imported, and what it printed."""
    env = {**os.environ, "COLUMNS": "120", "PYTHONPROFILEIMPORTTIME": "1", **(extra_env or {})}
    result = subprocess.run([str(OPS), *argv], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    # Lines read "import time: <self us> | <cumulative us> | <indented module name>".
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in result.stderr.splitlines() if line.startswith("import time:") and "|" in line}
    assert "ops" in names, "no -X importtime record: the check would pass without looking"
    return names, result.stdout


def test_help_builds_every_command_without_the_heavy_dependencies() -> None:
    names, out = _imported(["--help"])
    assert "backup" in out and "failover" in out  # the whole tree was built, sub-apps included
    assert sorted(names & set(HEAVY)) == []


def test_completion_builds_without_the_heavy_dependencies() -> None:
    # What bash's completion function runs at each <TAB> (the script `ops --show-completion` prints).
    names, out = _imported([], {"_OPS_COMPLETE": "complete_bash", "COMP_WORDS": "ops backup li", "COMP_CWORD": "2"})
    assert out.split() == ["list"]
    assert sorted(names & set(HEAVY)) == []


def test_install_completion_writes_a_script_that_completes(tmp_path: Path) -> None:
    # Typer asks shellingham which shell runs `ops`: run it from bash, as a person would. The `; exit`
    # keeps bash as its parent (bash -c execs a lone command, and a test run whose ancestors hold no
    # shell, as a detached CI job's, would then say "Shell None is not supported").
    result = subprocess.run(["bash", "-c", f"{OPS} --install-completion; exit $?"], capture_output=True, text=True,
                            env={**os.environ, "HOME": str(tmp_path), "SHELL": "/bin/bash"}, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    script = tmp_path / ".bash_completions" / "ops.sh"
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
    # Source the installed script and call its completion function as bash would for `ops fail<TAB>`.
    completed = subprocess.run(
        ["bash", "-c", f"source '{script}'; COMP_WORDS=(ops fail); COMP_CWORD=1; _ops_completion ops; "
                       'printf "%s\\n" "${COMPREPLY[@]}"'],
        capture_output=True, text=True, env={**os.environ, "PATH": f"{OPS.parent}:{os.environ['PATH']}"},
        timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    assert sorted(completed.stdout.split()) == ["failback", "failover"]
