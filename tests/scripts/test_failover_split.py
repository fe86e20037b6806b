"""A switch that stops between the app and api records (issue 31, item 3): every edit is journaled
before and after, a record that fails after the SDK's retries puts the moved one back, and `ops failover
status` reads every record the switch moves and names a split with the command that finishes it.
Cloudflare faked at the HTTP transport (tests/cloudflare_fake.py), answering 503 on the api record only."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from ops.adapters.cloud.cloudflare_dns import CloudflareDnsSwitch, client_from_token
from ops.environment import DnsRecords
from ops.errors import ExternalError
from ops.failover import usecase
from tests.cloudflare_fake import FakeCloudflare
from tests.scripts.test_backup_units import MemoryStore
from tests.scripts.test_cloud_failover_units import HOSTS, PRIMARY, STANDBY, ZONE
from tests.scripts.test_hosts_lock import Live, Untouched

pytestmark = pytest.mark.unit


class Store(MemoryStore):
    def list_keys(self, prefix: str) -> list[str]:
        return [k for k in self.objects if k.startswith(prefix)]


def cloudflare() -> tuple[FakeCloudflare, CloudflareDnsSwitch]:
    fake = FakeCloudflare()
    fake.add_record(ZONE, "app.autoenroll.ie", PRIMARY)  # rec0
    fake.add_record(ZONE, "api.autoenroll.ie", PRIMARY)  # rec1
    dns = DnsRecords(zone_id=ZONE, app_record_name="app.autoenroll.ie", record_ids={"app": "rec0", "api": "rec1"})
    return fake, CloudflareDnsSwitch(client_from_token(fake.token, transport=fake.transport()), dns, HOSTS)


def contents(fake: FakeCloudflare) -> dict[str, str]:
    return {r["name"].split(".")[0]: r["content"] for r in fake.records[ZONE]}


def status(store: Store, dns: CloudflareDnsSwitch) -> dict[str, Any]:
    return usecase.status("production", store, Live(), home_database="main", serving=dns.serving,
                          serving_source="Cloudflare DNS", records=dns.records)


def run_failover(store: Store, dns: CloudflareDnsSwitch) -> None:
    usecase.failover("production", Untouched(), dns, Live(), store, db_mode="none",  # type: ignore[arg-type]
                     watch_seconds=1, hosts_wait=0)


def test_cloudflare_failing_the_api_record_puts_app_back_and_status_says_in_progress() -> None:
    fake, dns = cloudflare()
    store = Store()
    fake.failing["rec1"] = (503, None)  # every try, past the SDK's retries
    with pytest.raises(ExternalError) as raised:
        run_failover(store, dns)
    assert "(api)" in raised.value.message and "app.autoenroll.ie put back to 203.0.113.10: nothing moved" \
        in raised.value.message
    assert contents(fake) == {"app": PRIMARY, "api": PRIMARY}
    journal = json.loads(store.objects["_ops/production/failover.journal.json"])
    assert journal["records"]["app"]["state"] == "put back" and journal["records"]["api"]["state"] == "editing"
    seen = status(store, dns)
    assert seen["state"] == "in-progress" and not seen["split"]
    assert seen["resume"] == "ops failover --env production --db none"


def test_a_switch_that_could_not_put_app_back_is_reported_split_with_the_command_that_finishes_it() -> None:
    fake, dns = cloudflare()
    store = Store()
    fake.failing["rec1"] = (503, None)
    real_edit = dns._edit

    def app_edit_only_once(key: str, record_id: str, name: str, content: str, proxied: bool) -> None:
        real_edit(key, record_id, name, content, proxied)
        fake.failing["rec0"] = (429, None)  # then Cloudflare refuses app's edit back as well

    dns._edit = app_edit_only_once  # type: ignore[method-assign]
    with pytest.raises(ExternalError, match="the records are SPLIT"):
        run_failover(store, dns)
    assert contents(fake) == {"app": STANDBY, "api": PRIMARY}
    seen = status(store, dns)
    assert seen["split"] and seen["records"] == {"app": "standby", "api": "primary"}
    assert seen["summary"].startswith("SPLIT DNS: app -> standby, api -> primary (Cloudflare DNS)")
    assert "finish it with: ops failover --env production --db none" in seen["summary"]
    assert "ops failback" not in seen["summary"]  # the wrong advice the issue saw


def test_a_ctrl_c_between_the_two_records_is_journaled_and_status_names_the_split() -> None:
    fake, dns = cloudflare()
    store = Store()
    real_edit = dns._edit

    def interrupted_after_app(key: str, record_id: str, name: str, content: str, proxied: bool) -> None:
        real_edit(key, record_id, name, content, proxied)
        if key == "app":
            os.kill(os.getpid(), signal.SIGINT)

    dns._edit = interrupted_after_app  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        run_failover(store, dns)
    journal = json.loads(store.objects["_ops/production/failover.journal.json"])
    assert journal["done"] == [] and journal["records"]["app"]["state"] == "editing"
    seen = status(store, dns)
    assert seen["split"] and seen["state"] == "in-progress"
    assert "SPLIT DNS: app -> standby, api -> primary" in seen["summary"]
    assert seen["finish"] == "ops failover --env production --db none"
    dns._edit = real_edit  # type: ignore[method-assign]
    # The command it names finishes the switch (then stops at the redeploy, which this test does not reach).
    with pytest.raises(AssertionError, match="redeploy was called"):
        run_failover(store, dns)
    assert contents(fake) == {"app": STANDBY, "api": STANDBY}


def test_records_split_outside_any_run_are_reported_with_the_move_app_made() -> None:
    fake, dns = cloudflare()
    store = Store()
    fake.records[ZONE][1]["content"] = STANDBY  # api moved by hand, app left on the primary
    seen = status(store, dns)
    assert seen["state"] == "split" and seen["resume"] == "ops failback --env production"
