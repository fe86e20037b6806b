"""What every benchmark shares: sizes from `--gb`, one measured run in its own process (wall time
and peak memory), medians of alternating pairs, and the scaling table.

Each measured run is a child process under GNU time, so its peak memory is its own: the
largest resident set of the child and of every process it waited for (pg_dump, zstd, ...).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Run:
    seconds: float
    peak_mb: float
    out: dict[str, object] = field(default_factory=dict)


def sizes(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"--gb: a comma-separated list of sizes in GB, e.g. 0.25,1,4 (got {text!r})") from None
    if not values or any(v <= 0 for v in values):
        raise SystemExit(f"--gb: sizes must be positive (got {text!r})")
    return values


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=sizes, default=[1.0], help="database sizes, comma-separated (default 1)")
    p.add_argument("--pairs", type=int, default=3, help="alternating pairs per comparison (default 3)")
    p.add_argument("--one", nargs="+", help=argparse.SUPPRESS)  # internal: run one measured step
    return p


def run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Run:
    """Run a child to completion; its wall time, its peak memory, and the JSON it printed last."""
    with tempfile.NamedTemporaryFile("r") as peak:
        # GNU time, not our own wait4: a child forked from this (large) interpreter would count
        # our pages as its own until it execs.
        t0 = time.perf_counter()
        out = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", peak.name, *argv], stdout=subprocess.PIPE,
                             env=dict(env) if env is not None else None, check=False)
        seconds = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"measured step failed (exit {out.returncode}): {' '.join(argv[:6])}")
        peak_kb = int(peak.read().strip().splitlines()[-1])
    lines = out.stdout.decode().strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return Run(seconds, peak_kb / 1024, result)


def one(*args: str) -> list[str]:
    """argv that runs this script's own `--one ARGS` step in a fresh interpreter."""
    return [sys.executable, sys.argv[0], "--one", *args]


def pairs(a: Callable[[], Run], b: Callable[[], Run], n: int) -> tuple[list[Run], list[Run]]:
    """n pairs of (a, b), the order alternating, so drift on a shared machine hits both alike."""
    runs_a, runs_b = [], []
    for i in range(n):
        if i % 2 == 0:
            runs_a.append(a())
            runs_b.append(b())
        else:
            runs_b.append(b())
            runs_a.append(a())
    return runs_a, runs_b


def rounds(steps: Sequence[Callable[[], Run]], n: int) -> list[list[Run]]:
    """n rounds of every step, the order reversed every other round (pairs() for more than two)."""
    runs: list[list[Run]] = [[] for _ in steps]
    for i in range(n):
        order = list(range(len(steps)))
        for j in order if i % 2 == 0 else reversed(order):
            runs[j].append(steps[j]())
    return runs


def median(runs: Sequence[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), max(r.peak_mb for r in runs), runs[-1].out)


def ratio_of_pairs(a: Sequence[Run], b: Sequence[Run]) -> float:
    """The median of the per-pair ratios a/b (steadier than a ratio of medians on a noisy machine)."""
    return statistics.median(x.seconds / y.seconds for x, y in zip(a, b, strict=True))


def scaling(rows: dict[str, dict[float, Run]], db_mb: dict[float, float]) -> list[str]:
    """Per step: seconds and peak memory at each size, and how time grew against the database."""
    out = []
    sized = sorted(db_mb)
    header = "".join(f"{db_mb[g]:>10.0f} MB" for g in sized)
    out.append(f"  {'step':<48}{header}   time growth vs size")
    for label, by_size in rows.items():
        cells = "".join(f"{by_size[g].seconds:>8.2f} s  " if g in by_size else " " * 12 for g in sized)
        mem = "".join(f"{by_size[g].peak_mb:>8.0f} MB " if g in by_size else " " * 12 for g in sized)
        growth = ""
        have = [g for g in sized if g in by_size]
        if len(have) >= 2:
            small, big = have[0], have[-1]
            t = by_size[big].seconds / by_size[small].seconds
            s = db_mb[big] / db_mb[small]
            growth = f"x{t:.2f} for x{s:.2f} data ({'sub-linear' if t <= s * 1.05 else 'super-linear'})"
        out.append(f"  {label:<48}{cells}  {growth}")
        if any(run.peak_mb for run in by_size.values()):  # steps timed inside a run have none of their own
            out.append(f"  {'  peak memory':<48}{mem}")
    return out
