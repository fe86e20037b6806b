"""The GitHub workflows run as written, on this machine: a small Actions runner for the lab.

Why hand-written: `act` and the other local runners need Docker-in-Docker, the network and the real
actions' code (the Pulumi action downloads the CLI; docker/build-push-action needs buildx and GHCR);
none of that exists here, and what the issue asks is narrower: a workflow's own `run:` steps, in
order, with its `env:`, and a local stand-in for each `uses:` step. This module is that much.

What it does, per job (jobs in `needs:` order):
- the job's interpreter is checked first: a `actions/setup-python` step's version, else the job
  container's or the runner image's own python (IMAGE_PYTHON), must satisfy pyproject.toml's
  requires-python and be the one this checkout's venv was made with (a job that could not install
  `ops` on its runner fails here, naming the job and the version);
- `env:` (workflow's, job's, step's) and every `${{ ... }}` are evaluated from tables the caller
  gives (`secrets.X` and `vars.X` per GitHub environment, `github.X`, `env.X`, `steps.ID.outputs.X`,
  `needs.JOB.outputs.X`, `matrix.X`); anything else, or a name the tables lack, FAILS, naming it (a
  secret nobody was told to create is a bug of the workflow or of the README's table, never "");
- `run:` steps run with bash -e (GitHub's default shell) in the workspace, with GITHUB_OUTPUT,
  GITHUB_ENV, GITHUB_PATH, GITHUB_STEP_SUMMARY, GITHUB_WORKSPACE, GITHUB_JOB... as the runner sets
  them and a fresh HOME per job (each job gets a fresh machine); `if:` knows only `always()`,
  `success()` and `failure()` (anything else fails, named);
- each `uses:` step runs the stand-in registered under its action's name (without the `@ref`); an
  action without one FAILS, naming it. The `with:` keys a stand-in does not know fail too (a new
  input the real action would act on must be looked at, not ignored).
The stand-ins for the lab (checkout, setup-python, the Pulumi action, the docker actions) and the
`pulumi`/`curl` shims they put on PATH are in `lab_stand_ins` below; each says what it checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.paths import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
# The python3 each image has on PATH before any setup step (GitHub's runner-images readme; Debian 12's python3).
IMAGE_PYTHON = {"ubuntu-24.04": "3.12", "ubuntu-latest": "3.12", "ubuntu-22.04": "3.10", "debian:12": "3.11",
                "debian:bookworm": "3.11"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class WorkflowError(AssertionError):
    """A workflow the harness cannot run as written, or a step that failed: the message names which."""


@dataclass
class StepContext:
    """What a stand-in sees of the job it runs in; it may add to `path` (GITHUB_PATH) and `env`."""

    workflow: str
    job: str
    step: str
    with_: dict[str, str]
    env: dict[str, str]  # the step's full environment (runner + workflow + job + step env)
    path: list[str]  # directories a stand-in puts first on PATH for the job's later steps


StandIn = Callable[[StepContext], dict[str, str]]  # returns the step's outputs
# A job's `services:` entry (image, its env evaluated, its ports) -> a context manager running it.
ServiceStandIn = Callable[[str, dict[str, str], list[str]], contextlib.AbstractContextManager[None]]


@dataclass
class Tables:
    """What `${{ }}` reads: per GitHub environment, its secrets and variables; the run's github context."""

    secrets: dict[str, dict[str, str]]
    vars: dict[str, dict[str, str]]
    github: dict[str, str]


@dataclass
class JobResult:
    name: str
    outputs: dict[str, str]
    steps: list[tuple[str, int]]  # (step name, exit code) of every step that ran
    log: str
    output: dict[str, str] = field(default_factory=dict)  # a run: step's name -> its stdout


@dataclass
class Runner:
    """One machine's worth of runner: `env` is its base environment (PATH, the lab's stand-in
    addresses), `workspace` the checkout, `stand_ins` the `uses:` table."""

    workspace: Path
    env: dict[str, str]
    stand_ins: dict[str, StandIn]
    tables: Tables
    scratch: Path  # per-job HOME and the GITHUB_* files go under here
    services: dict[str, ServiceStandIn] = field(default_factory=dict)  # image name (no tag) -> stand-in
    results: dict[str, JobResult] = field(default_factory=dict)

    # ------------------------------------------------------------------ expressions

    def evaluate(self, text: str, scope: Mapping[str, Any], where: str) -> str:
        def one(match: re.Match[str]) -> str:
            return self._lookup(match.group(1), scope, where)

        return EXPRESSION.sub(one, text)

    def _lookup(self, expression: str, scope: Mapping[str, Any], where: str) -> str:
        parts = expression.split(".")
        head = parts[0]
        if head in ("secrets", "vars") and len(parts) == 2:
            environment = scope.get("environment")
            table = (self.tables.secrets if head == "secrets" else self.tables.vars).get(environment or "", {})
            if head == "secrets" and parts[1] == "GITHUB_TOKEN":
                return str(self.tables.github.get("token", ""))
            if parts[1] not in table:
                raise WorkflowError(f"{where}: ${{{{ {expression} }}}}: the lab's GitHub environment "
                                    f"{environment!r} has no {head[:-1]} {parts[1]}")
            return table[parts[1]]
        if head == "github" and len(parts) == 2:
            if parts[1] == "workspace":
                return str(self.workspace)
            if parts[1] == "job":
                return str(scope["job"])
            if parts[1] in self.tables.github:
                return self.tables.github[parts[1]]
        if head == "env" and len(parts) == 2:
            if parts[1] in scope["env"]:
                return str(scope["env"][parts[1]])
            raise WorkflowError(f"{where}: ${{{{ {expression} }}}}: no {parts[1]} in the job's env")
        if head == "steps" and len(parts) == 4 and parts[2] == "outputs":
            outputs = scope["steps"].get(parts[1])
            if outputs is None:
                raise WorkflowError(f"{where}: ${{{{ {expression} }}}}: no earlier step with id {parts[1]}")
            return str(outputs.get(parts[3], ""))  # GitHub's own behaviour: an unset output is ""
        if head == "needs" and len(parts) == 4 and parts[2] == "outputs":
            if parts[1] not in scope["needs"]:
                raise WorkflowError(f"{where}: ${{{{ {expression} }}}}: job {parts[1]} is not in needs:")
            return str(self.results[parts[1]].outputs.get(parts[3], ""))
        if head == "matrix" and len(parts) == 2 and parts[1] in scope.get("matrix", {}):
            return str(scope["matrix"][parts[1]])
        raise WorkflowError(f"{where}: ${{{{ {expression} }}}} is an expression the harness does not know")

    # ------------------------------------------------------------------ jobs

    def run_workflow(self, workflow: Path, only: list[str] | None = None) -> dict[str, JobResult]:
        """Every job of `workflow` (or `only` those, in needs: order); raises WorkflowError at the first failure."""
        document = load(workflow)
        jobs: dict[str, Any] = document.get("jobs") or {}
        done: dict[str, JobResult] = {}
        for name in _needs_order(jobs, workflow.name):
            if only is not None and name not in only:
                continue
            done[name] = self.run_job(workflow.name, document, name)
        return done

    def run_job(self, workflow: str, document: dict[str, Any], name: str) -> JobResult:
        job = document["jobs"][name]
        where = f"{workflow}: job {name}"
        if "strategy" in job:  # no workflow here has one; one that does must be run for each combination
            raise WorkflowError(f"{where}: strategy/matrix is not supported by the harness")
        check_python(job, where)
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        needs = job.get("needs") or []
        needs = [needs] if isinstance(needs, str) else list(needs)
        for need in needs:
            if need not in self.results:
                raise WorkflowError(f"{where}: needs {need}, which has not run")
        home = Path(tempfile.mkdtemp(prefix=f"home-{name}-", dir=self.scratch))
        files = Path(tempfile.mkdtemp(prefix=f"github-{name}-", dir=self.scratch))
        base = {**self.env, "HOME": str(home), "GITHUB_WORKSPACE": str(self.workspace), "GITHUB_JOB": name,
                "GITHUB_WORKFLOW": str(document.get("name", workflow)), "CI": "true", "GITHUB_ACTIONS": "true",
                "RUNNER_TEMP": str(files), "GITHUB_STEP_SUMMARY": str(files / "summary.md")}
        for key in ("ref_name", "sha", "run_id", "repository", "actor"):
            if key in self.tables.github:
                base[f"GITHUB_{key.upper()}"] = self.tables.github[key]
        scope: dict[str, Any] = {"environment": environment, "job": name, "needs": needs, "steps": {}, "env": {}}
        job_env: dict[str, str] = {}
        for key, value in {**(document.get("env") or {}), **(job.get("env") or {})}.items():
            scope["env"] = job_env
            job_env[key] = self.evaluate(str(value), scope, f"{where}: env {key}")
        scope["env"] = job_env
        with contextlib.ExitStack() as running:
            for service, spec in (job.get("services") or {}).items():
                running.enter_context(self._service(service, spec, scope, where))
            return self._steps(job, name, workflow, where, base, scope, job_env, files)

    def _service(self, service: str, spec: dict[str, Any], scope: dict[str, Any],
                 where: str) -> contextlib.AbstractContextManager[None]:
        image = str(spec.get("image", ""))
        stand_in = self.services.get(image.split(":", 1)[0])
        if stand_in is None:
            raise WorkflowError(f"{where}: service {service} runs {image}, for which the harness has no stand-in")
        env = {k: self.evaluate(str(v), scope, f"{where}: service {service} env {k}")
               for k, v in (spec.get("env") or {}).items()}
        return stand_in(image, env, [str(p) for p in spec.get("ports") or []])

    def _steps(self, job: dict[str, Any], name: str, workflow: str, where: str, base: dict[str, str],
               scope: dict[str, Any], job_env: dict[str, str], files: Path) -> JobResult:
        path: list[str] = []
        log: list[str] = []
        ran: list[tuple[str, int]] = []
        printed: dict[str, str] = {}
        failed: str | None = None
        for index, step in enumerate(job.get("steps") or [], 1):
            label = step.get("name") or step.get("uses") or (step.get("run") or "").strip().splitlines()[0]
            at = f"{where}: step {index} ({label})"
            if not _should_run(step.get("if"), failed is not None, at):
                continue
            step_env = {**job_env}
            for key, value in (step.get("env") or {}).items():
                step_env[key] = self.evaluate(str(value), {**scope, "env": step_env}, f"{at}: env {key}")
            env = {**base, **step_env, "PATH": os.pathsep.join([*reversed(path), base["PATH"]])}
            step_scope = {**scope, "env": step_env}
            started = time.monotonic()
            if "uses" in step:
                action = str(step["uses"]).split("@", 1)[0]
                stand_in = self.stand_ins.get(action)
                if stand_in is None:
                    raise WorkflowError(f"{at}: uses {step['uses']}, for which the harness has no stand-in")
                with_ = {k: self.evaluate(str(v), step_scope, f"{at}: with {k}")
                         for k, v in (step.get("with") or {}).items()}
                context = StepContext(workflow, name, label, with_, env, path)
                try:
                    outputs, code = stand_in(context), 0
                except WorkflowError as exc:
                    outputs, code = {}, 1
                    log.append(f"{at}: {exc}")
                log.append(f">>> {at}: stand-in for {action} ({time.monotonic() - started:.1f} s)")
            else:
                script = self.evaluate(str(step["run"]), step_scope, f"{at}: run")
                outputs, code, output, stdout = self._run(script, env, files, index, path, job_env)
                # The step's seconds in its log line: where a job's time goes (a failure prints the log).
                log.append(f">>> {at} ({time.monotonic() - started:.1f} s)\n{output}")
                printed[label] = stdout
            ran.append((label, code))
            if code != 0 and not step.get("continue-on-error"):
                failed = failed or f"{at} exited {code}"
            if "id" in step:
                scope["steps"][step["id"]] = outputs
        result = JobResult(name, {}, ran, "\n".join(log), printed)
        if failed:
            raise WorkflowError(f"{failed}\n{result.log[-6000:]}")
        for key, value in (job.get("outputs") or {}).items():
            result.outputs[key] = self.evaluate(str(value), scope, f"{where}: outputs {key}")
        self.results[name] = result
        return result

    def _run(self, script: str, env: dict[str, str], files: Path, index: int, path: list[str],
             job_env: dict[str, str]) -> tuple[dict[str, str], int, str, str]:
        output_file, env_file, path_file = (files / f"{kind}-{index}" for kind in ("output", "env", "path"))
        for file in (output_file, env_file, path_file):
            file.write_text("")
        env = {**env, "GITHUB_OUTPUT": str(output_file), "GITHUB_ENV": str(env_file), "GITHUB_PATH": str(path_file)}
        # GitHub's default shell for run: on Linux: `bash -e {0}` (no pipefail, no -u).
        done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", script], cwd=self.workspace, env=env,
                              capture_output=True, text=True, timeout=1800, check=False)
        job_env.update(_key_values(env_file.read_text()))
        path.extend(line for line in path_file.read_text().splitlines() if line.strip())
        return _key_values(output_file.read_text()), done.returncode, done.stdout + done.stderr, done.stdout


def load(workflow: Path) -> dict[str, Any]:
    """The workflow as GitHub reads it (YAML's `on:` key comes back as True from PyYAML; unused here)."""
    document = yaml.safe_load(workflow.read_text())
    if not isinstance(document, dict) or not isinstance(document.get("jobs"), dict):
        raise WorkflowError(f"{workflow.name}: not a workflow (no jobs:)")
    return document


def _needs_order(jobs: dict[str, Any], where: str) -> list[str]:
    order: list[str] = []
    pending = dict(jobs)
    while pending:
        ready = [n for n, j in pending.items()
                 if all(d in order for d in ([j.get("needs")] if isinstance(j.get("needs"), str)
                                             else j.get("needs") or []))]
        if not ready:
            raise WorkflowError(f"{where}: jobs {sorted(pending)} need jobs that do not exist or need each other")
        for name in ready:
            order.append(name)
            del pending[name]
    return order


def _should_run(condition: Any, failed: bool, where: str) -> bool:
    if condition is None:
        return not failed
    text = EXPRESSION.sub(lambda m: m.group(1), str(condition)).strip()
    if text == "always()":
        return True
    if text == "success()":
        return not failed
    if text == "failure()":
        return failed
    raise WorkflowError(f"{where}: if: {condition} is a condition the harness does not know")


def _key_values(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT/GITHUB_ENV's format: `key=value` lines, or `key<<DELIMITER` ... `DELIMITER`."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body = []
            for more in lines:
                if more == delimiter:
                    break
                body.append(more)
            values[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def job_python(job: dict[str, Any]) -> str:
    """The python3 that `bin/setup` finds in the job: a setup-python step's before it, else the image's own."""
    for step in job.get("steps") or []:
        if "bin/setup" in str(step.get("run", "")):
            break
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            return str((step.get("with") or {}).get("python-version"))
    container = job.get("container")
    image = container if isinstance(container, str) else (container or {}).get("image")
    runner = str(image or job.get("runs-on"))
    if runner not in IMAGE_PYTHON:
        raise WorkflowError(f"runs on {runner}, whose python the harness does not know (IMAGE_PYTHON)")
    return IMAGE_PYTHON[runner]


def check_python(job: dict[str, Any], where: str) -> None:
    """A job that installs `ops` must get a python the project accepts, and here the venv's is the only one."""
    from packaging.specifiers import SpecifierSet

    if not any("bin/setup" in str(s.get("run", "")) for s in job.get("steps") or []):
        return
    wanted = SpecifierSet(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    python = job_python(job)
    if f"{python}.0" not in wanted:
        raise WorkflowError(f"{where}: its runner gives Python {python}; pyproject.toml requires-python is {wanted} "
                            "(and forbids uv to download one): bin/setup cannot install ops there")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python != here:
        raise WorkflowError(f"{where}: asks for Python {python}; the harness has only this venv's {here}")


# ---------------------------------------------------------------------- the lab's stand-ins


def _shim(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _known_inputs(context: StepContext, action: str, known: set[str]) -> None:
    unknown = set(context.with_) - known
    if unknown:
        raise WorkflowError(f"{action}: with: {sorted(unknown)}: inputs the harness's stand-in does not act on")


@dataclass
class PulumiStandIn:
    """The Pulumi action and a `pulumi` shim for the lab.

    `pulumi up` (the action with `command: up`) does, offline, what a real update checks before it
    creates anything: the program's own prerequisite check (stacks.prerequisites: every stack secret
    in the stack file or the config-map, every provider variable in the step's environment, no
    placeholder), the stack program under Pulumi's mocks with every policy of the pack
    (stacks.plan.run_plan), PULUMI_ACCESS_TOKEN set; then the stack counts as up and its outputs are
    the lab's (`outputs`, the file the lab wrote for that stack: the plan's outputs with the lab's
    addresses). The action without a command only installs the CLI: it puts the shim on PATH.

    The shim (there is no Pulumi CLI on this machine) answers `pulumi stack output --json
    --show-secrets --stack S` with the lab's outputs of a stack that is up, needs
    PULUMI_ACCESS_TOKEN as the real CLI needs a login, and exits 3 naming anything else it is asked."""

    outputs: dict[str, Path]  # stack -> the lab's stack outputs file
    stack_files: Path  # the folder of Pulumi.<stack>.yaml the stack is updated with (the lab's, secrets set)
    folder: Path
    up: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.state = self.folder / "pulumi-state"
        self.state.mkdir(parents=True, exist_ok=True)
        program = (
            "import json, os, sys\n"
            "args = sys.argv[1:]\n"
            "def fail(message):\n"
            "    sys.stderr.write(f'pulumi (the lab harness shim): {message}\\n'); sys.exit(3)\n"
            "stack = None\n"
            "if '--stack' in args:\n"
            "    i = args.index('--stack'); stack = args[i + 1] if i + 1 < len(args) else None; del args[i:i + 2]\n"
            "flags = set(a for a in args if a.startswith('-'))\n"
            "words = [a for a in args if not a.startswith('-')]\n"
            "if words != ['stack', 'output'] or flags != {'--json', '--show-secrets'}:\n"
            "    fail('only `pulumi stack output --json --show-secrets --stack S` is served (the harness '\n"
            "         f'cannot tell which outputs are secret), not {sys.argv[1:]}')\n"
            "if not os.environ.get('PULUMI_ACCESS_TOKEN'):\n"
            "    fail('PULUMI_ACCESS_TOKEN is not set: not logged in to the Pulumi Cloud backend')\n"
            "if not stack:\n"
            "    fail('no --stack given')\n"
            f"path = os.path.join({str(self.state)!r}, stack + '.json')\n"
            "if not os.path.exists(path):\n"
            "    fail(f'no stack named {stack!r} with state (no `pulumi up` has run on it)')\n"
            "sys.stdout.write(json.dumps(json.load(open(path)), indent=4) + '\\n')\n")
        self.bin = self.folder / "pulumi-bin"
        _shim(self.bin, "pulumi", f"#!{sys.executable}\n{program}")

    def __call__(self, context: StepContext) -> dict[str, str]:
        command = context.with_.get("command")
        if str(self.bin) not in context.path:  # the action installs the CLI in every mode
            context.path.append(str(self.bin))
        if command is None:
            _known_inputs(context, "pulumi/actions", set())
            return {}
        _known_inputs(context, "pulumi/actions", {"command", "stack-name", "policyPacks", "config-map"})
        if command != "up":
            raise WorkflowError(f"pulumi/actions: command {command!r}: the harness stands in only for up")
        stack = context.with_.get("stack-name", "")
        if stack not in self.outputs:
            raise WorkflowError(f"pulumi/actions: stack-name {stack!r} is not one of the lab's {sorted(self.outputs)}")
        if not context.env.get("PULUMI_ACCESS_TOKEN"):
            raise WorkflowError("pulumi up: PULUMI_ACCESS_TOKEN is empty (the backend login)")
        config_map = yaml.safe_load(context.with_.get("config-map") or "{}") or {}
        for key, entry in config_map.items():
            if not isinstance(entry, dict) or not str(entry.get("value") or ""):
                raise WorkflowError(f"pulumi up: config-map {key} has no value (its secret is empty in the job)")
        self._check_prerequisites(stack, set(config_map), context.env)
        packs = context.with_.get("policyPacks")
        from stacks.plan import run_plan

        # The program on the stack file this update reads (its filled-in values, not the committed examples).
        config = yaml.safe_load((self.stack_files / f"Pulumi.{stack}.yaml").read_text())["config"]
        plan = run_plan(stack, {k.split(":", 1)[1]: v for k, v in config.items()
                                if k.startswith("autoenroll:") and not (isinstance(v, dict) and "secure" in v)})
        if packs:
            if not (REPO_ROOT / packs / "PulumiPolicy.yaml").is_file():
                raise WorkflowError(f"pulumi up: policyPacks {packs} is not a policy pack (no PulumiPolicy.yaml)")
            violations = {name: v for name, v in plan.policies.items() if v}
            if violations:
                raise WorkflowError(f"pulumi up: the policy pack refuses the update: {violations}")
        data = json.loads(self.outputs[stack].read_text())
        (self.state / f"{stack}.json").write_text(json.dumps(data))
        self.up.add(stack)
        return {}

    def _check_prerequisites(self, stack: str, config_map: set[str], environ: Mapping[str, str]) -> None:
        from stacks.prerequisites import missing, placeholders

        config = yaml.safe_load((self.stack_files / f"Pulumi.{stack}.yaml").read_text())["config"]

        def stack_secret(name: str) -> str | None:
            return "secure" if name in config or name in config_map else None

        raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("autoenroll:")}
        problems = missing(stack, stack_secret, environ) + placeholders(raw, stack)
        if problems:
            raise WorkflowError(f"pulumi up {stack}: the program stops before creating anything: "
                                + "; ".join(f"{p.key}: {p.problem}" for p in problems))


def lab_stand_ins(*, workspace: Path, folder: Path, pulumi: PulumiStandIn, runner_public: str,
                  push_image: Callable[[str, str], str]) -> dict[str, StandIn]:
    """The `uses:` table for the lab. `push_image(image, tag)` stands in for building and pushing
    the release image (returns its digest); `runner_public` is what the runner's public address is."""

    def checkout(context: StepContext) -> dict[str, str]:
        # The checkout is this one (the suite runs in CI's own checkout of the same commit).
        _known_inputs(context, "actions/checkout", {"persist-credentials"})
        if not (workspace / ".git").exists():
            raise WorkflowError(f"actions/checkout: {workspace} is not a checkout")
        return {}

    def setup_python(context: StepContext) -> dict[str, str]:
        # The venv's own base interpreter, first on PATH as python3 and python3.X (what bin/setup looks for).
        _known_inputs(context, "actions/setup-python", {"python-version"})
        version = context.with_.get("python-version", "")
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        if version != here:
            raise WorkflowError(f"actions/setup-python: python-version {version!r}; the harness has only {here}")
        base = Path(sys.base_prefix) / "bin" / f"python{here}"
        folder_ = folder / "setup-python"
        for name in ("python3", f"python{here}", "python"):
            _shim(folder_, name, f"#!/bin/sh\nexec {shlex.quote(str(base))} \"$@\"\n")
        context.path.append(str(folder_))
        return {}

    def buildx(context: StepContext) -> dict[str, str]:
        _known_inputs(context, "docker/setup-buildx-action", set())
        return {}

    logged_in: set[str] = set()

    def login(context: StepContext) -> dict[str, str]:
        _known_inputs(context, "docker/login-action", {"registry", "username", "password"})
        for key in ("registry", "username", "password"):
            if not context.with_.get(key):
                raise WorkflowError(f"docker/login-action: {key} is empty")
        logged_in.add(context.with_["registry"])
        return {}

    def build_push(context: StepContext) -> dict[str, str]:
        _known_inputs(context, "docker/build-push-action", {"context", "file", "push", "tags", "labels"})
        dockerfile = workspace / context.with_.get("context", ".") / context.with_.get("file", "Dockerfile")
        if not dockerfile.is_file():
            raise WorkflowError(f"docker/build-push-action: no Dockerfile at {dockerfile}")
        tag = context.with_.get("tags", "")
        image, _, version = tag.rpartition(":")
        if not image or not version or "/" in version:
            raise WorkflowError(f"docker/build-push-action: tags {tag!r} is not IMAGE:TAG")
        registry = image.split("/", 1)[0]
        if context.with_.get("push") == "true" and registry not in logged_in:
            raise WorkflowError(f"docker/build-push-action: push to {registry} without a docker/login-action for it")
        return {"digest": push_image(image, version)}

    def ipify(folder_: Path) -> Path:
        # The runner's public address: api.ipify.org answers it (nothing else is on the network here).
        _shim(folder_, "curl", "#!/bin/sh\n"
              'for a in "$@"; do case "$a" in https://api.ipify.org|https://api.ipify.org/) '
              f'echo {shlex.quote(runner_public)}; exit 0;; esac; done\n'
              'echo "curl (the lab harness shim): only https://api.ipify.org is served, not: $*" >&2; exit 7\n')
        return folder_

    ipify(folder / "curl-bin")
    return {"actions/checkout": checkout, "actions/setup-python": setup_python, "pulumi/actions": pulumi,
            "docker/setup-buildx-action": buildx, "docker/login-action": login,
            "docker/build-push-action": build_push}


def runner_path(folder: Path) -> str:
    """The runner's PATH: the curl shim first (no internet here), then the machine's tools without this
    venv (a job finds `ops` only where its own steps installed it) and with uv (a runner's pip-installed one)."""
    venv_bin = str(REPO_ROOT / ".venv" / "bin")
    entries = [str(folder / "curl-bin")]
    uv = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    if Path(uv).exists():
        entries.append(str(Path(uv).parent))
    entries += [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != venv_bin]
    return os.pathsep.join(dict.fromkeys(entries))


@contextlib.contextmanager
def postgres_service(image: str, env: dict[str, str], ports: list[str]) -> Iterator[None]:
    """A `postgres:N` service container as a real PostgreSQL of this machine (ops's own binaries), with
    the image's superuser `postgres` and POSTGRES_PASSWORD, plain TCP on 127.0.0.1 at the mapped host
    port. Its major must be the image's: a restore proven on another major proves nothing of that one."""
    from ops.pg import tools as pgtools
    from ops.sandbox.components import _chown_to_postgres, as_postgres_user
    from tests.drills.lab_database import DATA_PARENT
    from tests.infra.testhost import terminate

    tag = image.partition(":")[2]
    major = subprocess.run([pgtools.tool("postgres"), "--version"], capture_output=True, text=True,
                           check=True).stdout.split()[-1].split(".")[0]
    if tag.split(".")[0] != major:
        raise WorkflowError(f"service {image}: the harness has PostgreSQL {major} only (the image's major must match)")
    if not env.get("POSTGRES_PASSWORD") or len(ports) != 1 or not re.fullmatch(r"\d+:5432", ports[0]):
        raise WorkflowError(f"service {image}: needs POSTGRES_PASSWORD and one port mapping HOST:5432, got {ports}")
    port = int(ports[0].split(":")[0])
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise WorkflowError(f"service {image}: 127.0.0.1:{port} is taken on this machine")
    DATA_PARENT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="autoenroll-service-", dir=DATA_PARENT))
    process: subprocess.Popen[bytes] | None = None
    try:
        (folder / "pwfile").write_text(env["POSTGRES_PASSWORD"] + "\n")
        _chown_to_postgres(folder)
        subprocess.run(as_postgres_user([pgtools.tool("initdb"), "-D", str(folder / "data"), "-U", "postgres",
                                         "--auth=scram-sha-256", f"--pwfile={folder / 'pwfile'}", "-E", "UTF8",
                                         "--no-locale", "--no-instructions"]), check=True, capture_output=True,
                       timeout=120)
        process = subprocess.Popen(as_postgres_user([
            pgtools.tool("postgres"), "-D", str(folder / "data"), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={folder}", "-c", "fsync=off"]),
            stdout=subprocess.DEVNULL, stderr=(folder / "log").open("wb"))
        # The service's health-cmd (pg_isready) before the steps start, as the runner waits for it.
        for _ in range(300):
            ready = subprocess.run([pgtools.tool("pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True, check=False)
            if ready.returncode == 0 or process.poll() is not None:
                break
            import time

            time.sleep(0.1)
        if ready.returncode != 0:
            raise WorkflowError(f"service {image}: did not become ready: {(folder / 'log').read_text()[-1000:]}")
        yield
    finally:
        if process is not None:
            terminate(process)
        shutil.rmtree(folder, ignore_errors=True)
