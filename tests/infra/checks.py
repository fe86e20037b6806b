"""The host role's checks: each takes a Target, returns its evidence, raises AssertionError if broken.

They are plain functions (not tests) so that test_host_role.py runs them against the host
and test_checks_catch_breakage.py proves each one fails when its condition is broken.
`server_only` names why a check cannot be answered on the local test host.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from stacks.data import cloudflare_ranges
from stacks.host_role import APP_PORT, DEPLOY_USER, PACKAGES
from tests.infra.target import NFT_DUMP, Target
from tests.infra.testhost import port_open

PUBLIC_PORTS = {22, 80, 443}
DATA_PORTS = {5432, 6379}
SHARED_MACHINE = ("the local test host shares this machine's filesystem, packages and init; "
                  "only a VM built from the host role's cloud-init can answer this")


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Target], str]
    server_only: str | None = None


# --------------------------------------------------------------------------- sockets


def listeners(target: Target) -> list[tuple[str, int]]:
    """TCP listening sockets on the host as (address, port); a wildcard address is '*'."""
    result = target.host.run("ss -H -tln")
    assert result.rc == 0, f"ss failed: {result.stderr}"
    found = []
    for line in result.stdout.splitlines():
        local = line.split()[3]
        address, port = local.rsplit(":", 1)
        address = address.strip("[]").split("%")[0]
        found.append(("*" if address in ("0.0.0.0", "::", "*") else address, int(port)))
    return found


def _is_internal(address: str) -> bool:
    """Loopback or a private network (Hetzner's private network is 10.0.0.0/16)."""
    if address == "*":
        return False
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_private


def check_web_ports_public(target: Target) -> str:
    found = listeners(target)
    for port in (80, 443):
        assert ("*", port) in found, f"nothing listens on all addresses on port {port}: {sorted(found)}"
    return "80 and 443 listen on all addresses"


def check_app_port_internal(target: Target) -> str:
    on_app_port = [a for a, p in listeners(target) if p == APP_PORT]
    assert on_app_port, f"nothing listens on the app's port {APP_PORT}"
    exposed = [a for a in on_app_port if not _is_internal(a)]
    assert not exposed, f"the app's port {APP_PORT} listens on {exposed}: only loopback or the private network"
    return f"app port {APP_PORT} on {on_app_port}"


def check_no_data_ports(target: Target) -> str:
    open_data = [(a, p) for a, p in listeners(target) if p in DATA_PORTS]
    assert not open_data, f"database/cache ports listen on the host: {open_data} (Neon and Upstash are remote)"
    return "nothing on 5432 or 6379"


def check_only_expected_public_listeners(target: Target) -> str:
    public = sorted({p for a, p in listeners(target) if not _is_internal(a)})
    unexpected = [p for p in public if p not in PUBLIC_PORTS]
    assert not unexpected, f"ports listening beyond loopback/private besides 22, 80, 443: {unexpected}"
    return f"public listeners: {public}"


# --------------------------------------------------------------------------- sshd


def sshd_settings(target: Target) -> dict[str, str]:
    dumped = target.run_as_root(list(target.sshd_dump))
    assert dumped.returncode == 0, f"`{shlex.join(target.sshd_dump)}` failed: {dumped.stderr.strip()}"
    return dict(line.split(" ", 1) for line in dumped.stdout.splitlines() if " " in line)


def check_sshd_settings(target: Target) -> str:
    settings = sshd_settings(target)
    expected = {"passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no",
                "pubkeyauthentication": "yes", "x11forwarding": "no", "allowusers": DEPLOY_USER}
    wrong = {k: settings.get(k) for k, v in expected.items() if settings.get(k) != v}
    assert not wrong, f"sshd settings differ from the host role: {wrong} (expected {expected})"
    tries = int(settings.get("maxauthtries", "6"))
    assert tries <= 3, f"sshd MaxAuthTries is {tries}; the host role allows at most 3"
    return f"sshd: {', '.join(f'{k} {settings[k]}' for k in expected)}, maxauthtries {tries}"


def check_ssh_offers_only_keys(target: Target) -> str:
    # Ask for no method at all: sshd answers with the list of methods it would accept.
    probe = target.ssh_from_runner("-o", "PreferredAuthentications=none", "-o", "PubkeyAuthentication=no")
    offered = re.search(r"Permission denied \(([^)]*)\)", probe.stderr)
    assert offered, f"no authentication answer from sshd (exit {probe.returncode}): {probe.stderr.strip()}"
    methods = offered.group(1).split(",")
    assert methods == ["publickey"], f"sshd offers {methods}; only publickey is allowed"
    return "sshd offers only publickey"


def check_root_login_refused(target: Target) -> str:
    probe = target.ssh_from_runner(user="root")
    assert probe.returncode == 255 and "Permission denied" in probe.stderr, (
        f"root login was not refused by sshd (exit {probe.returncode}): {probe.stderr.strip() or 'logged in'}")
    return "root: Permission denied"


# --------------------------------------------------------------------------- firewall


def _rules(ruleset: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    items = ruleset["nftables"]
    chains = [i["chain"] for i in items if "chain" in i and i["chain"]["table"] == "host_firewall"]
    rules = [i["rule"] for i in items if "rule" in i and i["rule"]["table"] == "host_firewall"]
    return chains, rules


def _matches(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule's matches keyed by what they look at: 'tcp dport', 'ip saddr', 'meta iif', 'ct state'."""
    found: dict[str, Any] = {}
    for expr in rule["expr"]:
        match = expr.get("match")
        if not match:
            continue
        left = match["left"]
        if "payload" in left:
            found[f"{left['payload']['protocol']} {left['payload']['field']}"] = match["right"]
        elif "meta" in left:
            found[f"meta {left['meta']['key']}"] = match["right"]
        elif "ct" in left:
            found[f"ct {left['ct']['key']}"] = match["right"]
    return found


def _values(right: Any) -> list[Any]:
    if isinstance(right, dict) and "set" in right:
        return list(right["set"])
    return list(right) if isinstance(right, list) else [right]


def _address_span(element: Any) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    if isinstance(element, dict) and "prefix" in element:
        network = ipaddress.ip_network(f"{element['prefix']['addr']}/{element['prefix']['len']}")
        return network[0], network[-1]
    if isinstance(element, dict) and "range" in element:
        return ipaddress.ip_address(element["range"][0]), ipaddress.ip_address(element["range"][1])
    address = ipaddress.ip_address(element)
    return address, address


def _cloudflare_spans() -> list[tuple[Any, Any]]:
    """Cloudflare's ranges as merged (first, last) spans: nft merges adjacent prefixes into one range."""
    networks = sorted((ipaddress.ip_network(r) for r in cloudflare_ranges()), key=lambda n: (n.version, n[0]))
    spans: list[tuple[Any, Any]] = []
    for network in networks:
        first, last = network[0], network[-1]
        if spans and spans[-1][1].version == first.version and int(first) <= int(spans[-1][1]) + 1:
            spans[-1] = (spans[-1][0], max(spans[-1][1], last))
        else:
            spans.append((first, last))
    return spans


def _outside_cloudflare(elements: Iterable[Any]) -> list[str]:
    """Source addresses of a web rule that fall outside Cloudflare's published ranges."""
    spans = _cloudflare_spans()
    outside = []
    for element in elements:
        first, last = _address_span(element)
        if not any(low.version == first.version and low <= first and last <= high for low, high in spans):
            outside.append(json.dumps(element))
    return outside


def check_firewall_rules(target: Target) -> str:
    dumped = target.run_as_root(NFT_DUMP)
    assert dumped.returncode == 0, f"`{' '.join(NFT_DUMP)}` failed: {dumped.stderr.strip()}"
    chains, rules = _rules(json.loads(dumped.stdout))
    inputs = [c for c in chains if c.get("hook") == "input"]
    assert inputs, "no input chain in table inet host_firewall (the host firewall is not loaded)"
    assert all(c.get("policy") == "drop" for c in inputs), f"input policy is not drop: {inputs}"
    ssh_rules = web_rules = 0
    for rule in rules:
        if not any("accept" in e for e in rule["expr"]):
            continue
        matches = _matches(rule)
        if matches.get("meta iif") == "lo" or matches.get("meta l4proto") == {"set": ["icmp", "ipv6-icmp"]}:
            continue
        if "ct state" in matches:
            assert set(_values(matches["ct state"])) <= {"established", "related"}, f"accepts ct state {matches}"
            continue
        ports = set(_values(matches.get("tcp dport", [])))
        sources = matches.get("ip saddr", matches.get("ip6 saddr"))
        assert ports, f"an accept rule with no port: {matches or 'everything'}"
        assert sources is not None, f"ports {sorted(ports)} are accepted from any address"
        assert ports <= PUBLIC_PORTS, f"the firewall accepts ports {sorted(ports - PUBLIC_PORTS)}"
        if ports & {80, 443}:
            outside = _outside_cloudflare(_values(sources))
            assert not outside, f"80/443 accepted from outside Cloudflare's ranges: {outside}"
            web_rules += 1
        if 22 in ports:
            ssh_rules += 1
    assert ssh_rules and web_rules, f"expected SSH and web rules, found {ssh_rules} and {web_rules}"
    return f"input policy drop; {ssh_rules} SSH rule(s) from admin CIDRs, {web_rules} web rule(s) from Cloudflare"


def check_firewall_closed_to_runner(target: Target) -> str:
    """From here (not Cloudflare, at most an admin address) only SSH may answer."""
    probes = [80, 443, APP_PORT, *sorted(DATA_PORTS)]
    with ThreadPoolExecutor(len(probes)) as pool:
        answered = [p for p, ok in zip(probes, pool.map(lambda p: port_open(target.public_address, p), probes),
                                       strict=True) if ok]
    assert not answered, f"{target.public_address} answers this runner on ports {answered}"
    return f"{target.public_address}: no answer on {probes} from this runner"


# --------------------------------------------------------------------------- Caddy and the app


TLS_PROBE = """\
import json, socket, ssl, sys, time
context = ssl.create_default_context(cafile=sys.argv[2] or None)
with socket.create_connection(("127.0.0.1", 443), timeout=5) as raw:
    with context.wrap_socket(raw, server_hostname=sys.argv[1]) as tls:
        cert = tls.getpeercert()
        start, end = ssl.cert_time_to_seconds(cert["notBefore"]), ssl.cert_time_to_seconds(cert["notAfter"])
        print(json.dumps({"protocol": tls.version(), "not_after": cert["notAfter"],
                          "left": (end - time.time()) / (end - start)}))
"""


def check_tls_certificate(target: Target) -> str:
    # python3 is on every cloud-init host (cloud-init is written in it).
    command = shlex.join(["python3", "-c", TLS_PROBE, target.site_address, target.ca_file or ""])
    result = target.host.run(command)
    assert result.rc == 0, f"TLS to {target.site_address} on the host failed: {result.stderr.strip()[-300:]}"
    facts = json.loads(result.stdout)
    assert facts["protocol"] in ("TLSv1.2", "TLSv1.3"), f"TLS protocol {facts['protocol']}"
    # Caddy renews when a third of the lifetime is left; below a quarter renewal is failing.
    assert facts["left"] > 0.25, (
        f"certificate has {facts['left']:.0%} of its lifetime left (until {facts['not_after']})")
    return f"{facts['protocol']}, valid for {target.site_address} until {facts['not_after']}"


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "referrer-policy": "strict-origin-when-cross-origin",
    "cache-control": "no-cache, no-store, must-revalidate",
}


def response_headers(target: Target, url: str) -> dict[str, str]:
    raw = target.curl("-o", "/dev/null", "-D", "-", url)
    lines = [line for line in raw.splitlines()[1:] if ":" in line]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}


def check_security_headers(target: Target) -> str:
    headers = response_headers(target, f"https://{target.site_address}/health")
    wrong = {k: headers.get(k) for k, v in SECURITY_HEADERS.items() if headers.get(k) != v}
    assert not wrong, f"security headers missing or wrong: {wrong}"
    assert "server" not in headers, f"Server header leaks: {headers['server']}"
    return "security and cache headers present; no Server header"


def check_http_redirects_to_https(target: Target) -> str:
    out = target.curl("-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", f"http://{target.site_address}/health")
    code, _, location = out.partition(" ")
    assert code in ("301", "308") and location.startswith(f"https://{target.site_address}/"), (
        f"plain HTTP is not redirected to HTTPS: {out!r}")
    return f"http -> {code} {location}"


def check_health_through_caddy(target: Target) -> str:
    out = target.curl("-w", "\n%{http_code}", f"https://{target.site_address}/health")
    body, _, code = out.rpartition("\n")
    assert code == "200" and json.loads(body or "{}").get("status") == "ok", (
        f"/health through Caddy answered {code}: {body[:200]!r}")
    return "/health through Caddy: 200 ok"


# --------------------------------------------------------------------------- only on a VM


ROLE_PACKAGES = PACKAGES  # the role's own list: sudo among them (the root verbs run through `sudo -n`)
# The app is containers with a restart policy (the deploy script's), not a unit.
ROLE_SERVICES = ("docker", "caddy", "vector", "nftables")


def check_packages_installed(target: Target) -> str:
    missing = [p for p in ROLE_PACKAGES if not target.host.package(p).is_installed]
    assert not missing, f"host role packages not installed: {missing}"
    return f"installed: {', '.join(ROLE_PACKAGES)}"


def check_services_running(target: Target) -> str:
    down = [s for s in ROLE_SERVICES if not target.host.service(s).is_running]
    disabled = [s for s in ROLE_SERVICES if not target.host.service(s).is_enabled]
    assert not down and not disabled, f"services not running: {down}; not enabled at boot: {disabled}"
    return f"running and enabled: {', '.join(ROLE_SERVICES)}"


def check_app_container_healthy(target: Target) -> str:
    # The deploy user is in the docker group; the image's HEALTHCHECK calls /health.
    # The serving container is the one the deploy script promoted (label autoenroll.app).
    result = target.host.run("docker ps --filter label=autoenroll.app=1 --format '{{.Names}} {{.Status}}'")
    lines = result.stdout.strip().splitlines()
    assert result.rc == 0 and len(lines) == 1 and "(healthy)" in lines[0], (
        f"app container: {result.stdout or result.stderr}")
    return "app container healthy"


def check_unattended_upgrades(target: Target) -> str:
    config = target.host.file("/etc/apt/apt.conf.d/20auto-upgrades")
    assert config.exists and 'APT::Periodic::Unattended-Upgrade "1";' in config.content_string, (
        "unattended upgrades are not switched on in /etc/apt/apt.conf.d/20auto-upgrades")
    timer = target.host.service("apt-daily-upgrade.timer")
    assert timer.is_enabled, "apt-daily-upgrade.timer is not enabled"
    return "unattended upgrades on; apt-daily-upgrade.timer enabled"


CHECKS = [
    Check("web-ports-public", check_web_ports_public),
    Check("app-port-internal", check_app_port_internal),
    Check("no-database-ports", check_no_data_ports),
    Check("only-expected-public-listeners", check_only_expected_public_listeners),
    Check("sshd-settings", check_sshd_settings),
    Check("ssh-offers-only-keys", check_ssh_offers_only_keys),
    Check("root-login-refused", check_root_login_refused),
    Check("firewall-rules", check_firewall_rules),
    Check("firewall-closed-to-runner", check_firewall_closed_to_runner),
    Check("tls-certificate", check_tls_certificate),
    Check("security-headers", check_security_headers),
    Check("http-redirects-to-https", check_http_redirects_to_https),
    Check("health-through-caddy", check_health_through_caddy),
    Check("packages-installed", check_packages_installed, SHARED_MACHINE),
    Check("services-running", check_services_running,
          "no systemd units or Docker engine in the local test host (it shares this machine's init); "
          "its app and Caddy processes are checked by the socket and HTTP checks"),
    Check("app-container-healthy", check_app_container_healthy,
          "the local test host runs the app as a process, not in a container (the lab's hosts in "
          "tests/drills run it as the image, with its HEALTHCHECK)"),
    Check("unattended-upgrades", check_unattended_upgrades, SHARED_MACHINE),
]
