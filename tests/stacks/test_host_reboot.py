"""The host role's side of reboots: unattended-upgrades never reboots by itself, the apt hook marks
libc and OpenSSL updates in the same flag as the kernel's own hook, the deploy script's `reboot` verb
reboots only when that flag is there, and sudoers lets the deploy user run exactly that verb."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.host_role import (
    APT_REBOOT_HOOK,
    AUTO_UPGRADES,
    DEPLOY_SCRIPT,
    DEPLOY_SCRIPT_PATH,
    REBOOT_FLAG_HOOK,
    REBOOT_FLAG_HOOK_PATH,
    HostRoleArgs,
    render_user_data,
)

pytestmark = pytest.mark.unit


def _user_data() -> dict[str, object]:
    args = HostRoleArgs(hostname="h", environment="staging", role="standby", site_address="app.example",
                        app_image="ghcr.io/x/app", app_version="1.0.0", admin_cidrs=("192.0.2.0/24",),
                        cloudflare_ranges=("198.51.100.0/24",), ssh_public_keys=("ssh-ed25519 AAAA x",),
                        logs_ingest_host="s1.eu.betterstackdata.com")
    document: dict[str, object] = yaml.safe_load(render_user_data(args).split("\n", 1)[1])
    return document


def test_the_role_installs_the_hook_and_lets_the_deploy_user_run_only_the_reboot_verb_as_root() -> None:
    doc = _user_data()
    files = {f["path"]: f for f in doc["write_files"]}  # type: ignore[attr-defined]
    assert files[REBOOT_FLAG_HOOK_PATH]["permissions"] == "0755"
    assert REBOOT_FLAG_HOOK_PATH in files["/etc/apt/apt.conf.d/51autoenroll-reboot-flag"]["content"]
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in files["/etc/apt/apt.conf.d/20auto-upgrades"]["content"]
    rule = doc["users"][0]["sudo"].split("NOPASSWD:", 1)[1]  # type: ignore[index]
    assert f"{DEPLOY_SCRIPT_PATH} reboot" in [entry.strip() for entry in rule.split(",")]


@pytest.mark.skipif(shutil.which("apt-config") is None, reason="apt-config (Debian's apt) is not installed")
def test_apt_reads_the_snippets(tmp_path: Path) -> None:
    """apt parses both files as the host's apt would (a syntax error would break every upgrade)."""
    for name, text in (("20auto-upgrades", AUTO_UPGRADES), ("51autoenroll-reboot-flag", APT_REBOOT_HOOK)):
        (tmp_path / name).write_text(text)
        out = subprocess.run(["apt-config", "-c", str(tmp_path / name), "dump"], capture_output=True, text=True,
                             check=True).stdout
        assert ("Unattended-Upgrade::Automatic-Reboot \"false\"" in out if name == "20auto-upgrades"
                else f'DPkg::Pre-Install-Pkgs:: "{REBOOT_FLAG_HOOK_PATH}"' in out), out


def test_the_apt_hook_marks_libc_and_openssl_not_other_packages(tmp_path: Path) -> None:
    flag = tmp_path / "reboot-required"
    hook = tmp_path / "hook"
    hook.write_text(REBOOT_FLAG_HOOK.replace("/var/run/reboot-required", str(flag)))
    debs = "/var/cache/apt/archives/caddy_2.6.2-5+deb12u1_amd64.deb\n"
    subprocess.run(["sh", str(hook)], input=debs, text=True, check=True)
    assert not flag.exists()
    debs += ("/var/cache/apt/archives/libc6_2.36-9+deb12u10_amd64.deb\n"
             "/var/cache/apt/archives/libssl3_3.0.16-1~deb12u1_amd64.deb\n")
    subprocess.run(["sh", str(hook)], input=debs, text=True, check=True)
    subprocess.run(["sh", str(hook)], input=debs, text=True, check=True)  # a second upgrade lists them once
    assert flag.exists() and (tmp_path / "reboot-required.pkgs").read_text().split() == ["libc6", "libssl3"]


def _verb(tmp_path: Path, *verb: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "autoenroll-deploy"
    script.write_text(DEPLOY_SCRIPT)
    env = {"PATH": os.environ["PATH"], "REBOOT_REQUIRED_FILE": str(tmp_path / "reboot-required"),
           "SYSTEMCTL": str(tmp_path / "systemctl"), "LOGGER": "true", "AUTOENROLL_ROOT": str(tmp_path)}
    (tmp_path / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "systemctl.log"}\n')
    (tmp_path / "systemctl").chmod(0o755)
    return subprocess.run(["sh", str(script), *verb], env=env, capture_output=True, text=True, check=False)


def test_the_deploy_script_reboots_only_when_the_flag_is_there(tmp_path: Path) -> None:
    assert _verb(tmp_path, "reboot-required").stdout.strip() == "no"
    said = _verb(tmp_path, "reboot")
    assert said.returncode == 0 and said.stdout.strip() == "not required"
    assert not (tmp_path / "systemctl.log").exists()
    (tmp_path / "reboot-required").touch()
    (tmp_path / "reboot-required.pkgs").write_text("libc6\nlinux-image-6.1.0-30-amd64\nlibc6\n")
    assert _verb(tmp_path, "reboot-required").stdout.split() == ["yes", "libc6", "linux-image-6.1.0-30-amd64"]
    said = _verb(tmp_path, "reboot")
    assert said.returncode == 0 and said.stdout.strip() == "rebooting"
    assert (tmp_path / "systemctl.log").read_text().split() == ["reboot"]
