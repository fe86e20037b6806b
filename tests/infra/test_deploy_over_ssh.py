"""The SSH side of `ops deploy` against the local test host (sshd with the role's hardening,
the repository's Caddy): the host's app env file written from the stack's secrets (0600,
the deploy user's, atomically replaced, never on a command line), and that host's Caddy
moved through its admin API on loopback, reached over SSH."""

from __future__ import annotations

import pwd
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from ops import wiring
from ops.adapters.cloud.ssh_hosts import Ssh, SshHosts, host_caddy
from ops.environment import AppHost, Environment, ObjectStorage
from stacks.host_role import DEPLOY_USER
from tests.infra.role_files import install_role_files
from tests.infra.testhost import APP_PORT, LocalTestHost

SENTINELS = {"DATABASE_URL": "postgresql://app:SENTINEL-db-pw@db.invalid/autoenroll?sslmode=require",
             "AUTH_SECRET": "SENTINEL-auth-" + "x" * 32, "STRIPE_WEBHOOK_SECRET": "whsec_SENTINEL"}


@pytest.fixture(scope="module")
def host_root(local_test_host: LocalTestHost) -> Path:
    """The role's /etc/autoenroll and deploy script, inside the test host's folder (it shares
    this machine's filesystem, so the real paths are not ours to write)."""
    root, _script = install_role_files(local_test_host.folder, "registry.invalid/autoenroll-app")
    return root


@pytest.fixture()
def ssh(local_test_host: LocalTestHost, host_root: Path) -> Ssh:
    return Ssh(config_file=str(local_test_host.ssh_config),
               script=("env", f"AUTOENROLL_ROOT={host_root}", str(local_test_host.folder / "autoenroll-deploy")))


def cloud_env() -> Environment:
    return Environment(
        name="staging", branch="staging", database_urls={}, app_database_url=None, redis_url=None,
        storage=ObjectStorage(endpoint_url=None, region="auto", access_key_id=SecretStr("k"),
                              secret_access_key=SecretStr("s"), buckets={}),
        app_hosts=(AppHost(name="app-1", role="primary", url="http://testhost:8000", address="testhost"),),
        public_url="https://staging.invalid",
        app_env={k: SecretStr(v) for k, v in SENTINELS.items()})


def test_deploy_writes_the_env_file_0600_for_the_deploy_user_only(ssh: Ssh, host_root: Path) -> None:
    env = cloud_env()
    hosts = SshHosts(env.app_hosts, ssh, serving_role=lambda: "primary",
                     env_file=lambda h: wiring.host_env_file(env, h.role, None), secrets=list(SENTINELS.values()))
    assert hosts.write_env_files() == ["app-1"]
    env_file = host_root / "app.env"
    info = env_file.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == pwd.getpwnam(DEPLOY_USER).pw_uid and info.st_gid == pwd.getpwnam(DEPLOY_USER).pw_gid
    lines = env_file.read_text().splitlines()
    assert f"AUTH_SECRET={SENTINELS['AUTH_SECRET']}" in lines and "APP_ENV=staging" in lines
    # A rotation is a deploy: the file is replaced whole, no temporary left behind.
    rotated = env.model_copy(update={"app_env": {**env.app_env, "AUTH_SECRET": SecretStr("SENTINEL-rotated" * 3)}})
    SshHosts(rotated.app_hosts, ssh, serving_role=lambda: "primary",
             env_file=lambda h: wiring.host_env_file(rotated, h.role, None)).write_env_files()
    assert f"AUTH_SECRET={'SENTINEL-rotated' * 3}" in env_file.read_text().splitlines()
    assert sorted(p.name for p in host_root.iterdir()) == ["app.env", "image"]
    # The secrets travel on stdin: nothing secret on the ssh command line (visible in ps).
    assert not [v for v in SENTINELS.values() if v in " ".join(ssh.argv("testhost", ["env"]))]


def test_a_host_before_its_first_deploy_has_no_current_version(ssh: Ssh) -> None:
    env = cloud_env()
    hosts = SshHosts(env.app_hosts, ssh, serving_role=lambda: "primary", env_file=lambda _h: "")
    assert hosts.current("app-1") == ("none", "-")


def test_the_hosts_caddy_is_moved_through_its_admin_api_over_ssh(ssh: Ssh) -> None:
    app = f"127.0.0.1:{APP_PORT}"
    with host_caddy(ssh, "testhost") as caddy:
        assert caddy.current_upstreams() == [app]
        caddy.set_upstreams(["127.0.0.1:8001", app])
        assert caddy.current_upstreams() == ["127.0.0.1:8001", app]
        caddy.set_upstreams([app])
        assert caddy.current_upstreams() == [app]


def test_the_script_refuses_what_is_not_an_app_slot_or_a_config_path(ssh: Ssh) -> None:
    assert ssh.run("testhost", ["promote", "10.0.0.1:22"], check=False).returncode == 2
    assert ssh.run("testhost", ["caddy", "GET", "/load"], check=False).returncode == 2
    assert ssh.run("testhost", ["start", "v1;reboot"], check=False).returncode == 2
