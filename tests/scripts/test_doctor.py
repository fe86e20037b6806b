"""`ops doctor --stack S`: every missing secret, variable and placeholder in one run; exit 2, or 0 when all is set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from ops.cli import app
from stacks.prerequisites import PREREQUISITES, STACK_SECRET
from tests.cloudflare_fake import FakeCloudflare
from tests.hcloud_fake import FakeHetzner
from tests.hcloud_fake import transport as hcloud_transport
from tests.stack_fixtures import REAL_LOOKING, write_stack_file

pytestmark = pytest.mark.unit
runner = CliRunner()

PLACEHOLDERS = {
    "production": {"compute.admin_cidrs[0]", "compute.ssh_keys.oncall", "database.org_id", "edge.account_id",
                   "edge.zone_id", "edge.mailjet_dkim_value", "monitoring.logs_ingest_host"},
    "staging": {"compute.admin_cidrs[0]", "compute.ssh_keys.oncall", "edge.account_id", "edge.zone_id",
                "monitoring.logs_ingest_host"},
}
VARIABLES = {"NEON_API_KEY", "BETTERSTACK_API_TOKEN", "STRIPE_API_KEY", "PULUMI_ACCESS_TOKEN", "R2_ACCESS_KEY_ID",
             "R2_SECRET_ACCESS_KEY"}
ALL_SET = {name: f"value-of-{name}" for name in VARIABLES | {"HCLOUD_TOKEN", "CLOUDFLARE_API_TOKEN"}}


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh machine: none of the variables set, no `pulumi login` (PULUMI_HOME empty)."""
    for item in PREREQUISITES:
        monkeypatch.delenv(item.name, raising=False)
        if item.alternative:
            monkeypatch.delenv(item.alternative, raising=False)
    for name in ("PULUMI_BACKEND_URL", "OPS_STACK_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PULUMI_HOME", str(tmp_path / "pulumi-home"))


def doctor(*args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["doctor", *args, "--json"])
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_committed_stack_file_without_credentials_names_everything_at_once(stack: str) -> None:
    code, report = doctor("--stack", stack)
    assert code == 2 and report["ok"] is False
    keys = {f["key"] for f in report["findings"] if f["severity"] == "missing"}
    secrets = {p.name for p in PREREQUISITES if p.kind == STACK_SECRET}
    assert keys == secrets | VARIABLES | PLACEHOLDERS[stack]
    for finding in report["findings"]:
        assert finding["where"] and finding["how"], finding  # each line says where to get it and how to set it
    redis = next(f for f in report["findings"] if f["key"] == "autoenroll:redisUrl")
    assert redis["how"].startswith(f"pulumi config set --secret redisUrl --stack {stack}")


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_everything_set_exits_0(stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_stack_file(tmp_path, stack)
    monkeypatch.setenv("OPS_STACK_CONFIG_DIR", str(tmp_path))
    for name, value in ALL_SET.items():
        monkeypatch.setenv(name, value)
    code, report = doctor("--stack", stack)
    assert (code, report["ok"], report["findings"]) == (0, True, [])


def test_the_provider_variables_stand_in_for_their_stack_secrets_and_pulumi_login_for_the_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI passes HCLOUD_TOKEN/CLOUDFLARE_API_TOKEN (the providers read them) and REGISTRY_READ_TOKEN
    (release.yml's config-map): the doctor must not ask for the stack secrets then."""
    path = write_stack_file(tmp_path, "production")
    text = path.read_text()
    for key in ("hcloud:token", "cloudflare:apiToken", "autoenroll:registryReadToken"):
        text = text.replace(f"  {key}:\n    secure: v1:ZG9jdG9yLWNpcGhlcnRleHQ=\n", "")
    path.write_text(text)
    monkeypatch.setenv("OPS_STACK_CONFIG_DIR", str(tmp_path))
    for name, value in ALL_SET.items():
        monkeypatch.setenv(name, value)
    code, report = doctor("--stack", "production")
    assert {f["key"] for f in report["findings"]} == {"autoenroll:registryReadToken"} and code == 2
    monkeypatch.setenv("REGISTRY_READ_TOKEN", "ghp_x")
    monkeypatch.delenv("PULUMI_ACCESS_TOKEN")
    (tmp_path / "pulumi-home").mkdir()
    (tmp_path / "pulumi-home" / "credentials.json").write_text("{}")
    assert doctor("--stack", "production")[0] == 0


def test_a_secret_written_in_clear_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_stack_file(tmp_path, "production")
    path.write_text(path.read_text() + "  autoenroll:authSecret: not-encrypted\n")
    monkeypatch.setenv("OPS_STACK_CONFIG_DIR", str(tmp_path))
    for name, value in ALL_SET.items():
        monkeypatch.setenv(name, value)
    code, report = doctor("--stack", "production")
    assert code == 2 and [(f["key"], "clear text" in f["problem"]) for f in report["findings"]] == [
        ("autoenroll:authSecret", True)]


def test_the_human_report_names_each_key_with_its_source_and_command() -> None:
    result = runner.invoke(app, ["doctor", "--stack", "production"])
    assert result.exit_code == 2
    assert "MISSING NEON_API_KEY: missing environment variable" in result.stdout
    assert "get it: Neon Console > Organization settings > API keys" in result.stdout
    assert "MISSING database.org_id: org-autoenroll-00000000 is a placeholder" in result.stdout


def test_an_unknown_stack_is_exit_2() -> None:
    result = runner.invoke(app, ["doctor", "--stack", "qa"])
    assert result.exit_code == 2 and "--stack: must be one of staging, production" in result.output


# --------------------------------------------------------------------------- --online, against the fakes


def online_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloudflare: FakeCloudflare,
                  hetzner: FakeHetzner) -> list[dict[str, Any]]:
    from ops import doctor as checks

    write_stack_file(tmp_path, "production")
    monkeypatch.setenv("OPS_STACK_CONFIG_DIR", str(tmp_path))
    environ = ALL_SET | {"CLOUDFLARE_API_TOKEN": cloudflare.token, "HCLOUD_TOKEN": hetzner.token}
    hcloud = hcloud_transport(hetzner)

    def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.hetzner.cloud":
            return hcloud.handle_request(request)
        return cloudflare(request)

    report = checks.offline("production", environ)
    checks.online(report, environ, transport=httpx.MockTransport(route))
    return [dict(key=f.key, problem=f.problem, how=f.how, severity=f.severity) for f in report.findings]


def ready_cloudflare() -> FakeCloudflare:
    from ops.doctor import CLOUDFLARE_PERMISSIONS

    cloudflare = FakeCloudflare()
    cloudflare.token_permissions = list(CLOUDFLARE_PERMISSIONS)
    cloudflare.pages_projects.add("autoenroll-website")
    return cloudflare


def test_online_a_ready_account_adds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert online_report(tmp_path, monkeypatch, ready_cloudflare(), FakeHetzner()) == []


def test_online_names_token_rights_r2_pages_and_what_already_exists(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.config import ssh_fingerprint

    zone = REAL_LOOKING["edge"]["zone_id"]
    cloudflare = FakeCloudflare()
    cloudflare.token_permissions = ["DNS Write", "Zone Settings Write"]
    cloudflare.r2_enabled = False
    cloudflare.rulesets[zone] = [{"id": "rs-old", "kind": "zone", "phase": "http_ratelimit", "name": "dashboard"},
                                 {"id": "rs-managed", "kind": "managed", "phase": "http_ratelimit", "name": "x"}]
    cloudflare.add_record(zone, "app.autoenroll.ie", "192.0.2.10")
    cloudflare.add_record(zone, "autoenroll.ie", "v=spf1 -all", type_="TXT")  # mail TXT at the apex: no conflict
    hetzner = FakeHetzner()
    key = REAL_LOOKING["compute"]["ssh_keys"]["oncall"]
    hetzner.ssh_keys.append({"id": 4711, "name": "my laptop", "fingerprint": ssh_fingerprint(key)})
    findings = online_report(tmp_path, monkeypatch, cloudflare, hetzner)
    by_key = {f["key"]: f for f in findings}
    assert "Zone WAF Write" in by_key["cloudflare:apiToken"]["problem"]
    assert "R2 is not usable" in by_key["R2"]["problem"] and "enable R2" in by_key["R2"]["problem"]
    assert by_key["Cloudflare Pages"]["severity"] == "note"
    assert "GitHub app" in by_key["Cloudflare Pages"]["problem"]
    ruleset = by_key["zone ruleset rs-old"]
    assert f"pulumi import cloudflare:index/ruleset:Ruleset edge-ratelimit 'zones/{zone}/rs-old'" in ruleset["how"]
    assert "zone ruleset rs-managed" not in by_key  # Cloudflare's own managed rulesets don't collide
    record = by_key["DNS record app.autoenroll.ie"]
    assert "pulumi import cloudflare:index/dnsRecord:DnsRecord edge-app" in record["how"]
    assert "DNS record autoenroll.ie" not in by_key
    ssh = by_key["compute.ssh_keys.oncall"]
    assert "uniqueness_error" in ssh["problem"] and "hcloud:index/sshKey:SshKey compute-key-oncall '4711'" in ssh["how"]
    assert "--parent 'compute=urn:pulumi:production::autoenroll::autoenroll:compute:Compute::compute'" in ssh["how"]
    assert all(f["severity"] == "missing" for f in findings if f["key"] != "Cloudflare Pages")


def test_online_a_token_that_does_not_verify_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ops import doctor as checks

    write_stack_file(tmp_path, "production")
    monkeypatch.setenv("OPS_STACK_CONFIG_DIR", str(tmp_path))
    environ = {k: v for k, v in ALL_SET.items() if k != "HCLOUD_TOKEN"} | {"CLOUDFLARE_API_TOKEN": "wrong"}
    report = checks.offline("production", environ)
    checks.online(report, environ, transport=FakeCloudflare().transport())
    assert [f.key for f in report.findings if f.severity == "missing"] == ["cloudflare:apiToken"]
    assert "does not verify" in report.findings[0].problem and "wrong" not in report.findings[0].problem
    assert [f.key for f in report.findings if f.severity == "note"] == ["HCLOUD_TOKEN"]  # skipped, and said so


def test_the_checklist_accepts_the_provider_tokens_ci_passes_in_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI passes HCLOUD_TOKEN and CLOUDFLARE_API_TOKEN; the checklist asked for hcloud:token and
    cloudflare:apiToken in the stack file all the same."""
    from ops.checklist import stack_secrets

    path = write_stack_file(tmp_path, "production")
    text = path.read_text()
    for key in ("hcloud:token", "cloudflare:apiToken"):
        text = text.replace(f"  {key}:\n    secure: v1:ZG9jdG9yLWNpcGhlcnRleHQ=\n", "")
    path.write_text(text)
    assert stack_secrets(path)[0] == ["hcloud:token", "cloudflare:apiToken"]
    monkeypatch.setenv("HCLOUD_TOKEN", "h")
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "c")
    assert stack_secrets(path)[0] == []


@pytest.mark.stacks
def test_ops_plan_offline_still_plans_the_committed_file_and_warns_of_its_placeholders() -> None:
    result = runner.invoke(app, ["plan", "--stack", "staging", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["resources"]
    assert "placeholder value(s) that `pulumi preview`/`up` refuse: compute.admin_cidrs[0]" in result.stderr


def test_the_docs_table_is_the_prerequisites_list() -> None:
    """One table of every secret and variable in docs/first-deploy.md (where the README's first deploy
    sends a newcomer), generated from the list the doctor and the program check
    (python -m stacks.prerequisites docs/first-deploy.md)."""
    from ops.paths import REPO_ROOT
    from stacks.prerequisites import START, with_readme_section

    readme = (REPO_ROOT / "docs" / "first-deploy.md").read_text()
    assert "## Before the first `pulumi up`" in readme and START in readme
    assert "docs/first-deploy.md" in (REPO_ROOT / "README.md").read_text(), "the README no longer links the table"
    assert with_readme_section(readme) == readme, \
        "docs/first-deploy.md's table is stale: python -m stacks.prerequisites docs/first-deploy.md"
    for item in PREREQUISITES:
        assert f"| `{item.name}` |" in readme, item.name
