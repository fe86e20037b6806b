"""Every check the local test host can answer is shown to fail when its condition is broken.

Each test breaks one thing on a test host of its own (not the one test_host_role.py uses),
asserts the check passes before, fails with a message naming the fault during, and passes
again after the repair, so a check that always passes, or always fails, cannot hide here.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.infra import checks
from tests.infra.conftest import require_local_test_host
from tests.infra.target import Target, local_target
from tests.infra.testhost import CADDYFILE, SITE_NAME, LocalTestHost, running_test_host

Breakage = Callable[[], object]


@pytest.fixture(scope="module")
def testhost(request: pytest.FixtureRequest) -> Iterator[LocalTestHost]:
    if request.config.getoption("hosts"):
        pytest.skip("the breakage proofs run on a local test host only, never on a --hosts server")
    require_local_test_host()
    with running_test_host() as host:
        yield host


@pytest.fixture(scope="module")
def subject(testhost: LocalTestHost) -> Target:
    return local_target(testhost)


def assert_catches(check: Callable[[Target], str], target: Target, break_it: Breakage, repair: Breakage,
                   names: str) -> None:
    check(target)  # passes on the healthy host
    try:
        break_it()
        with pytest.raises(AssertionError, match=names):
            check(target)
    finally:
        repair()
    check(target)  # and again once repaired


def nft(testhost: LocalTestHost, *command: str) -> Breakage:
    return lambda: subprocess.run(testhost.inside(["nft", *command]), check=True, capture_output=True)


@pytest.mark.parametrize("port, check, names", [
    (5432, checks.check_no_data_ports, "5432"),
    (6379, checks.check_no_data_ports, "6379"),
    (9000, checks.check_only_expected_public_listeners, r"\[9000\]"),
])
def test_a_stray_public_listener_is_caught(testhost: LocalTestHost, subject: Target, port: int,
                                           check: Callable[[Target], str], names: str) -> None:
    assert_catches(check, subject, lambda: testhost.listen_on(port), lambda: testhost.stop_stray(port), names)


def test_the_app_published_on_all_addresses_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_app_port_internal, subject, lambda: testhost.start_app(bind="0.0.0.0"),
                   testhost.start_app, r"listens on \['\*'\]")


def test_caddy_not_listening_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_web_ports_public, subject, lambda: testhost.stop_process("caddy"),
                   testhost.start_caddy, "port 80")


@pytest.mark.parametrize("override, check, names", [
    ("PasswordAuthentication yes\n", checks.check_sshd_settings, "passwordauthentication"),
    ("PasswordAuthentication yes\n", checks.check_ssh_offers_only_keys, "password"),
    ("KbdInteractiveAuthentication yes\n", checks.check_ssh_offers_only_keys, "keyboard-interactive"),
    ("PermitRootLogin yes\nAllowUsers deploy root\n", checks.check_sshd_settings, "permitrootlogin"),
    ("PermitRootLogin yes\nAllowUsers deploy root\n", checks.check_root_login_refused, "root login"),
    ("MaxAuthTries 6\n", checks.check_sshd_settings, "MaxAuthTries is 6"),
], ids=["password-settings", "password-offered", "kbd-interactive-offered", "root-settings", "root-logs-in",
        "max-auth-tries"])
def test_a_weakened_sshd_is_caught(testhost: LocalTestHost, subject: Target, override: str,
                                   check: Callable[[Target], str], names: str) -> None:
    assert_catches(check, subject, lambda: testhost.start_sshd(override), testhost.start_sshd, names)


@pytest.mark.parametrize("rule, names", [
    ("tcp dport 6379 accept", "accepted from any address"),
    ("tcp dport 443 accept", "accepted from any address"),
    ("ip saddr 10.0.0.0/8 tcp dport 8000 accept", r"accepts ports \[8000\]"),
    ("ip saddr 198.51.100.0/24 tcp dport 443 accept", "outside Cloudflare"),
    ("accept", "no port"),
    # SSH from anywhere only under the per-source limit; nothing else from anywhere, limited or not.
    ("tcp dport 22 accept", "accepted from any address"),
    ("tcp dport 443 ct state new add @ssh_sources_v4 { ip saddr limit rate 60/minute } accept",
     r"ports \[443\] accepted from any address under a rate limit"),
])
def test_an_opened_firewall_rule_is_caught(testhost: LocalTestHost, subject: Target, rule: str, names: str) -> None:
    assert_catches(checks.check_firewall_rules, subject,
                   nft(testhost, "add", "rule", "inet", "host_firewall", "input", *rule.split()),
                   testhost.load_firewall, names)


def test_a_permissive_policy_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_firewall_rules, subject,
                   nft(testhost, "chain", "inet", "host_firewall", "input", "{ policy accept ; }"),
                   testhost.load_firewall, "policy is not drop")


def test_a_flushed_firewall_is_caught_from_outside(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_firewall_rules, subject, nft(testhost, "flush", "ruleset"),
                   testhost.load_firewall, "no input chain")
    assert_catches(checks.check_firewall_closed_to_runner, subject, nft(testhost, "flush", "ruleset"),
                   testhost.load_firewall, r"answers this runner on ports \[80, 443\]")


def test_a_certificate_from_an_untrusted_ca_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    other_ca = testhost.folder / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ed25519", "-nodes", "-subj", "/CN=not Caddy's CA",
                    "-keyout", str(testhost.folder / "other-ca.key"), "-out", str(other_ca), "-days", "1"],
                   check=True, capture_output=True)
    other_ca.chmod(0o644)
    checks.check_tls_certificate(subject)
    with pytest.raises(AssertionError, match="CERTIFICATE_VERIFY_FAILED"):
        checks.check_tls_certificate(dataclasses.replace(subject, ca_file=str(other_ca)))


def test_a_missing_security_header_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    weakened = testhost.folder / "Caddyfile.no-frame-options"
    weakened.write_text("".join(line for line in CADDYFILE.read_text().splitlines(keepends=True)
                                if "X-Frame-Options" not in line))
    assert_catches(checks.check_security_headers, subject, lambda: testhost.start_caddy(weakened),
                   testhost.start_caddy, "x-frame-options")


def test_plain_http_served_without_redirect_is_caught(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_http_redirects_to_https, subject,
                   lambda: testhost.start_caddy(site_address=f"https://{SITE_NAME}, http://{SITE_NAME}"),
                   testhost.start_caddy, "not redirected")


def test_the_app_down_is_caught_through_caddy(testhost: LocalTestHost, subject: Target) -> None:
    assert_catches(checks.check_health_through_caddy, subject, lambda: testhost.stop_process("app"),
                   testhost.start_app, "answered 502")
