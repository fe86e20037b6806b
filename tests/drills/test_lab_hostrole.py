"""The host role where a real Debian host is stricter than a kind lab (issue 25, items 5, 9, 10):
Caddy restarted by systemd from its Caddyfile after a second release still serves the live slot;
a deploy writes Vector's BetterStack token over SSH (never user data) and restarts Vector only when
it changed; a host that cannot run the root verb through sudo fails the deploy naming sudo.
`pytest tests/drills/test_lab_hostrole.py` (the lab: tests/drills/lab.py)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.drills.lab import LOGS_TOKEN, Lab
from tests.infra.testhost import SITE_NAME
from tests.lab.host import LabHost

pytestmark = pytest.mark.drill


def ops(lab: Lab, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=env or lab.env, capture_output=True, text=True,
                          timeout=600, check=False)


def deploy_script(host: LabHost, *verb: str) -> str:
    """A verb of the role's deploy script on the host, as the deploy user over SSH."""
    done = host.ssh([str(host.folder / "autoenroll-deploy"), *verb])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def version_on(lab: Lab, role: str) -> str:
    with httpx.Client(verify=lab.tls(role), timeout=15, headers={"Host": SITE_NAME}) as client:
        response = client.get(f"{lab.site(role)}/version", extensions={"sni_hostname": SITE_NAME})
    assert response.status_code == 200, f"{role}: {response.status_code} {response.text[:200]}"
    return str(response.json()["version"])


def fresh_hosts(lab: Lab) -> None:
    """Both hosts as a first boot leaves them: no app container, nothing recorded, Caddy from its unit."""
    for host in lab.hosts.values():
        for name in host.docker("ps", "-aq", "--filter", "label=autoenroll.app=1").stdout.split():
            host.docker("rm", "--force", name)
        for name in ("current", "caddy-upstream.env"):
            (host.role_root / name).unlink(missing_ok=True)
        host.start_caddy()


def test_lab_caddy_restarted_from_its_caddyfile_after_a_second_release_serves_the_live_slot(lab: Lab) -> None:
    """Debian's caddy.service starts Caddy from the Caddyfile (no --resume): after a reboot, a crash or
    the package's try-restart it forgets the upstream ops set. After a second release the live slot
    is 8001, so the Caddyfile's APP_UPSTREAMS must come from what `promote` recorded."""
    fresh_hosts(lab)
    for version in ("lab-v1", "lab-v2"):
        deployed = ops(lab, "deploy", "--env", "staging", "--version", version)
        assert deployed.returncode == 0, deployed.stderr
    for role, host in lab.hosts.items():
        assert deploy_script(host, "current") == "lab-v2 127.0.0.1:8001", role  # the second slot is live
        assert lab.containers(role) == ["autoenroll-app-8001"]  # the first slot is stopped

    for host in lab.hosts.values():
        host.start_caddy()  # as systemd restarts it: the unit's command line and environment, read afresh
    assert version_on(lab, "standby") == "lab-v2"
    through_edge = lab.edge_get("/version")
    assert through_edge.status_code == 200, f"the edge got {through_edge.status_code}: {through_edge.text[:200]}"
    assert through_edge.json()["version"] == "lab-v2"


@pytest.fixture()
def outputs_restored(lab: Lab) -> Iterator[None]:
    saved = lab.outputs_file.read_text()
    try:
        yield
    finally:
        lab.outputs_file.write_text(saved)


@pytest.mark.usefixtures("outputs_restored")
def test_lab_a_deploy_writes_vectors_token_and_restarts_vector_only_when_it_changed(lab: Lab) -> None:
    """The BetterStack token travels as the stack output `betterstack_logs_token`, over SSH on stdin,
    into Vector's env file (0600, root's on a server); a rotated token arrives with the next deploy."""
    for host in lab.hosts.values():
        host.vector_env_file.unlink(missing_ok=True)
        host.systemctl_log.write_text("")

    first = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1")
    assert first.returncode == 0, first.stderr
    assert LOGS_TOKEN not in first.stdout + first.stderr
    for role, host in lab.hosts.items():
        assert host.vector_env_file.read_text() == f"BETTERSTACK_LOGS_TOKEN={LOGS_TOKEN}\n", role
        assert stat.S_IMODE(host.vector_env_file.stat().st_mode) == 0o600
        assert host.systemctl_calls() == ["restart vector.service"], role

    again = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2")
    assert again.returncode == 0, again.stderr
    for role, host in lab.hosts.items():  # unchanged: `start`, a no-op for a running unit, no restart
        assert host.systemctl_calls() == ["restart vector.service", "start vector.service"], role

    rotated = "betterstack-logs-lab-token-rotated"
    outputs = json.loads(lab.outputs_file.read_text())
    lab.outputs_file.write_text(json.dumps({**outputs, "betterstack_logs_token": rotated}))
    third = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1")
    assert third.returncode == 0, third.stderr
    assert rotated not in third.stdout + third.stderr
    for role, host in lab.hosts.items():
        assert host.vector_env_file.read_text() == f"BETTERSTACK_LOGS_TOKEN={rotated}\n", role
        assert host.systemctl_calls()[-1] == "restart vector.service", role


def test_lab_a_host_that_cannot_run_the_root_verb_through_sudo_fails_the_deploy_naming_sudo(lab: Lab) -> None:
    """What a server meets whose image has no sudo (or no rule for the verb): the root verbs run as
    `sudo -n autoenroll-deploy ...`. The deploy stops before any host changes version, and says sudo,
    not the firewall (SSH got in)."""
    script = lab.hosts["primary"].folder / "autoenroll-deploy"
    before = {role: deploy_script(host, "current") for role, host in lab.hosts.items()}
    refused = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2",
                  env={**lab.env, "OPS_HOST_ROOT_COMMAND": f"sudo -n {script}"})
    assert refused.returncode == 7, refused.stderr
    assert f"could not run through `sudo -n {script}`" in refused.stderr, refused.stderr
    assert "installs sudo" in refused.stderr and "firewall" not in refused.stderr, refused.stderr
    assert {role: deploy_script(host, "current") for role, host in lab.hosts.items()} == before
