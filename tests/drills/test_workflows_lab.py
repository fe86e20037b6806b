"""The workflows, run as written, are tests (issue 27): release.yml (the image job, then staging and
production), then backup-nightly.yml, backup-verify-weekly.yml and refresh-staging.yml, each job's
run: steps in order with its env: and the lab's stand-ins for its uses: steps and services
(tests/drills/workflows.py), on the session's lab from an empty state: databases unmigrated, no app
container, no registry login, no origin certificate on either host, no stack "up", and the Hetzner
firewall as production's (SSH only through the rule `--open-ssh-from` adds for the job's runner).

The secrets and variables come from a table standing for the GitHub environments `staging` and
`production` (`environment_tables`), the stack files are the lab's with every secret set and every
placeholder filled in (`filled_stack_files`: what a new engineer leaves after following the README).
The last tests show that the harness fails a workflow that would fail on GitHub (a mutated copy).
Lab part under the test-hosts lock: `flock /tmp/autoenroll-testhosts.lock pytest tests/drills/test_workflows_lab.py`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from ops.paths import REPO_ROOT
from tests.drills.lab import Lab
from tests.drills.test_lab import version_on
from tests.drills.test_lab_hostnet import RUNNER_PUBLIC, runner_with_public_address, without_standing_ssh_rule
from tests.drills.workflows import (
    WORKFLOWS,
    PulumiStandIn,
    Runner,
    Tables,
    WorkflowError,
    lab_stand_ins,
    postgres_service,
    runner_path,
)
from tests.lab.docker import DockerEngine
from tests.lab.fixtures import PushedImage
from tests.lab.images import APP_REPOSITORY

pytestmark = pytest.mark.drill

RELEASE_TAG = "v1.4.2"  # the tag the release is pushed for; the image job makes the version 1.4.2 of it
# What a new engineer writes over the committed placeholders (stacks.prerequisites.placeholders lists them).
FILLED = {"compute.admin_cidrs": ["192.88.99.8/32"], "edge.account_id": "9e1f" * 8, "edge.zone_id": "7a3c" * 8,
          "monitoring.logs_ingest_host": "s2731905.eu-nbg-2.betterstackdata.com",
          "database.org_id": "org-quiet-lab-41827356",
          "edge.mailjet_dkim_value": "k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDlabdkimkey"}
SECRET_NAMES = ("HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN", "NEON_API_KEY", "BETTERSTACK_API_TOKEN", "STRIPE_API_KEY",
                "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY")


def filled_stack_files(lab: Lab, folder: Path) -> Path:
    """The lab's stack files (every secret `secure:`) with the placeholders replaced by real-shaped values,
    the on-call key by a real public key; ops doctor and the program then find nothing missing."""
    from stacks.prerequisites import placeholders

    folder.mkdir(parents=True)
    public_key = subprocess.run(["ssh-keygen", "-y", "-f", str(lab.hosts["primary"].folder / "client_key")],
                                capture_output=True, text=True, check=True).stdout.strip()
    for stack in ("staging", "production"):
        document = yaml.safe_load((Path(lab.env["OPS_STACK_CONFIG_DIR"]) / f"Pulumi.{stack}.yaml").read_text())
        config = document["config"]
        for dotted, value in FILLED.items():
            section, key = dotted.split(".")
            config[f"autoenroll:{section}"][key] = value
        keys = config["autoenroll:compute"]["ssh_keys"]
        config["autoenroll:compute"]["ssh_keys"] = dict.fromkeys(keys, public_key)
        raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("autoenroll:")}
        left = placeholders(raw, stack)
        assert not left, f"the lab's stack file still has placeholders: {[p.key for p in left]}"
        (folder / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return folder


def environment_tables(lab: Lab) -> Tables:
    """The GitHub environments' secrets and variables, as the README's table says to create them."""
    shared = {name: lab.env[name] for name in SECRET_NAMES}
    shared.update({
        "PULUMI_ACCESS_TOKEN": "pul-lab-access-token",
        "DEPLOY_SSH_KEY": (lab.hosts["primary"].folder / "client_key").read_text(),
        "REGISTRY_READ_TOKEN": lab.registry.reader_token,
        "MASKING_KEY": "lab-masking-key-" + "m" * 32,
        "BACKUP_AGE_IDENTITY": Path(lab.env["BACKUP_AGE_IDENTITY_FILE"]).read_text().strip(),
    })
    variables = {"BACKUP_AGE_RECIPIENT": lab.env["BACKUP_AGE_RECIPIENT"]}
    return Tables(secrets={"staging": dict(shared), "production": dict(shared)},
                  vars={"staging": dict(variables), "production": dict(variables)},
                  github={"ref_name": RELEASE_TAG, "sha": "0" * 40, "run_id": "4242", "actor": "release-bot",
                          "repository": "autoenroll/autoenroll", "token": "ghs_lab-workflow-token"})


def lab_runner(lab: Lab, lab_registry: PushedImage, docker_engine: DockerEngine,
               folder: Path) -> tuple[Runner, PulumiStandIn]:
    stack_files = filled_stack_files(lab, folder / "stack-config")
    pulumi = PulumiStandIn({s: Path(lab.env[f"OPS_STACK_OUTPUTS_{s.upper()}"]) for s in ("staging", "production")},
                           stack_files, folder)
    app_image = yaml.safe_load((REPO_ROOT / "Pulumi.production.yaml").read_text())["config"][
        "autoenroll:compute"]["app_image"]

    def push_image(image: str, tag: str) -> str:
        # GHCR is the lab's registry: the image built once this session (app/Dockerfile), pushed under the tag.
        if image != app_image:
            raise WorkflowError(f"docker/build-push-action: pushes {image}, the stacks' app_image is {app_image}")
        registry = lab_registry.registry
        built = f"{registry.push_address}/{APP_REPOSITORY}:{lab_registry.tag}"
        return registry.push(docker_engine, built, APP_REPOSITORY, tag)

    stand_ins = lab_stand_ins(workspace=REPO_ROOT, folder=folder, pulumi=pulumi, runner_public=RUNNER_PUBLIC,
                              push_image=push_image)
    # The runner's own environment: the lab's stand-in addresses (API base URLs, the SSH config, the
    # CAs), never a secret, a stack outputs file or a backup key: those come only from the workflow.
    dropped = {*SECRET_NAMES, "BACKUP_AGE_RECIPIENT", "BACKUP_AGE_IDENTITY_FILE", "OPS_SCRATCH_DATABASE_URL",
               "OPS_STACK_OUTPUTS", "OPS_STACK_OUTPUTS_STAGING", "OPS_STACK_OUTPUTS_PRODUCTION", "MASKING_KEY",
               "PULUMI_ACCESS_TOKEN", "VIRTUAL_ENV"}
    env = {k: v for k, v in lab.env.items() if k not in dropped}
    python_bin = folder / "image-python"  # the image's python3 (check_python has made sure it is this one)
    python_bin.mkdir(parents=True)
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name in ("python3", base.name):
        (python_bin / name).symlink_to(base)
    env.update({"PATH": f"{python_bin}:{runner_path(folder)}", "OPS_STACK_CONFIG_DIR": str(stack_files),
                "UV_CACHE_DIR": str(Path.home() / ".cache" / "uv")})  # the runner image's tool cache
    runner = Runner(workspace=REPO_ROOT, env=env, stand_ins=stand_ins, tables=environment_tables(lab),
                    scratch=folder, services={"postgres": postgres_service})
    return runner, pulumi


def from_empty(lab: Lab) -> None:
    """How `pulumi up` leaves a first environment: databases empty and unmigrated, the hosts as cloud-init
    left them: no app container, no registry login, no origin certificate, and none of what the deploy
    script's verbs record (`current`, the upstream file Caddy's unit reads, the app's and Vector's env).

    Every one of those goes: a module before this one on the session's lab deployed, and a `current`
    naming a version with no container and no certificate behind it is a host no server ever is; with
    it, `ops deploy`'s plan asked that host's Caddy (down: no certificate yet) for its upstreams before
    the deploy's `tls` verb could start it, and the release failed with curl's exit 7 on port 2019."""
    lab.empty_database()
    for host in lab.hosts.values():
        names = host.docker("ps", "-a", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}").stdout.split()
        if names:
            host.docker("rm", "--force", *names)
        (host.docker_config / "config.json").unlink(missing_ok=True)
        for name in ("cert.pem", "key.pem"):
            (host.origin_dir / name).unlink(missing_ok=True)
        for recorded in ("current", "caddy-upstream.env", "app.env"):
            (host.role_root / recorded).unlink(missing_ok=True)
        host.vector_env_file.unlink(missing_ok=True)
        host.start_caddy()
    # The hosts as the release's first `ops deploy` meets them: its plan (read over SSH) finds nothing deployed.
    planned = lab.ops("deploy", "--env", "staging", "--version", "lab-v1", "--plan", "--json")
    assert planned.returncode == 0, planned.stderr
    assert {h["from"] for h in json.loads(planned.stdout)["hosts"]} == {"none"}, planned.stdout


def test_lab_workflows_as_written_release_back_up_verify_and_refresh(
        lab: Lab, lab_registry: PushedImage, docker_engine: DockerEngine, tmp_path: Path) -> None:
    from_empty(lab)
    runner, pulumi = lab_runner(lab, lab_registry, docker_engine, tmp_path / "runner")
    before = sorted(p.name for p in REPO_ROOT.iterdir())
    with runner_with_public_address(lab) as ssh_config, without_standing_ssh_rule(lab):
        runner.env["OPS_SSH_CONFIG"] = str(ssh_config)
        release = runner.run_workflow(WORKFLOWS / "release.yml")

        # The release: the image pushed under the tag's version, both stacks up, migrated, serving it.
        assert list(release) == ["image", "staging", "production"]
        assert release["image"].outputs["version"] == "1.4.2"
        assert release["image"].outputs["digest"] == lab.registry.manifest_digest(APP_REPOSITORY, "1.4.2")
        assert pulumi.up == {"staging", "production"}
        assert version_on(lab, "primary") == version_on(lab, "standby") == "1.4.2"
        assert lab.edge_get("/ready").status_code == 200
        for stack in ("staging", "production"):
            checklist = json.loads(release[stack].output["ops checklist"])
            statuses = [item["status"] for item in checklist]
            assert statuses and set(statuses) == {"pass"}, checklist
        # A customer's row in production, for the backup, its verification and the refresh to carry.
        with psycopg.connect(lab.owner_url("main"), autocommit=True) as conn:
            row = conn.execute("INSERT INTO tenants (name) VALUES ('Harness Ltd') RETURNING id").fetchone()
            assert row is not None
            tenant = str(row[0])

        nightly = runner.run_workflow(WORKFLOWS / "backup-nightly.yml")["backup"]
        made = json.loads(nightly.output["Back up production"])
        backup_id = made["backup"]["id"]
        weekly = runner.run_workflow(WORKFLOWS / "backup-verify-weekly.yml")["verify"]
        verified = json.loads(weekly.output["Verify the newest backup"])
        assert (verified["backup"], verified["ok"]) == (backup_id, True), verified
        listed = lab.ops("backup", "list", "--env", "production", "--json")
        assert listed.returncode == 0, listed.stderr
        # The release's own backup (before its checklist) and the nightly's, newest first, both verified.
        backups = [(b["id"], b["verified"] is not None) for b in json.loads(listed.stdout)]
        assert len(backups) == 2 and backups[0] == (backup_id, True) and backups[1][1], backups

        # The same nightly job without the step that reads the live outputs: it fails, naming the step.
        def without_outputs(document: dict[str, Any]) -> None:
            steps = document["jobs"]["backup"]["steps"]
            document["jobs"]["backup"]["steps"] = [s for s in steps if "stack output" not in str(s.get("run", ""))]
        broken = mutated("backup-nightly.yml", tmp_path, without_outputs)
        with pytest.raises(WorkflowError, match=r"job backup: step \d+ \(Monthly partitions ahead\) exited"):
            runner.run_workflow(broken)

        with psycopg.connect(lab.owner_url("staging")) as conn:
            assert conn.execute("SELECT count(*) FROM tenants WHERE id = %s", (tenant,)).fetchone() == (0,)
        runner.run_workflow(WORKFLOWS / "refresh-staging.yml")
        with psycopg.connect(lab.owner_url("staging")) as conn:
            assert conn.execute("SELECT count(*) FROM tenants WHERE id = %s", (tenant,)).fetchone() == (1,)

    # Each job removed what it wrote into the workspace (stack outputs, the backup key).
    assert sorted(p.name for p in REPO_ROOT.iterdir()) == before


# --------------------------------------------------------------------------- the harness can fail (no lab needed)


def bare_runner(folder: Path, secrets: dict[str, str] | None = None) -> Runner:
    import os

    return Runner(workspace=REPO_ROOT, env={"PATH": os.environ["PATH"]}, stand_ins={},
                  tables=Tables({"production": secrets or {}}, {}, {"ref_name": RELEASE_TAG}), scratch=folder)


def mutated(workflow: str, folder: Path, edit: Any) -> Path:
    """A copy of `workflow` with `edit(document)` applied, written where the harness reads it."""
    document = yaml.safe_load((WORKFLOWS / workflow).read_text())
    edit(document)
    path = folder / workflow
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _python_version(version: str) -> Any:
    def edit(document: dict[str, Any]) -> None:
        for step in document["jobs"]["backup"]["steps"]:
            if str(step.get("uses", "")).startswith("actions/setup-python@"):
                step["with"]["python-version"] = version
    return edit


def test_a_job_whose_runner_cannot_satisfy_requires_python_fails(tmp_path: Path) -> None:
    workflow = mutated("backup-nightly.yml", tmp_path, _python_version("3.12"))
    with pytest.raises(WorkflowError, match=r"job backup: its runner gives Python 3\.12; pyproject.toml requires"):
        bare_runner(tmp_path).run_workflow(workflow)

    def no_setup_python(document: dict[str, Any]) -> None:  # the bare ubuntu-24.04 runner the issue found
        steps = document["jobs"]["backup"]["steps"]
        document["jobs"]["backup"]["steps"] = [s for s in steps if "setup-python" not in str(s.get("uses", ""))]
    workflow = mutated("backup-nightly.yml", tmp_path, no_setup_python)
    with pytest.raises(WorkflowError, match=r"Python 3\.12"):
        bare_runner(tmp_path).run_workflow(workflow)


def test_an_action_without_a_stand_in_is_named(tmp_path: Path) -> None:
    workflow = tmp_path / "w.yml"
    workflow.write_text(yaml.safe_dump({"jobs": {"j": {"runs-on": "ubuntu-24.04", "steps": [
        {"run": "true"}, {"uses": "actions/cache@" + "1" * 40, "with": {"path": "x"}}]}}}))
    with pytest.raises(WorkflowError, match=r"step 2 .*uses actions/cache@1+, for which the harness has no stand-in"):
        bare_runner(tmp_path).run_workflow(workflow)


def test_a_secret_the_environment_lacks_and_an_unknown_expression_are_named(tmp_path: Path) -> None:
    workflow = tmp_path / "w.yml"
    job = {"runs-on": "ubuntu-24.04", "environment": "production", "env": {"A": "${{ secrets.NOT_CREATED }}"},
           "steps": [{"run": "true"}]}
    workflow.write_text(yaml.safe_dump({"jobs": {"j": job}}))
    with pytest.raises(WorkflowError, match="environment 'production' has no secret NOT_CREATED"):
        bare_runner(tmp_path).run_workflow(workflow)
    job["env"] = {"A": "${{ hashFiles('uv.lock') }}"}
    workflow.write_text(yaml.safe_dump({"jobs": {"j": job}}))
    with pytest.raises(WorkflowError, match=r"hashFiles\('uv.lock'\) }} is an expression the harness does not know"):
        bare_runner(tmp_path).run_workflow(workflow)


def test_steps_pass_outputs_env_and_needs_and_a_failure_runs_only_always_steps(tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    workflow = tmp_path / "w.yml"
    workflow.write_text(yaml.safe_dump({"jobs": {
        "first": {"runs-on": "ubuntu-24.04", "outputs": {"v": "${{ steps.make.outputs.v }}"}, "steps": [
            {"id": "make", "run": 'echo "v=${GITHUB_REF_NAME#v}" >> "$GITHUB_OUTPUT"\n'
                                  'echo "E=from-env" >> "$GITHUB_ENV"'},
            {"run": 'test "$E" = from-env'}]},
        "second": {"runs-on": "ubuntu-24.04", "needs": "first", "environment": "production",
                   "env": {"V": "${{ needs.first.outputs.v }}", "S": "${{ secrets.S }}"}, "steps": [
            {"name": "uses what first made", "run": 'test "$V" = 1.4.2 && test "$S" = shh'},
            {"name": "breaks", "run": "exit 4"},
            {"name": "skipped after a failure", "run": f"echo ran > {tmp_path / 'skipped'}"},
            {"name": "cleans up", "if": "always()", "run": f"touch {marker}"}]}}}))
    runner = bare_runner(tmp_path, {"S": "shh"})
    with pytest.raises(WorkflowError, match=r"job second: step 2 \(breaks\) exited 4"):
        runner.run_workflow(workflow)
    assert runner.results["first"].outputs == {"v": "1.4.2"}
    assert marker.exists() and not (tmp_path / "skipped").exists()


def test_pulumi_up_stops_on_the_committed_stack_files_and_the_shim_serves_only_stacks_that_are_up(
        tmp_path: Path) -> None:
    import os

    outputs = tmp_path / "production.json"
    outputs.write_text(json.dumps({"public_url": "https://lab"}))
    pulumi = PulumiStandIn({"production": outputs}, REPO_ROOT, tmp_path)
    from tests.drills.workflows import StepContext

    env = {"PULUMI_ACCESS_TOKEN": "t"}
    up = StepContext("release.yml", "production", "pulumi up", {"command": "up", "stack-name": "production"}, env, [])
    with pytest.raises(WorkflowError) as refused:  # no secure: values, placeholders, no provider variables
        pulumi(up)
    for named in ("autoenroll:authSecret", "HCLOUD_TOKEN", "compute.admin_cidrs[0]", "edge.zone_id"):
        assert named in str(refused.value)

    def shim(*args: str, login: str = "t") -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(pulumi.bin / "pulumi"), *args], capture_output=True, text=True, check=False,
                              env={**os.environ, "PULUMI_ACCESS_TOKEN": login})

    read = ("stack", "output", "--json", "--show-secrets", "--stack", "production")
    assert shim(*read).returncode == 3 and "no `pulumi up` has run" in shim(*read).stderr
    (pulumi.state / "production.json").write_text(outputs.read_text())  # as a successful up leaves it
    assert json.loads(shim(*read).stdout) == {"public_url": "https://lab"}
    assert "not logged in" in shim(*read, login="").stderr
    assert "only `pulumi stack output" in shim("up", "--stack", "production").stderr


def test_the_scratch_service_must_be_productions_postgres_major(tmp_path: Path) -> None:
    """The weekly verify's service was postgres:16 while production runs 17: a restore into an older major
    is not one PostgreSQL supports, so the harness refuses it rather than prove it on its own 17."""
    with pytest.raises(WorkflowError, match="postgres:16: the harness has PostgreSQL 17 only"), \
            postgres_service("postgres:16", {"POSTGRES_PASSWORD": "x"}, ["5432:5432"]):
        pass
    document = yaml.safe_load((WORKFLOWS / "backup-verify-weekly.yml").read_text())
    assert document["jobs"]["verify"]["services"]["scratch"]["image"] == "postgres:17"
