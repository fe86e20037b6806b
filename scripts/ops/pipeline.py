"""Run a chain of processes (`a | b | c`) built as argv lists, streaming through Python.

`source(...)` yields the last stage's output in fixed-size blocks; `sink(...)` feeds an
iterator into the first stage. Either way, every stage's exit status is checked and the
first failure is reported with the stage's own last stderr line (secrets scrubbed); on
any error or interruption every stage is killed, so nothing runs on half-fed.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from ops.errors import ExternalError
from ops.secrets import scrub_text


@dataclass(frozen=True)
class Stage:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = field(default=None, repr=False)


class Pipeline:
    def __init__(self, stages: Sequence[Stage], *, feed_stdin: bool, capture_stdout: bool) -> None:
        self.stages = stages
        self.procs: list[subprocess.Popen[bytes]] = []
        self._errs: list[IO[bytes]] = []
        previous: IO[bytes] | None = None
        for index, stage in enumerate(stages):
            err = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the pipeline
            self._errs.append(err)
            last = index == len(stages) - 1
            stdin: Any = subprocess.PIPE if (index == 0 and feed_stdin) else (previous or subprocess.DEVNULL)
            stdout: Any = subprocess.PIPE if (not last or capture_stdout) else subprocess.DEVNULL
            try:
                proc = subprocess.Popen(list(stage.argv), stdin=stdin, stdout=stdout, stderr=err,
                                        env=dict(stage.env) if stage.env is not None else None)
            except FileNotFoundError:
                self.kill()
                raise ExternalError(f"{stage.name}: command not found ({stage.argv[0]})",
                                    hint="run bin/setup to install it") from None
            if previous is not None:
                previous.close()  # the child holds it now; our copy would keep the pipe open
            previous = proc.stdout if not last else None
            self.procs.append(proc)

    @property
    def stdin(self) -> IO[bytes]:
        assert self.procs[0].stdin is not None
        return self.procs[0].stdin

    @property
    def stdout(self) -> IO[bytes]:
        assert self.procs[-1].stdout is not None
        return self.procs[-1].stdout

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()

    def check(self) -> None:
        """Wait for every stage; raise naming the first that failed (upstream first)."""
        for proc in self.procs:
            proc.wait()
        for stage, proc, err in zip(self.stages, self.procs, self._errs, strict=True):
            if proc.returncode != 0:
                err.seek(0)
                lines = [ln for ln in err.read().decode(errors="replace").splitlines() if ln.strip()]
                # The line that says what went wrong, not a tool's closing boilerplate
                # (age, for one, ends with "report unexpected or unhelpful errors at ...").
                errors = [ln for ln in lines if "error" in ln.lower() and "report unexpected" not in ln]
                chosen = errors[-1] if errors else (lines[-1] if lines else f"exit status {proc.returncode}")
                detail = scrub_text(chosen)
                raise ExternalError(f"{stage.name} failed: {detail}")


def source(stages: Sequence[Stage], block_size: int,
           started: Callable[[Pipeline], None] | None = None) -> Iterator[bytes]:
    """Run the pipeline and yield its output in blocks of exactly `block_size` (the last may be short).
    `started` gets the running pipeline (to watch its processes' progress)."""
    pipe = Pipeline(stages, feed_stdin=False, capture_stdout=True)
    if started is not None:
        started(pipe)
    try:
        while True:
            block = pipe.stdout.read(block_size)  # BufferedReader.read(n) fills n bytes unless at EOF
            if not block:
                break
            yield block
        pipe.stdout.close()
        pipe.check()
    except BaseException:
        pipe.kill()
        raise


def sink(stages: Sequence[Stage], chunks: Iterable[bytes]) -> None:
    """Feed `chunks` into the pipeline's first stage and wait for every stage to succeed."""
    pipe = Pipeline(stages, feed_stdin=True, capture_stdout=False)
    try:
        try:
            for chunk in chunks:
                pipe.stdin.write(chunk)
        except BrokenPipeError:
            pass  # a stage died: check() reports which and why
        # Only a complete feed ends in EOF. If `chunks` raised (a download failed), we are
        # in the except below and kill every stage first: a consumer like pg_restore must
        # never see a clean end of a truncated stream.
        with contextlib.suppress(BrokenPipeError):
            pipe.stdin.close()
        pipe.check()
    except BaseException:
        pipe.kill()
        raise
