"""The hosts' network and first boot, on the lab (tests/drills/lab.py), as production meets them:

- CI reaches SSH only through the rule `ops deploy --open-ssh-from` adds to the Hetzner firewall
  (the lab's stand-in, driven by the Hetzner fake's API): refused before, through during the
  deploy, refused again after; the hosts' own nftables is the role's with the stack's admin CIDRs,
  which this runner is outside of (issue 25, item 2);
- restarting nftables.service as systemd runs it (Debian's unit and the role's drop-in) leaves
  Docker's tables, so the app's container still reaches the database (item 7);
- a deploy waits for cloud-init on each host, and a host whose cloud-init failed is named (item 8).
`pytest tests/drills/test_lab_hostnet.py`, under the test-hosts lock."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ops.adapters.cloud.hetzner_firewall import DESCRIPTION_PREFIX
from stacks.data import cloudflare_ranges
from stacks.host_role import HostRoleArgs, render_user_data
from tests.drills.lab import LAB_SSH_RULE, Lab
from tests.lab.host import LabHost
from tests.lab.units import exec_lines

pytestmark = pytest.mark.drill

# What a CI runner's public address looks like: a global one (ops refuses a private one). 192.88.99.0/24
# was 6to4's relay anycast, deprecated (RFC 7526) and unused, so borrowing one here shadows nothing.
RUNNER_PUBLIC = "192.88.99.7"
DEBIAN_NFTABLES_UNIT = Path("/lib/systemd/system/nftables.service")


def ops(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env={**lab.env, **(env or {})}, capture_output=True,
                          text=True, timeout=600, check=False)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def ssh_answers(host: LabHost, config: Path) -> subprocess.CompletedProcess[str]:
    """`true` over SSH as the deploy user; a firewall drop shows as a connect timeout (exit 255)."""
    return subprocess.run(["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", host.address,
                           "true"], capture_output=True, text=True, timeout=60, check=False)


@contextlib.contextmanager
def runner_with_public_address(lab: Lab) -> Iterator[Path]:
    """This runner given RUNNER_PUBLIC on its side of each host's link, and an ssh config that connects
    from it (as a CI runner's connections leave from its public address)."""
    links = [f"{h.namespace}h" for h in lab.hosts.values()]
    config = lab.folder / "ssh_config_public"
    config.write_text(lab.ssh_config.read_text().replace("    User ", f"    BindAddress {RUNNER_PUBLIC}\n    User "))
    try:
        for link in links:
            subprocess.run(["ip", "addr", "add", f"{RUNNER_PUBLIC}/32", "dev", link], check=True, capture_output=True)
        yield config
    finally:
        for link in links:
            subprocess.run(["ip", "addr", "del", f"{RUNNER_PUBLIC}/32", "dev", link], check=False, capture_output=True)


@contextlib.contextmanager
def without_standing_ssh_rule(lab: Lab) -> Iterator[None]:
    """The Hetzner firewall as production's: SSH from the admin CIDRs only (put back after)."""
    assert lab.hetzner is not None
    lab.hetzner.set_rules(lab.firewall_id, [r for r in lab.firewall_rules if r["description"] != LAB_SSH_RULE])
    try:
        yield
    finally:
        lab.hetzner.set_rules(lab.firewall_id, lab.firewall_rules)


# --------------------------------------------------------------------------- item 2


def test_lab_the_host_firewall_is_the_roles_with_the_stacks_admin_cidrs(lab: Lab) -> None:
    from stacks.config import parse_config
    from stacks.plan import namespaced_config

    admin = parse_config(namespaced_config("staging"), "staging").compute.admin_cidrs
    for host in lab.hosts.values():
        listed = host.run_as_root(["nft", "list", "table", "inet", "host_firewall"]).stdout
        ssh_lines = [line.strip() for line in listed.splitlines() if "dport 22" in line]
        assert any(all(cidr in line for cidr in admin) for line in ssh_lines), listed
        assert host.runner_address not in "".join(ssh_lines)  # the runner is no admin here


def test_lab_ci_reaches_ssh_only_through_the_rule_open_ssh_from_adds(lab: Lab) -> None:
    assert lab.hetzner is not None
    with runner_with_public_address(lab) as config, without_standing_ssh_rule(lab):
        for host in lab.hosts.values():
            refused = ssh_answers(host, config)
            assert refused.returncode == 255 and "timed out" in refused.stderr, refused.stderr
        before = len(lab.hetzner.rule_history)

        deployed = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2", "--open-ssh-from", RUNNER_PUBLIC,
                       "--json", env={"OPS_SSH_CONFIG": str(config), "GITHUB_RUN_ID": "hostnet"})
        assert deployed.returncode == 0, deployed.stderr

        # One call put the runner's /32 on port 22, one took it out again.
        changes = lab.hetzner.rule_history[before:]
        assert len(changes) == 2
        opened = [r for r in changes[0] if r["description"] == f"{DESCRIPTION_PREFIX} run hostnet"]
        assert [(r["port"], r["source_ips"]) for r in opened] == [("22", [f"{RUNNER_PUBLIC}/32"])]
        assert not [r for r in changes[1] if RUNNER_PUBLIC in str(r["source_ips"])]
        for host in lab.hosts.values():
            closed = ssh_answers(host, config)  # closed again after the deploy
            assert closed.returncode == 255 and "timed out" in closed.stderr, closed.stderr


# --------------------------------------------------------------------------- item 7


def connects_to_database(host: LabHost, container: str) -> subprocess.CompletedProcess[str]:
    """A NEW connection from the app's container to its DATABASE_URL (an open one would survive a lost NAT)."""
    code = ("import os, psycopg; c = psycopg.connect(os.environ['DATABASE_URL'], connect_timeout=5); "
            "print(c.execute('select 1').fetchone()[0])")
    return host.docker("exec", container, "python", "-c", code, check=False, timeout=60)


@pytest.mark.skipif(not DEBIAN_NFTABLES_UNIT.exists(), reason="Debian's nftables package is not installed here")
def test_lab_restarting_nftables_leaves_the_containers_their_database(lab: Lab) -> None:
    host = lab.hosts["primary"]
    container = lab.containers("primary")[0]
    assert connects_to_database(host, container).stdout.strip() == "1"
    # The unit as systemd would run it: Debian's own, with whatever drop-in the role writes for it.
    role = yaml.safe_load(render_user_data(lab_role_args()).split("\n", 1)[1])["write_files"]
    drop_ins = [f["content"] for f in role if f["path"].startswith("/etc/systemd/system/nftables.service.d/")]
    debian = DEBIAN_NFTABLES_UNIT.read_text()
    # The host's /etc/nftables.conf is the file its firewall was loaded from (the lab shares this
    # machine's filesystem); everything else on the lines runs as written.
    conf = str(host.folder / "nftables.conf")
    for key in ("ExecStop", "ExecStart"):
        for argv in exec_lines(debian, drop_ins, key):
            done = host.run_as_root([conf if a == "/etc/nftables.conf" else a for a in argv])
            assert done.returncode == 0, f"{key} {argv}: {done.stderr}"
    tables = host.run_as_root(["nft", "list", "tables"]).stdout
    assert "inet host_firewall" in tables and "ip nat" in tables, tables  # ours back, Docker's kept
    reached = connects_to_database(host, container)
    assert reached.returncode == 0 and reached.stdout.strip() == "1", reached.stderr[-500:]
    assert lab.edge_get("/ready").status_code == 200


def lab_role_args() -> HostRoleArgs:
    return HostRoleArgs(hostname="lab", environment="staging", role="primary", site_address="app.autoenroll.ie",
                        app_image="lab", app_version="lab", admin_cidrs=("198.51.100.0/28",),
                        cloudflare_ranges=cloudflare_ranges(), ssh_public_keys=("ssh-ed25519 AAAA lab",),
                        logs_ingest_host="logs.example.com")


# --------------------------------------------------------------------------- item 8


def test_lab_a_deploy_waits_for_cloud_init_then_proceeds(lab: Lab) -> None:
    for host in lab.hosts.values():
        host.set_cloud_init("running")
        host.cloud_init_calls_file.write_text("")
    env_files = [host.folder / "etc-autoenroll" / "app.env" for host in lab.hosts.values()]

    def stamps() -> list[int | None]:
        return [f.stat().st_mtime_ns if f.exists() else None for f in env_files]

    before = stamps()
    result: dict[str, subprocess.CompletedProcess[str]] = {}
    deploy = threading.Thread(target=lambda: result.update(
        done=ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")))
    deploy.start()
    try:
        wait_for(lambda: any("status --long --wait" in h.cloud_init_calls_file.read_text()
                             for h in lab.hosts.values()), "the deploy to ask a host's cloud-init to finish")
        assert deploy.is_alive() and "done" not in result
        # Nothing reached a host meanwhile: the env files, the deploy's first write, are as they were.
        assert stamps() == before
    finally:
        for host in lab.hosts.values():
            host.set_cloud_init("done")
        deploy.join(timeout=600)
    assert result["done"].returncode == 0, result["done"].stderr
    assert all(a != b for a, b in zip(stamps(), before, strict=True))
    for host in lab.hosts.values():  # each host was waited for before it was touched
        assert "status --long --wait" in host.cloud_init_calls_file.read_text()


def test_lab_a_host_whose_cloud_init_failed_is_named(lab: Lab) -> None:
    standby = lab.hosts["standby"]
    standby.set_cloud_init("error", "('scripts_user', RuntimeError('Runparts: 1 failures in 1 attempted commands'))")
    try:
        failed = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2")
    finally:
        standby.set_cloud_init("done")
    assert failed.returncode == 7, failed.stderr
    message = " ".join(failed.stderr.split())
    assert re.search(rf"standby-host \({re.escape(standby.address)}\): cloud-init finished with status error: "
                     r"\('scripts_user', RuntimeError", message), message
    assert "firewall" not in message  # not the SSH hint: SSH worked


def test_lab_cloud_init_that_does_not_finish_in_time_is_named(lab: Lab) -> None:
    from ops.adapters.cloud.ssh_hosts import Ssh
    from ops.errors import ExternalError

    primary = lab.hosts["primary"]
    primary.set_cloud_init("running")
    try:
        with pytest.raises(ExternalError, match=rf"primary-host \({re.escape(primary.address)}\): cloud-init has not "
                                                r"finished after 2s \(status: running\)"):
            Ssh(config_file=str(lab.ssh_config)).wait_for_cloud_init("primary-host", primary.address, timeout=2)
    finally:
        primary.set_cloud_init("done")
