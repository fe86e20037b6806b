"""`ops checklist` for a cloud environment: the items that read Cloudflare, BetterStack and the
stack's config file, against their APIs faked at the transport (no sandbox needed)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from ops import checklist
from ops.adapters.cloud import checklist as checklist_cloud
from ops.adapters.cloud.clients import BetterStackClient, CloudflareClient
from ops.environment import Environment, from_outputs
from ops.errors import ProviderAPIError
from ops.paths import REPO_ROOT
from tests.betterstack_fake import FakeBetterStack
from tests.cloudflare_fake import FakeCloudflare

pytestmark = pytest.mark.unit

ZONE, APP = "zone123", "staging.autoenroll.ie"
PRIMARY, STANDBY = "203.0.113.10", "203.0.113.20"
SECRETS = ["redisUrl", "sentryDsn", "r2AccessKeyId", "r2SecretAccessKey", "betterstackLogsToken", "authSecret",
           "registryReadToken"]


def environment(monkeypatch: pytest.MonkeyPatch, monitor_ids: dict[str, str] | None = None,
                load_balancer: str | None = None) -> Environment:
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")
    return from_outputs("staging", {"environment": "staging",
        "public_url": f"https://{APP}", "r2_endpoint": "https://acct.eu.r2.cloudflarestorage.com",
        "buckets": {"uploads": "u", "agents": "a", "backups": "b"},
        "connection_strings": {"staging": {"direct": "postgresql://o@h/db", "pooled": "postgresql://a@h/db"}},
        "servers": [{"name": "s1", "role": "primary", "ipv4": PRIMARY, "private_ip": "10.0.1.10"},
                    {"name": "s2", "role": "standby", "ipv4": STANDBY, "private_ip": "10.0.1.11"}],
        "load_balancer_ipv4": load_balancer,
        "dns": {"zone_id": ZONE, "app_record_name": APP, "records": {"app": "rec0"}},
        "monitor_ids": monitor_ids or {}, "heartbeat_url": "https://uptime.betterstack.com/api/v1/heartbeat/t",
    })


@pytest.fixture()
def cloudflare(monkeypatch: pytest.MonkeyPatch) -> FakeCloudflare:
    fake = FakeCloudflare()
    monkeypatch.setattr(CloudflareClient, "from_environ", classmethod(
        lambda cls: CloudflareClient(fake.token, transport=fake.transport())))
    return fake


@pytest.fixture()
def betterstack(monkeypatch: pytest.MonkeyPatch) -> FakeBetterStack:
    fake = FakeBetterStack()
    monkeypatch.setattr(BetterStackClient, "from_environ", classmethod(
        lambda cls: BetterStackClient("t", transport=httpx.MockTransport(fake), sleep=lambda s: None)))
    return fake


def stack_file(folder: Path, secure: list[str], plain: tuple[str, ...] = ()) -> Path:
    lines = ["config:", "  autoenroll:environment: staging"]
    lines += [f"  {k}:\n    secure: v1:AAAAciphertext" for k in secure]
    lines += [f"  {k}: in-clear" for k in plain]
    path = folder / "Pulumi.staging.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- secrets in the stack config


def test_stack_secrets_names_the_missing_and_the_clear_text_ones(tmp_path: Path) -> None:
    keys = [f"autoenroll:{k}" for k in SECRETS]
    path = stack_file(tmp_path, secure=[*keys[:4], "hcloud:token"], plain=("cloudflare:apiToken",))
    missing, plain, total = checklist.stack_secrets(path)
    assert missing == keys[4:] and plain == ["cloudflare:apiToken"] and total == len(SECRETS) + 2


def test_env_vars_item_passes_when_every_secret_is_encrypted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stack_file(tmp_path, secure=[f"autoenroll:{k}" for k in SECRETS] + ["hcloud:token", "cloudflare:apiToken"])
    monkeypatch.setattr(checklist, "REPO_ROOT", tmp_path)
    status, evidence = checklist_cloud.stack_secrets_set(environment(monkeypatch))
    assert status == "pass" and "all 9 secrets" in evidence


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_committed_stack_files_hold_no_secret_in_clear(stack: str) -> None:
    _, plain, _ = checklist.stack_secrets(REPO_ROOT / f"Pulumi.{stack}.yaml")
    assert plain == []


# --------------------------------------------------------------------------- DNS


def test_dns_passes_on_one_proxied_record_at_the_primary(cloudflare: FakeCloudflare,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cloudflare.add_record(ZONE, APP, PRIMARY)
    status, evidence = checklist_cloud.cloudflare_dns(environment(monkeypatch))
    assert status == "pass" and f"A {PRIMARY} (primary), proxied" in evidence


def test_dns_after_failover_names_the_standby(cloudflare: FakeCloudflare, monkeypatch: pytest.MonkeyPatch) -> None:
    cloudflare.add_record(ZONE, APP, STANDBY)
    status, evidence = checklist_cloud.cloudflare_dns(environment(monkeypatch))
    assert status == "pass" and "(standby)" in evidence


@pytest.mark.parametrize("records, named", [
    ([(PRIMARY, False)], "NOT proxied"),
    ([("198.51.100.7", True)], "not a server of this stack"),
    ([(PRIMARY, True), (STANDBY, True)], "2 A records"),
    ([], "0 A records"),
])
def test_dns_fails_naming_what_is_wrong(cloudflare: FakeCloudflare, monkeypatch: pytest.MonkeyPatch,
                                        records: list[tuple[str, bool]], named: str) -> None:
    for content, proxied in records:
        cloudflare.add_record(ZONE, APP, content, proxied=proxied)
    status, evidence = checklist_cloud.cloudflare_dns(environment(monkeypatch))
    assert status == "fail" and named in evidence, evidence


def test_dns_with_a_load_balancer_wants_the_load_balancer(cloudflare: FakeCloudflare,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    cloudflare.add_record(ZONE, APP, PRIMARY)
    status, evidence = checklist_cloud.cloudflare_dns(environment(monkeypatch, load_balancer="203.0.113.250"))
    assert status == "fail" and "not a server of this stack" in evidence


def test_a_bad_cloudflare_token_is_a_provider_error_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeCloudflare()
    client = CloudflareClient("wrong-token", transport=fake.transport())
    with pytest.raises(ProviderAPIError, match="Invalid access token") as caught:
        client.dns_records(ZONE, APP, "A")
    assert "wrong-token" not in str(caught.value)


# --------------------------------------------------------------------------- TLS at the edge


@pytest.mark.parametrize("mode, minimum, verdict", [
    ("strict", "1.2", "ok"), ("full", "1.2", "wrong"), ("strict", "1.0", "wrong"), ("flexible", "1.3", "wrong"),
])
def test_cloudflare_tls_wants_strict_and_at_least_tls_1_2(cloudflare: FakeCloudflare, mode: str, minimum: str,
                                                          verdict: str) -> None:
    cloudflare.settings[ZONE] = {"ssl": mode, "min_tls_version": minimum}
    assert checklist_cloud.cloudflare_tls(ZONE).startswith(verdict)


# --------------------------------------------------------------------------- monitoring


def test_monitoring_passes_when_every_monitor_is_up_and_sentry_is_a_secret(
        betterstack: FakeBetterStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = {host: str(betterstack.next_id + 1 + i) for i, host in enumerate(["app", "api"])}
    for _ in ids:
        client = BetterStackClient("t", transport=httpx.MockTransport(betterstack), sleep=lambda s: None)
        client.create("monitors", {"url": "https://x/health"})
    for item in betterstack.items.values():
        item["attributes"]["status"] = "up"
    stack_file(tmp_path, secure=["autoenroll:sentryDsn"])
    monkeypatch.setattr(checklist, "REPO_ROOT", tmp_path)
    status, evidence = checklist_cloud.monitoring(environment(monkeypatch, monitor_ids=ids))
    assert status == "pass" and "'app': 'up'" in evidence and "Sentry DSN a stack secret" in evidence

    betterstack.items[ids["api"]]["attributes"]["status"] = "down"
    status, evidence = checklist_cloud.monitoring(environment(monkeypatch, monitor_ids=ids))
    assert status == "fail" and "'api': 'down'" in evidence

    del betterstack.items[ids["api"]]
    status, evidence = checklist_cloud.monitoring(environment(monkeypatch, monitor_ids=ids))
    assert status == "fail" and "'api': 'missing'" in evidence


def test_monitoring_fails_without_sentry_in_the_stack_config(
        betterstack: FakeBetterStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    BetterStackClient("t", transport=httpx.MockTransport(betterstack), sleep=lambda s: None).create(
        "monitors", {"url": "https://x/health"})
    only = next(iter(betterstack.items))
    betterstack.items[only]["attributes"]["status"] = "up"
    stack_file(tmp_path, secure=[])
    monkeypatch.setattr(checklist, "REPO_ROOT", tmp_path)
    env = environment(monkeypatch, monitor_ids={"app": only})
    status, evidence = checklist_cloud.monitoring(env)
    assert status == "fail" and "Sentry DSN not set as a secret" in evidence
