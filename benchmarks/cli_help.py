"""`ops --help` wall time, two checkouts side by side: alternating runs, medians and their ratio.

    python benchmarks/cli_help.py --baseline /work/main --ours . --runs 21

Each checkout runs its own `.venv/bin/ops --help` (bin/setup makes that venv, with the checkout's
code installed editable), so the pair compares the two trees' import costs on the same machine in
the same minutes. Runs alternate (baseline, ours, baseline, ...) so a load spike from other work on
a shared machine falls on both sides. `--command` times another argv, e.g. `--command backup --help`.
Nothing here passes or fails on time: it prints the figures for a note.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path


def ops_binary(checkout: Path) -> Path:
    binary = checkout / ".venv" / "bin" / "ops"
    if not binary.exists():
        raise SystemExit(f"{checkout}: no .venv/bin/ops (run bin/setup --no-start in that checkout)")
    return binary


def once(binary: Path, argv: list[str]) -> float:
    """One run's wall time; a failed run stops the benchmark (a broken CLI is not a fast one)."""
    # A fixed width: Rich lays the help out for the terminal, and both sides must print the same thing.
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb"}
    started = time.perf_counter()
    result = subprocess.run([str(binary), *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{binary} {' '.join(argv)} failed ({result.returncode}): "
                         f"{result.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="the checkout to compare against (e.g. /work/main)")
    p.add_argument("--ours", type=Path, default=Path.cwd(), help="this checkout (default: the current directory)")
    p.add_argument("--runs", type=int, default=21, help="runs of each side, alternating (default 21)")
    p.add_argument("--command", nargs=argparse.REMAINDER, default=["--help"],
                   help="what to run after `ops` (default: --help)")
    args = p.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs: at least 1")
    sides = {"baseline": ops_binary(args.baseline.resolve()), "ours": ops_binary(args.ours.resolve())}
    for binary in sides.values():
        once(binary, args.command)  # warm the page cache and the .pyc files: the first run measures the disk
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.runs):
        for name, binary in sides.items():
            times[name].append(once(binary, args.command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"ops {' '.join(args.command)}: {args.runs} alternating runs each (load average "
          f"{os.getloadavg()[0]:.1f})")
    for name, binary in sides.items():
        print(f"  {name:8}  median {medians[name] * 1000:7.0f} ms   min {min(times[name]) * 1000:7.0f} ms   {binary}")
    print(f"  ratio     baseline / ours = {medians['baseline'] / medians['ours']:.2f}x")


if __name__ == "__main__":
    main()
