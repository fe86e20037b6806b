"""GitHub Actions workflows are clean under actionlint, and it does catch mistakes."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops.paths import REPO_ROOT, venv_binary
from stacks.host_role import DEPLOY_SCRIPT

pytestmark = pytest.mark.unit
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def test_workflows_exist() -> None:
    names = {w.name for w in WORKFLOWS}
    assert {"backup-nightly.yml", "backup-verify-weekly.yml", "refresh-staging.yml",
            "refresh-development-weekly.yml", "ci.yml", "infra-preview.yml", "release.yml"} <= names


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow: Path) -> None:
    out = subprocess.run([venv_binary("actionlint"), str(workflow)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ secrets }}\n"
                   "      - uses: actions/checkout@v4\n        with: 3\n")
    out = subprocess.run([venv_binary("actionlint"), str(bad)], capture_output=True, text=True, check=False)
    assert out.returncode != 0


# --------------------------------------------------------------------------- least privilege, pinning, release


def _load(workflow: Path) -> dict[str, Any]:
    data = yaml.safe_load(workflow.read_text())
    assert isinstance(data, dict), workflow
    return data


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_job_has_explicit_least_privilege_permissions(workflow: Path) -> None:
    data = _load(workflow)
    assert data.get("permissions") == {}, f"{workflow.name}: the workflow-level default must grant nothing"
    for name, job in data["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict) and permissions, f"{workflow.name}: job {name} has no permissions:"
        assert "write-all" not in str(permissions) and set(permissions.values()) <= {"read", "write", "none"}
        writes = {scope for scope, level in permissions.items() if level == "write"}
        assert writes <= {"packages", "pull-requests"}, f"{workflow.name}: job {name} writes {writes}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commits(workflow: Path) -> None:
    uses = re.findall(r"uses:\s*(\S+)", workflow.read_text())
    unpinned = [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", u)]
    assert not unpinned, f"{workflow.name}: not pinned to a commit: {unpinned}"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_secrets_come_from_environments_and_are_never_echoed(workflow: Path) -> None:
    data = _load(workflow)
    for name, job in data["jobs"].items():
        text = yaml.safe_dump(job)
        used = set(re.findall(r"secrets\.(\w+)", text)) - {"GITHUB_TOKEN"}
        assert not used or job.get("environment"), f"{workflow.name}: job {name} reads {used} outside an environment"
        for step in job.get("steps", []):
            run = step.get("run", "")
            assert "secrets." not in run, f"{workflow.name}: job {name} puts a secret in a command line"
            for variable in re.findall(r"\b([A-Z_]*(?:TOKEN|KEY|SECRET|PASSWORD)[A-Z_]*)\b", run):
                echoed = re.search(rf"\b(echo|cat)\b[^\n|>]*\${{?{variable}\b", run)
                assert not echoed, f"{workflow.name}: job {name} prints {variable}"


def test_ci_runs_the_suite_on_pull_requests_and_main() -> None:
    data = _load(REPO_ROOT / ".github" / "workflows" / "ci.yml")
    triggers = data[True]  # YAML 1.1 reads the key `on` as a boolean
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert any(step.get("run") == "bin/test" for step in data["jobs"]["test"]["steps"])


def test_infra_preview_runs_for_both_stacks_on_stack_changes() -> None:
    data = _load(REPO_ROOT / ".github" / "workflows" / "infra-preview.yml")
    assert set(data[True]["pull_request"]["paths"]) >= {"stacks/**", "Pulumi.*.yaml"}
    job = data["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["staging", "production"]
    runs = " ".join(step.get("run", "") for step in job["steps"])
    assert 'ops plan --stack "$STACK"' in runs and 'ops cost --stack "$STACK"' in runs
    preview = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert preview and preview[0]["with"]["command"] == "preview" and preview[0]["with"]["comment-on-pr"] is True


def test_release_goes_through_staging_and_waits_for_the_production_environment() -> None:
    jobs = _load(REPO_ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    assert jobs["staging"]["environment"] == "staging" and "image" in jobs["staging"]["needs"]
    assert jobs["production"]["environment"] == "production"
    assert set(jobs["production"]["needs"]) == {"image", "staging"}
    for stage in ("staging", "production"):
        steps = jobs[stage]["steps"]
        commands = [s.get("run", "") for s in steps]
        migrations = [i for i, c in enumerate(commands) if "ops db migrate" in c]
        assert migrations, f"{stage}: nothing migrates the database before the deploy"
        order = [next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@")),
                 migrations[0],
                 next(i for i, c in enumerate(commands) if "ops deploy" in c),
                 next(i for i, c in enumerate(commands) if "ops checklist" in c)]
        assert order == sorted(order), f"{stage}: pulumi up, then ops db migrate, then ops deploy, then ops checklist"
        # CI has no terminal: production's typed confirmation must be given as --yes, and --plan
        # would migrate nothing.
        migrate = commands[migrations[0]]
        assert '--env "$GITHUB_JOB"' in migrate and "--yes" in migrate.split() and "--plan" not in migrate, migrate
        # The hosts' SSH admits only the admin CIDRs: the deploy must open it for this runner, and it
        # writes its history and lock to the environment's bucket.
        deploy = next(c for c in commands if "ops deploy" in c)
        assert "--open-ssh-from" in deploy, f"{stage}: ops deploy cannot reach the hosts from a runner"
        assert {"R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "HCLOUD_TOKEN"} <= set(jobs[stage]["env"]), stage
        # The hosts' read-only registry token comes from the environment's secrets into the stack's
        # secret config (the registry_login output the deploy hands each host on stdin).
        assert jobs[stage]["env"]["REGISTRY_READ_TOKEN"] == "${{ secrets.REGISTRY_READ_TOKEN }}", stage
        up = next(s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@"))
        config_map = yaml.safe_load(up["with"]["config-map"])
        assert config_map == {"autoenroll:registryReadToken": {"value": "${{ env.REGISTRY_READ_TOKEN }}",
                                                                "secret": True}}, stage
    assert jobs["image"]["permissions"] == {"contents": "read", "packages": "write"}


# --------------------------------------------------------------------------- one image name, one tag scheme


def _release_name_step() -> str:
    steps = _load(REPO_ROOT / ".github" / "workflows" / "release.yml")["jobs"]["image"]["steps"]
    return str(next(s for s in steps if s.get("id") == "name")["run"])


def _stack_compute(stack: str) -> dict[str, Any]:
    config = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    compute: dict[str, Any] = config["autoenroll:compute"]
    return compute


def test_release_reads_the_image_name_the_stacks_configure() -> None:
    """release.yml's sed finds exactly the stacks' compute.app_image (run here, on the real files)."""
    script = _release_name_step()
    pattern = re.search(r"sed -n '(s/\^    app_image: //p)' Pulumi\.production\.yaml", script)
    assert pattern, "release.yml no longer reads app_image from Pulumi.production.yaml"
    for stack in ("staging", "production"):
        found = subprocess.run(["sed", "-n", pattern.group(1), f"Pulumi.{stack}.yaml"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert found == _stack_compute(stack)["app_image"]


def test_release_tags_the_image_as_the_host_role_pulls_it() -> None:
    """Tag vX.Y.Z -> IMAGE:X.Y.Z: the host role's deploy script pulls "$image:$version" with $image the
    APP_IMAGE the role writes from the stack config, and every configured app_version fits the scheme."""
    steps = _load(REPO_ROOT / ".github" / "workflows" / "release.yml")["jobs"]["image"]["steps"]
    build = next(s for s in steps if s.get("id") == "build")["with"]
    assert build["file"] == "app/Dockerfile"
    assert build["tags"] == "${{ steps.name.outputs.image }}:${{ steps.name.outputs.version }}"
    assert "s/^APP_IMAGE=//p" in DEPLOY_SCRIPT and '"$image:$version"' in DEPLOY_SCRIPT
    assert re.search(r'docker pull (-q )?"\$image:\$version"', DEPLOY_SCRIPT)
    scheme = re.search(r"grep -Eq '([^']+)'", _release_name_step())
    assert scheme, "release.yml no longer checks the tag scheme"
    for stack in ("staging", "production"):
        assert re.fullmatch(scheme.group(1).strip("^$"), str(_stack_compute(stack)["app_version"]))
    deploy_refuses = re.search(r"\*\[!([^\]]+)\]\*", DEPLOY_SCRIPT)
    assert deploy_refuses, "the deploy script no longer validates its version"
    assert re.fullmatch(f"[{deploy_refuses.group(1)}]+", "1.22.333"), "a release version the deploy script refuses"


# --------------------------------------------------------------------------- the release path migrates, in every form


def _before(text: str, first: str, then: str) -> bool:
    return first in text and then in text and text.index(first) < text.index(then)


def test_the_by_hand_bring_up_and_the_release_runbook_migrate_before_they_deploy() -> None:
    """The same order as release.yml (above): `ops db migrate` for an environment, then its deploy.
    A new database is empty, and the app's /ready refuses one that is not at the head revision."""
    readme = (REPO_ROOT / "README.md").read_text()
    by_hand = readme[readme.index("By hand (first deploy"):]
    by_hand = by_hand[:by_hand.index("\n\n")]
    for env in ("staging", "production"):
        assert _before(by_hand, f"`ops db migrate --env {env}", f"`ops deploy --env {env} "), \
            f"README's by-hand bring-up: no `ops db migrate --env {env}` before `ops deploy --env {env}`"
    runbook = (REPO_ROOT / "runbooks" / "release.md").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", runbook, re.S))
    commands = [line.strip() for line in blocks.splitlines()]
    migrate = next((i for i, c in enumerate(commands) if c.startswith("ops db migrate") and "--plan" not in c), None)
    deploy = next(i for i, c in enumerate(commands) if c.startswith("ops deploy") and "--plan" not in c)
    assert migrate is not None and migrate < deploy, "runbooks/release.md: migrate (not only --plan) before the deploy"
    assert '--env "$ENV"' in commands[migrate] and "--yes" in commands[migrate].split()


# --------------------------------------------------------------------------- what each job's runner really has

SCHEDULED = ("backup-nightly.yml", "backup-verify-weekly.yml", "refresh-staging.yml", "refresh-development-weekly.yml")
# The python3 each image gives a job that does nothing about it (GitHub's runner-images readmes; Debian 12).
IMAGE_PYTHON = {"ubuntu-24.04": "3.12", "ubuntu-22.04": "3.10", "ubuntu-latest": "3.12", "debian:12": "3.11"}


def _jobs_running_ops() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for workflow in WORKFLOWS:
        for name, job in _load(workflow)["jobs"].items():
            runs = " ".join(str(s.get("run", "")) for s in job.get("steps", []))
            if "bin/setup" in runs or "bin/test" in runs or ".venv/bin/" in runs:
                out.append((workflow.name, name, job))
    return out


def _job_python(job: dict[str, Any]) -> str:
    """The interpreter bin/setup finds: a setup-python step's version before it, else the image's own."""
    for step in job.get("steps", []):
        if "bin/setup" in str(step.get("run", "")) or "bin/test" in str(step.get("run", "")):
            break
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            return str(step["with"]["python-version"])
    container = job.get("container")
    image = container if isinstance(container, str) else (container or {}).get("image")
    return IMAGE_PYTHON[str(image or job["runs-on"])]


@pytest.mark.parametrize(("workflow", "job_name", "job"), _jobs_running_ops(), ids=lambda v: v if isinstance(v, str)
                         else "")
def test_every_job_runs_on_a_python_the_project_accepts(workflow: str, job_name: str, job: dict[str, Any]) -> None:
    """A bare ubuntu-24.04 runner has 3.12; pyproject.toml allows only 3.11 and forbids uv to fetch one."""
    import tomllib

    from packaging.specifiers import SpecifierSet

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["uv"]["python-downloads"] == "never"  # so the job must bring its own interpreter
    wanted = SpecifierSet(pyproject["project"]["requires-python"])
    python = _job_python(job)
    assert f"{python}.0" in wanted, f"{workflow}: job {job_name} gets Python {python}, the project needs {wanted}"


def test_the_python_check_catches_a_bare_ubuntu_runner() -> None:
    job = {"runs-on": "ubuntu-24.04", "steps": [{"run": "bin/setup --ops-only"}]}
    assert _job_python(job) == "3.12"
    job["steps"].insert(0, {"uses": "actions/setup-python@" + "0" * 40, "with": {"python-version": "3.11"}})
    assert _job_python(job) == "3.11"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_stack_outputs_are_read_live_never_from_a_hand_copied_secret(workflow: Path) -> None:
    text = workflow.read_text()
    assert not re.search(r"secrets\.\w*STACK_OUTPUTS", text), f"{workflow.name}: hand-copied stack outputs go stale"
    for name, job in _load(workflow)["jobs"].items():
        steps = job.get("steps", [])
        writes = [i for i, s in enumerate(steps) if '> "$OPS_STACK_OUTPUTS"' in str(s.get("run", ""))]
        for index in writes:
            assert "pulumi stack output --json --show-secrets" in steps[index]["run"], f"{workflow.name}: {name}"
            cli = [i for i, s in enumerate(steps[:index]) if str(s.get("uses", "")).startswith("pulumi/actions@")]
            assert cli, f"{workflow.name}: job {name} reads stack outputs without installing the Pulumi CLI"
            assert job["env"].get("PULUMI_ACCESS_TOKEN") == "${{ secrets.PULUMI_ACCESS_TOKEN }}", workflow.name


def _umask_before_writes(run: str) -> list[str]:
    """Files a run step writes (`> "$VAR"` or `> ~/...`) before `umask 077` in that step."""
    umask = run.find("umask 077")
    late = []
    for match in re.finditer(r'>\s*("\$\w+"|~/\S+)', run):
        if umask < 0 or match.start() < umask:
            late.append(match.group(1))
    return late


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_umask_077_comes_before_any_private_file_is_written(workflow: Path) -> None:
    for name, job in _load(workflow)["jobs"].items():
        for step in job.get("steps", []):
            run = str(step.get("run", ""))
            private = [w for w in _umask_before_writes(run)
                       if any(k in w for k in ("STACK_OUTPUTS", "IDENTITY", "KEY", "id_ed25519"))]
            assert not private, f"{workflow.name}: job {name} writes {private} before umask 077"


def test_the_umask_check_catches_the_old_verify_step() -> None:
    old = ("printf '%s' \"$STACK_OUTPUTS\" > \"$OPS_STACK_OUTPUTS\"\numask 077\n"
           "printf '%s\\n' \"$AGE_IDENTITY\" > \"$BACKUP_AGE_IDENTITY_FILE\"\n")
    assert _umask_before_writes(old) == ['"$OPS_STACK_OUTPUTS"']


@pytest.mark.parametrize("workflow", SCHEDULED)
def test_scheduled_jobs_install_only_what_ops_needs(workflow: str) -> None:
    for name, job in _load(REPO_ROOT / ".github" / "workflows" / workflow)["jobs"].items():
        installs = [s["run"] for s in job["steps"] if "bin/setup" in str(s.get("run", ""))]
        assert installs == ["bin/setup --ops-only"], f"{workflow}: job {name}: {installs}"


def test_ops_only_setup_skips_the_test_and_sandbox_packages() -> None:
    script = (REPO_ROOT / "bin" / "setup").read_text()
    ops_only = re.search(r'if \[ "\$ops_only" -eq 1 \]; then.*?apt_packages=\(([^)]*)\)', script, re.S)
    assert ops_only, "bin/setup has no --ops-only package list"
    packages = set(ops_only.group(1).split())
    assert {"zstd", "age", "openssh-client"} <= packages
    assert not packages & {"chromium", "docker.io", "mmdebstrap", "docker-registry", "busybox-static", "cloud-init",
                           "wrk", "caddy", "postgresql", "redis-server"}


def test_release_runs_the_doctor_before_pulumi_up_and_the_policy_pack_in_up_and_preview() -> None:
    jobs = _load(REPO_ROOT / ".github" / "workflows" / "release.yml")["jobs"]
    for stage in ("staging", "production"):
        steps = jobs[stage]["steps"]
        doctor = next(i for i, s in enumerate(steps) if 'ops doctor --stack "$GITHUB_JOB"' in str(s.get("run", "")))
        up = next(i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@"))
        assert doctor < up, stage
        assert steps[up]["with"]["policyPacks"] == "stacks/policy_pack"
        assert (REPO_ROOT / "stacks" / "policy_pack" / "PulumiPolicy.yaml").is_file()
    preview = _load(REPO_ROOT / ".github" / "workflows" / "infra-preview.yml")["jobs"]["preview"]["steps"]
    step = next(s for s in preview if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert step["with"]["policyPacks"] == "stacks/policy_pack"
