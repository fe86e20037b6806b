"""The host role: cloud-init user data that turns a fresh Debian 12 server into an app host.

The app runs as containers started by the role's deploy script (stacks/host/autoenroll-deploy),
which `ops deploy` drives over SSH, published on loopback only; the app's secrets reach the
host's env file that way too, at deploy time, never through this user data. Caddy, with
the repository's own Caddyfile, terminates TLS in front of it; nftables mirrors the Hetzner
firewall (80/443 from Cloudflare only, SSH from admin CIDRs only); sshd is hardened;
unattended security upgrades are on; Vector (as a pinned container) ships the journal to
BetterStack. `render_user_data` is pure: plain values in, YAML text out, so it is checked
by `cloud-init schema` and every script it carries by shellcheck.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CADDYFILE = REPO_ROOT / "app" / "Caddyfile"
VECTOR_IMAGE = "timberio/vector:0.43.1-debian"
APP_PORT = 8000
DEPLOY_USER = "deploy"


@dataclass(frozen=True)
class HostRoleArgs:
    hostname: str
    environment: str
    role: str  # primary | standby
    site_address: str  # e.g. app.autoenroll.ie
    app_image: str
    app_version: str
    admin_cidrs: tuple[str, ...]
    cloudflare_ranges: tuple[str, ...]
    ssh_public_keys: tuple[str, ...]
    betterstack_logs_token: str


def nftables_conf(admin_cidrs: tuple[str, ...], cloudflare_ranges: tuple[str, ...]) -> str:
    """Host firewall in its own table (Docker's iptables-nft chains are left alone)."""
    v4 = [c for c in cloudflare_ranges if ":" not in c]
    v6 = [c for c in cloudflare_ranges if ":" in c]
    admin4 = [c for c in admin_cidrs if ":" not in c]
    admin6 = [c for c in admin_cidrs if ":" in c]

    def elements(items: list[str]) -> str:
        return "{ " + ", ".join(items) + " }"

    lines = [
        "#!/usr/sbin/nft -f",
        "# Mirrors the Hetzner cloud firewall: defence in depth if one of them is misconfigured.",
        "table inet host_firewall",
        "delete table inet host_firewall",
        "table inet host_firewall {",
        "  chain input {",
        "    type filter hook input priority filter; policy drop;",
        "    iif lo accept",
        "    ct state established,related accept",
        "    ct state invalid drop",
        "    meta l4proto { icmp, ipv6-icmp } accept",
    ]
    if admin4:
        lines.append(f"    ip saddr {elements(admin4)} tcp dport 22 accept")
    if admin6:
        lines.append(f"    ip6 saddr {elements(admin6)} tcp dport 22 accept")
    if v4:
        lines.append(f"    ip saddr {elements(v4)} tcp dport {{ 80, 443 }} accept")
    if v6:
        lines.append(f"    ip6 saddr {elements(v6)} tcp dport {{ 80, 443 }} accept")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


SSHD_HARDENING = """\
# Keys only, no root, few tries (host role).
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PubkeyAuthentication yes
MaxAuthTries 3
LoginGraceTime 30
X11Forwarding no
AllowUsers deploy
"""

AUTO_UPGRADES = """\
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
"""

# `ops deploy` runs it over SSH, one verb per step (see the script's header).
DEPLOY_SCRIPT = (Path(__file__).resolve().parent / "host" / "autoenroll-deploy").read_text()


def vector_unit() -> str:
    return f"""\
[Unit]
Description=Vector: ships the journal to BetterStack
After=docker.service
Requires=docker.service

[Service]
ExecStartPre=-/usr/bin/docker rm -f vector
ExecStart=/usr/bin/docker run --rm --name vector --env-file /etc/vector/vector.env \\
    -v /etc/vector/vector.yaml:/etc/vector/vector.yaml:ro -v /var/log/journal:/var/log/journal:ro \\
    -v /etc/machine-id:/etc/machine-id:ro {VECTOR_IMAGE} --config /etc/vector/vector.yaml
Restart=always

[Install]
WantedBy=multi-user.target
"""


VECTOR_CONFIG = """\
sources:
  journal:
    type: journald
    journal_directory: /var/log/journal
sinks:
  betterstack:
    type: http
    inputs: [journal]
    uri: https://in.logs.betterstack.com
    encoding:
      codec: json
    auth:
      strategy: bearer
      token: "${BETTERSTACK_LOGS_TOKEN}"
"""


def caddy_env(args: HostRoleArgs) -> str:
    return (
        "[Service]\n"
        f"Environment=SITE_ADDRESS={args.site_address}\n"
        f"Environment=APP_UPSTREAMS=127.0.0.1:{APP_PORT}\n"
        "Environment=CADDY_ADMIN=localhost:2019\n"
    )


def env_file(values: dict[str, str]) -> str:
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"app env {key}: a value must not contain a newline")
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()))


def render_user_data(args: HostRoleArgs) -> str:
    """The `#cloud-config` document for one server."""
    files = [
        {"path": "/etc/autoenroll/image", "permissions": "0644",
         "content": f"APP_IMAGE={args.app_image}\nAPP_VERSION={args.app_version}\n"},
        {"path": "/usr/local/bin/autoenroll-deploy", "permissions": "0755", "content": DEPLOY_SCRIPT},
        {"path": "/etc/caddy/Caddyfile", "permissions": "0644", "content": CADDYFILE.read_text()},
        {"path": "/etc/systemd/system/caddy.service.d/autoenroll.conf", "permissions": "0644",
         "content": caddy_env(args)},
        {"path": "/etc/nftables.conf", "permissions": "0755",
         "content": nftables_conf(args.admin_cidrs, args.cloudflare_ranges)},
        {"path": "/etc/ssh/sshd_config.d/10-autoenroll-hardening.conf", "permissions": "0644",
         "content": SSHD_HARDENING},
        {"path": "/etc/apt/apt.conf.d/20auto-upgrades", "permissions": "0644", "content": AUTO_UPGRADES},
        {"path": "/etc/vector/vector.yaml", "permissions": "0644", "content": VECTOR_CONFIG},
        {"path": "/etc/vector/vector.env", "permissions": "0600",
         "content": env_file({"BETTERSTACK_LOGS_TOKEN": args.betterstack_logs_token})},
        {"path": "/etc/systemd/system/vector.service", "permissions": "0644", "content": vector_unit()},
    ]
    document = {
        "hostname": args.hostname,
        "disable_root": True,
        "ssh_pwauth": False,
        "users": [{
            "name": DEPLOY_USER, "groups": ["docker"], "shell": "/bin/bash", "lock_passwd": True,
            # Deploys, plus the two read-only views tests/infra needs as root (effective sshd
            # settings and the firewall ruleset); sudoers matches these arguments exactly.
            "sudo": "ALL=(root) NOPASSWD: /usr/local/bin/autoenroll-deploy, /usr/bin/systemctl, "
                    "/usr/sbin/sshd -T, /usr/sbin/nft -j list ruleset",
            "ssh_authorized_keys": list(args.ssh_public_keys),
        }],
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "caddy", "nftables", "unattended-upgrades", "curl"],
        "write_files": files,
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "nftables.service"],
            ["nft", "-f", "/etc/nftables.conf"],
            ["systemctl", "restart", "ssh.service"],
            ["systemctl", "enable", "--now", "docker.service"],
            # The app's env file and its first container come with the first `ops deploy`.
            ["install", "-d", "-o", DEPLOY_USER, "-g", DEPLOY_USER, "-m", "0750", "/etc/autoenroll"],
            ["systemctl", "enable", "--now", "vector.service"],
            ["systemctl", "restart", "caddy.service"],
        ],
    }
    rendered: str = yaml.safe_dump(document, sort_keys=False, width=1000)
    return "#cloud-config\n" + rendered


def scripts_in(user_data: str) -> dict[str, str]:
    """Every file in the user data that is a shell script (by its shebang), for shellcheck."""
    document: dict[str, Any] = yaml.safe_load(user_data.split("\n", 1)[1])
    return {str(f["path"]): str(f["content"]) for f in document["write_files"]
            if str(f["content"]).startswith(("#!/bin/sh", "#!/bin/bash", "#!/usr/bin/env bash"))}
