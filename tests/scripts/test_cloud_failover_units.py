"""Cloud traffic switch (Cloudflare DNS through the official SDK, against the fake at the HTTP
transport) and the failover command's confirmations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ops.adapters.cloud.cloudflare_dns import CloudflareDnsSwitch, client_from_token
from ops.cli import app
from ops.environment import AppHost, DnsRecords
from ops.errors import ConfigError
from tests.cloudflare_fake import FakeCloudflare

pytestmark = pytest.mark.unit

ZONE, PRIMARY, STANDBY = "zone1", "203.0.113.10", "203.0.113.20"
HOSTS = {"app-1": AppHost(name="app-1", role="primary", url="http://10.0.1.10:8000", address=PRIMARY),
         "standby": AppHost(name="standby", role="standby", url="http://10.0.1.11:8000", address=STANDBY)}


def switch(fake: FakeCloudflare) -> CloudflareDnsSwitch:
    fake.add_record(ZONE, "app.autoenroll.ie", PRIMARY)  # rec0
    fake.add_record(ZONE, "api.autoenroll.ie", PRIMARY)  # rec1
    fake.add_record(ZONE, "status.autoenroll.ie", "198.51.100.1")  # rec2, not the app's
    dns = DnsRecords(zone_id=ZONE, app_record_name="app.autoenroll.ie",
                     record_ids={"app": "rec0", "api": "rec1", "status": "rec2"})
    return CloudflareDnsSwitch(client_from_token(fake.token, transport=fake.transport()), dns, HOSTS)


def test_failover_moves_the_app_and_api_records_together_and_back() -> None:
    fake = FakeCloudflare()
    dns = switch(fake)
    assert dns.serving() == "primary"
    assert dns.move_to("standby") == ("Cloudflare DNS: app.autoenroll.ie -> 203.0.113.20, "
                                      "api.autoenroll.ie -> 203.0.113.20")
    assert dns.serving() == "standby"
    records = {r["id"]: r for r in fake.records[ZONE]}
    assert records["rec0"]["content"] == records["rec1"]["content"] == STANDBY
    assert records["rec0"]["proxied"] is True and records["rec2"]["content"] == "198.51.100.1"
    dns.move_to("standby")  # a resumed step changes nothing more
    assert len(fake.edits) == 2
    dns.move_to("primary")
    assert records["rec0"]["content"] == records["rec1"]["content"] == PRIMARY


def test_a_stack_without_an_api_record_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no api record id"):
        DnsRecords(zone_id=ZONE, app_record_name="a", record_ids={"app": "rec0"}).switched()


def _outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"environment": name, "public_url": "https://x.invalid", "r2_endpoint": "https://r2",
                                "buckets": {"backups": "b"}, "servers": [],
                                "connection_strings": {"main": {"direct": "postgresql://o@h/db"},
                                                       "staging": {"direct": "postgresql://o@h/db"}}}))
    monkeypatch.setenv(f"OPS_STACK_OUTPUTS_{name.upper()}", str(path))
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "s")


def test_every_failover_of_production_needs_yes_or_a_typed_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops import wiring

    # Resolving reads the recorded live database; these outputs have no bucket behind them.
    monkeypatch.setattr(wiring, "with_live_database", lambda env: env)
    runner = CliRunner()
    for name in ("staging", "production"):
        _outputs(tmp_path, monkeypatch, name)
    # Host-only too (the confirmation policy, ops/confirm.py): it moves production's traffic.
    host_only = runner.invoke(app, ["failover", "--env", "production", "--db", "none", "--json"])
    assert host_only.exit_code == 4 and "there is no terminal to ask" in host_only.output
    planned = runner.invoke(app, ["failover", "--env", "production", "--db", "latest-backup", "--plan", "--json"])
    assert planned.exit_code == 0 and json.loads(planned.stdout)["applied"] is False
    production = runner.invoke(app, ["failover", "--env", "production", "--db", "neon-pitr@2026-12-01T03:00:00Z",
                                     "--json"])
    assert production.exit_code == 4 and "there is no terminal to ask" in production.output  # --json skips nothing


def test_the_default_failover_keeps_the_database() -> None:
    runner = CliRunner()
    plan = runner.invoke(app, ["failover", "--plan", "--json"])
    assert plan.exit_code == 0 and "keep the current database" in plan.output


def test_behind_a_load_balancer_the_primaries_are_served_through_its_address() -> None:
    """With replicas > 1 the stack points DNS at the load balancer (stacks/compute.py), which fronts every
    primary: that address is where the primaries serve, a failover moves the records to the standby and a
    failback moves them back to the load balancer, not to one primary's own address (which would take
    the other primaries out of service and bypass the load balancer's health check)."""
    lb = "203.0.113.250"
    hosts = {**HOSTS, "app-2": AppHost(name="app-2", role="primary", url="http://10.0.1.12:8000",
                                       address="203.0.113.11")}
    fake = FakeCloudflare()
    fake.add_record(ZONE, "app.autoenroll.ie", lb)
    fake.add_record(ZONE, "api.autoenroll.ie", lb)
    dns = DnsRecords(zone_id=ZONE, app_record_name="app.autoenroll.ie", record_ids={"app": "rec0", "api": "rec1"})
    switch = CloudflareDnsSwitch(client_from_token(fake.token, transport=fake.transport()), dns, hosts,
                                 load_balancer_ipv4=lb)
    assert switch.serving() == "primary"
    assert switch.records() == {"app": "primary", "api": "primary"}
    switch.move_to("standby")
    assert switch.serving() == "standby"
    switch.move_to("primary")
    assert {r["content"] for r in fake.records[ZONE]} == {lb}
    # A record left at one primary's own address (the stack before its load balancer) is still the primaries'.
    fake.records[ZONE][0]["content"] = fake.records[ZONE][1]["content"] = "203.0.113.11"
    assert switch.serving() == "primary"
