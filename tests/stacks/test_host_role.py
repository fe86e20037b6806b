"""The host role's cloud-init passes `cloud-init schema`; its scripts pass shellcheck; it hardens SSH
and mirrors the cloud firewall."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.data import cloudflare_ranges
from stacks.host_role import HostRoleArgs, nftables_conf, render_user_data, scripts_in

pytestmark = pytest.mark.stacks

ARGS = HostRoleArgs(
    hostname="autoenroll-staging-app-1", environment="staging", role="primary", site_address="staging.example.ie",
    app_image="ghcr.io/komplyone/autoenroll-app", app_version="1.2.3", admin_cidrs=("198.51.100.0/28",),
    cloudflare_ranges=cloudflare_ranges(), ssh_public_keys=("ssh-ed25519 AAAAC3Nza test",),
    app_env={"DATABASE_URL": "postgresql://u:pw@h/db", "REDIS_URL": "rediss://:pw@r:6379"},
    betterstack_logs_token="logs-token", logs_ingest_host="s1.eu-nbg-2.betterstackdata.com",
)


@pytest.fixture()
def user_data() -> str:
    return render_user_data(ARGS)


def test_passes_cloud_init_schema(user_data: str, tmp_path: Path) -> None:
    if shutil.which("cloud-init") is None:
        pytest.fail("cloud-init is not installed: bin/setup installs Debian's cloud-init package")
    path = tmp_path / "user-data.yaml"
    path.write_text(user_data)
    out = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_cloud_init_schema_catches_a_broken_document(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("#cloud-config\npackages: 42\nruncmd: nope\n")
    out = subprocess.run(["cloud-init", "schema", "--config-file", str(path)], capture_output=True, text=True,
                         check=False)
    assert out.returncode != 0


def test_every_script_passes_shellcheck(user_data: str, tmp_path: Path) -> None:
    scripts = scripts_in(user_data)
    assert "/usr/local/bin/autoenroll-deploy" in scripts
    for path, content in scripts.items():
        target = tmp_path / Path(path).name
        target.write_text(content)
        out = subprocess.run(["shellcheck", str(target)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{path}: {out.stdout}"


def test_sshd_is_hardened_and_root_is_disabled(user_data: str) -> None:
    doc = yaml.safe_load(user_data.split("\n", 1)[1])
    files = {f["path"]: f for f in doc["write_files"]}
    sshd = files["/etc/ssh/sshd_config.d/10-autoenroll-hardening.conf"]["content"]
    for line in ("PasswordAuthentication no", "PermitRootLogin no", "MaxAuthTries 3"):
        assert line in sshd
    assert doc["disable_root"] is True and doc["ssh_pwauth"] is False
    assert files["/etc/autoenroll/app.env"]["permissions"] == "0600"


def test_app_is_published_on_loopback_only(user_data: str) -> None:
    assert "-p 127.0.0.1:8000:8000" in user_data


def test_host_firewall_mirrors_the_cloud_one() -> None:
    conf = nftables_conf(("198.51.100.0/28",), cloudflare_ranges())
    assert "policy drop" in conf
    assert "ip saddr { 198.51.100.0/28 } tcp dport 22 accept" in conf
    assert "tcp dport { 80, 443 } accept" in conf
    assert "5432" not in conf and "6379" not in conf
    assert "flush ruleset" not in conf  # Docker's own chains must survive a reload


def test_caddyfile_shipped_is_the_repositorys(user_data: str) -> None:
    from stacks.host_role import CADDYFILE

    doc = yaml.safe_load(user_data.split("\n", 1)[1])
    caddy = next(f for f in doc["write_files"] if f["path"] == "/etc/caddy/Caddyfile")
    assert caddy["content"] == CADDYFILE.read_text()


def test_cloudflare_ranges_file_is_dated_and_fresh() -> None:
    from datetime import date

    from stacks.data import checked_on

    age = (date.today() - checked_on("cloudflare_ips")).days
    assert age >= 0
    if age > 730:
        pytest.fail(f"stacks/data/cloudflare_ips.json was checked {age} days ago: re-check it against the source")
