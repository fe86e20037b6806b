"""The host role's cloud-init passes `cloud-init schema`; its scripts pass shellcheck; it hardens SSH
and backs the cloud firewall (SSH rate-limited per source; a stop of nftables removes its table only)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from stacks.data import cloudflare_ranges
from stacks.host_role import (
    NFT_TABLE,
    NFTABLES_DROP_IN_PATH,
    SSH_RATE,
    HostRoleArgs,
    nftables_conf,
    render_user_data,
    scripts_in,
)
from tests.lab.units import exec_lines

pytestmark = pytest.mark.stacks

ARGS = HostRoleArgs(
    hostname="autoenroll-staging-app-1", environment="staging", role="primary", site_address="staging.example.ie",
    app_image="ghcr.io/komplyone/autoenroll-app", app_version="1.2.3", admin_cidrs=("198.51.100.0/28",),
    cloudflare_ranges=cloudflare_ranges(), ssh_public_keys=("ssh-ed25519 AAAAC3Nza test",),
    logs_ingest_host="s1.eu-nbg-2.betterstackdata.com",
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


def test_app_containers_are_published_on_loopback_only(user_data: str) -> None:
    script = scripts_in(user_data)["/usr/local/bin/autoenroll-deploy"]
    assert '-p "127.0.0.1:$port:8000"' in script and "--restart unless-stopped" in script
    # Blue/green is two containers, not a unit restarted: systemctl only in the root `vector-env` verb.
    verbs = script.split("\n  vector-env)\n")
    assert len(verbs) == 2 and "systemctl" not in verbs[0].split('systemctl="${SYSTEMCTL:-systemctl}"')[1]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_no_app_secret_reaches_the_user_data(stack: str, request: pytest.FixtureRequest) -> None:
    """Every server's rendered cloud-init, grepped for every app secret the stack holds: the
    secrets reach the host's env file over SSH at deploy time (ops deploy), not through
    user data, which Hetzner's metadata service serves to anything on the server."""
    from autoenroll.contract import SECRET_ENV_VARS
    from stacks.plan import SENTINEL, Plan

    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    secrets = {name: plan.outputs["app_env"][name] for name in SECRET_ENV_VARS}
    assert all(SENTINEL in value for value in secrets.values())  # under the plan every secret is a sentinel
    for server, user_data in _servers_user_data(plan).items():
        assert user_data.startswith("#cloud-config")
        leaked = [name for name, value in secrets.items() if value in user_data]
        assert not leaked, f"{server}: user data carries {leaked}"
        paths = [f["path"] for f in yaml.safe_load(user_data.split("\n", 1)[1])["write_files"]]
        assert not [p for p in paths if "app.env" in p]


def test_host_firewall_backs_the_cloud_one() -> None:
    conf = nftables_conf(("198.51.100.0/28",), cloudflare_ranges())
    assert "policy drop" in conf
    assert "ip saddr { 198.51.100.0/28 } tcp dport 22 accept" in conf
    # Any other source (a CI runner the Hetzner firewall admitted for one run) only under a per-source limit.
    ssh = [line.strip() for line in conf.splitlines() if "dport 22" in line and "198.51.100.0/28" not in line]
    assert ssh == [f"tcp dport 22 ct state new add @ssh_sources_v4 {{ ip saddr limit rate {SSH_RATE} }} accept",
                   f"tcp dport 22 ct state new add @ssh_sources_v6 {{ ip6 saddr limit rate {SSH_RATE} }} accept"]
    assert "tcp dport { 80, 443 } accept" in conf
    assert "5432" not in conf and "6379" not in conf
    assert "flush ruleset" not in conf  # Docker's own chains must survive a reload


DEBIAN_NFTABLES_UNIT = Path("/lib/systemd/system/nftables.service")


@pytest.mark.skipif(not DEBIAN_NFTABLES_UNIT.exists(), reason="Debian's nftables package is not installed here")
def test_stopping_nftables_removes_only_the_roles_table(user_data: str) -> None:
    """Debian's own unit (this machine's package, as the hosts get it) stops with `nft flush ruleset`,
    Docker's tables included; with the role's drop-in the stop removes the role's table only."""
    debian = DEBIAN_NFTABLES_UNIT.read_text()
    assert exec_lines(debian, [], "ExecStop") == [["/usr/sbin/nft", "flush", "ruleset"]]
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data.split("\n", 1)[1])["write_files"]}
    drop_in = files[NFTABLES_DROP_IN_PATH]
    assert NFTABLES_DROP_IN_PATH.startswith("/etc/systemd/system/nftables.service.d/")
    assert exec_lines(debian, [drop_in], "ExecStop") == [
        ["/usr/sbin/nft", f"table inet {NFT_TABLE}; delete table inet {NFT_TABLE}"]]
    # Start and reload load the role's file, which replaces its own table and flushes nothing.
    for key in ("ExecStart", "ExecReload"):
        assert exec_lines(debian, [drop_in], key) == [["/usr/sbin/nft", "-f", "/etc/nftables.conf"]]
    assert f"table inet {NFT_TABLE} {{" in files["/etc/nftables.conf"]
    assert "flush" not in files["/etc/nftables.conf"]


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


def _servers_user_data(plan: object) -> dict[str, str]:
    from stacks.plan import Plan

    assert isinstance(plan, Plan)
    found = {}
    for server in (r for r in plan.resources if r.type == "hcloud:index/server:Server"):
        raw = server.props.get("user_data") or server.props["userData"]
        found[server.name] = str(raw["value"] if isinstance(raw, dict) else raw)
    assert found
    return found


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_logs_token_travels_as_a_secret_output_not_in_user_data(stack: str,
                                                                    request: pytest.FixtureRequest) -> None:
    """User data is served by Hetzner's metadata service to any process on the server (containers
    included) and, with ignore_changes, never updated: the BetterStack token reaches the host's
    Vector env file over SSH at deploy time, from the stack output `betterstack_logs_token`."""
    from stacks.plan import Plan, secret_sentinel

    plan: Plan = request.getfixturevalue(f"{stack}_plan")
    token = secret_sentinel("betterstackLogsToken")
    for name, user_data in _servers_user_data(plan).items():
        assert token not in user_data, f"{name}: user data carries the BetterStack logs token"
        paths = [f["path"] for f in yaml.safe_load(user_data.split("\n", 1)[1])["write_files"]]
        assert "/etc/vector/vector.env" not in paths, f"{name}: user data writes the Vector env file"
    assert plan.outputs.get("betterstack_logs_token") == token


# Debian 12's package for each command the role (and `ops` over SSH) runs on a host, as `dpkg -S`
# answers on Debian 12. Packages of priority required/important are on every Debian image (and the
# image must have sshd: it is how we reach the host); every other one must be in the role's list.
COMMAND_PACKAGES = {
    "sudo": "sudo", "docker": "docker.io", "caddy": "caddy", "nft": "nftables", "curl": "curl",
    "systemctl": "systemd", "install": "coreutils", "sshd": "openssh-server", "mktemp": "coreutils",
    "sed": "sed", "cmp": "diffutils", "unattended-upgrade": "unattended-upgrades",
}
IN_EVERY_IMAGE = {"systemd", "coreutils", "sed", "diffutils", "openssh-server"}


def test_the_package_list_holds_every_command_the_role_runs(user_data: str) -> None:
    """Every root verb runs through `sudo -n` (ops.adapters.cloud.ssh_hosts), the deploy script calls
    docker and curl, the units docker, the runcmd nft and systemctl: each command's package is
    installed by the role unless every Debian image has it."""
    import re

    from ops.adapters.cloud.ssh_hosts import DEFAULT_ROOT_SCRIPT

    doc = yaml.safe_load(user_data.split("\n", 1)[1])
    used = {Path(DEFAULT_ROOT_SCRIPT[0]).name}
    used |= {Path(argv[0]).name for argv in doc["runcmd"]}
    rule = doc["users"][0]["sudo"].split("NOPASSWD:", 1)[1]
    used |= {Path(entry.split()[0]).name for entry in rule.split(",")}
    for item in doc["write_files"]:
        content = str(item["content"])
        used |= {Path(m).name for m in re.findall(r"^Exec\w+=-?(\S+)", content, flags=re.M)}
        if content.startswith("#!"):
            used.add(Path(content.split()[0].removeprefix("#!")).name)
    script = scripts_in(user_data)["/usr/local/bin/autoenroll-deploy"]
    used |= {c for c in COMMAND_PACKAGES if re.search(rf"(^|[\s;|&(\"]){re.escape(c)}\s", script, flags=re.M)}
    used -= {"sh", "autoenroll-deploy"}  # /bin/sh is dash (required); the deploy script is the role's own
    unknown = sorted(used - set(COMMAND_PACKAGES))
    assert not unknown, f"commands with no known Debian package here: {unknown} (add them to COMMAND_PACKAGES)"
    missing = sorted({COMMAND_PACKAGES[c] for c in used} - set(doc["packages"]) - IN_EVERY_IMAGE)
    assert not missing, f"the role runs commands from packages it does not install: {missing}"
    assert "sudo" in used and "docker" in used and "curl" in used  # the scan found what the role does


def test_the_user_data_fits_hetzners_limit_and_ships_the_deploy_script_without_its_comments() -> None:
    """Hetzner refuses user data over 32 KiB (its API's user_data limit): every stack's hosts fit,
    and the deploy script they get runs the same code as the repository's (sh -n parses it, and its
    non-comment lines are the same, in order)."""
    from stacks.host_role import DEPLOY_SCRIPT, USER_DATA_LIMIT, shipped_script

    # The committed plan snapshots hold every server's user-data size, and test_snapshot holds them to
    # the program: one check covers both stacks as their config files really are.
    for stack in ("staging", "production"):
        plan = json.loads((Path(__file__).parent / "snapshots" / f"{stack}.json").read_text())
        sizes = [int(m) for m in re.findall(r'"userData": \{\s*"bytes": (\d+)', json.dumps(plan, indent=2))]
        assert sizes and max(sizes) <= USER_DATA_LIMIT, f"{stack}: user data of {max(sizes)} bytes"
    assert len(render_user_data(ARGS).encode()) <= USER_DATA_LIMIT
    shipped = shipped_script(DEPLOY_SCRIPT)
    assert shipped.startswith(DEPLOY_SCRIPT.split("\n", 1)[0] + "\n")
    code = [line for line in DEPLOY_SCRIPT.splitlines()[1:] if not line.lstrip().startswith("#")]
    assert shipped.splitlines()[2:] == code and len(shipped) < len(DEPLOY_SCRIPT)
    assert subprocess.run(["sh", "-n"], input=shipped, text=True, check=False).returncode == 0  # dash, as on Debian
