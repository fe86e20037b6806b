"""The cloud path, drilled on the lab (tests/drills/lab.py): `ops deploy --env staging` over SSH
to two hosts with Docker and Caddy, under a bounded request loop; a broken version discarded by
itself; rollback; a concurrent deploy refused with exit 6. `pytest tests/drills -k lab`."""

from __future__ import annotations

import json
import socket
import ssl
import stat
import subprocess
import sys

import httpx
import pytest

from tests.drills.lab import Lab
from tests.drills.loadloop import LoadLoop, drill_report
from tests.infra.testhost import SITE_NAME
from tests.lab.images import APP_REPOSITORY
from tests.lab.tls import fingerprint

pytestmark = pytest.mark.drill


def ops(lab: Lab, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops", *args], env=lab.env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def version_on(lab: Lab, role: str) -> str:
    with httpx.Client(verify=lab.tls(role), timeout=10, headers={"Host": SITE_NAME}) as client:
        response = client.get(f"{lab.site(role)}/version", extensions={"sni_hostname": SITE_NAME})
    return str(response.json()["version"])


def served_certificate(lab: Lab, role: str) -> str | None:
    """The fingerprint of the certificate a host's Caddy serves for the site; None if nothing answers TLS."""
    try:
        with socket.create_connection((lab.hosts[role].address, 443), timeout=3) as raw, \
                lab.tls(role).wrap_socket(raw, server_hostname=SITE_NAME) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError:
        return None
    return fingerprint(ssl.DER_cert_to_PEM_cert(der)) if der else None


def test_lab_a_fresh_host_serves_after_ops_deploy_with_its_login_and_certificate(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a first boot meets: no registry login (the registry requires one) and no origin certificate
    (Caddy cannot start). `ops deploy` logs the hosts in and writes the certificate; both then serve,
    and the digest the deploy records is the registry's for the tag it deployed."""
    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.deploy.usecase import read_history
    from ops.environment import from_outputs

    for host in lab.hosts.values():  # fresh, whatever ran before in this module
        (host.docker_config / "config.json").unlink(missing_ok=True)
        for name in ("cert.pem", "key.pem"):
            (host.origin_dir / name).unlink(missing_ok=True)
        host.start_caddy()
    primary = lab.hosts["primary"]
    image = f"{lab.registry.address_for(primary.runner_address)}/{APP_REPOSITORY}:lab-v1"
    refused = primary.ssh(["docker", "pull", "--quiet", image])
    assert refused.returncode != 0 and "no basic auth credentials" in refused.stderr + refused.stdout, refused.stderr
    assert served_certificate(lab, "primary") is None

    deployed = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert served_certificate(lab, "primary") == served_certificate(lab, "standby") == \
        fingerprint(lab.origin_cert.cert.read_text())
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"
    assert primary.ssh(["docker", "pull", "--quiet", image]).returncode == 0  # the deploy's login, the user's own
    key = primary.origin_dir / "key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o640
    # Secrets on stdin only: neither the key nor the token is in the report.
    assert lab.origin_cert.key.read_text().splitlines()[1] not in deployed.stdout + deployed.stderr
    assert lab.registry.reader_token not in deployed.stdout + deployed.stderr

    digest = lab.registry.manifest_digest(APP_REPOSITORY, "lab-v1")
    report = json.loads(deployed.stdout)
    assert {h["role"]: h["digest"] for h in report["hosts"]} == {"standby-host": digest, "primary-host": digest}
    for name in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, lab.env[name])
    store = S3ObjectStore(from_outputs("staging", json.loads(lab.outputs_file.read_text())).storage, "backups")
    assert read_history(store, "staging")[-1]["digests"] == {"standby-host": digest, "primary-host": digest}


def test_lab_deploy_rollback_and_lock_on_the_cloud_path(lab: Lab) -> None:
    first = ops(lab, "deploy", "--env", "staging", "--version", "lab-v1", "--json")
    assert first.returncode == 0, first.stderr
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"

    # The app's secrets are on each host, 0600 and the deploy user's; a rotation would be a deploy.
    for host in lab.hosts.values():
        env_file = host.folder / "etc-autoenroll" / "app.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert "AUTH_SECRET=lab-" in env_file.read_text()

    with LoadLoop(f"{lab.site('primary')}/health", interval=0.005, verify=lab.tls("primary"), sni=SITE_NAME) as loop:
        second = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2", "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert [h["role"] for h in report["hosts"]] == ["standby-host", "primary-host"]  # the serving host last
    assert loop.sent > 100 and loop.failures == [], (
        f"{len(loop.failures)} of {loop.sent} requests failed ({loop.errors or 'non-200 answers'})")
    assert version_on(lab, "primary") == "lab-v2"
    assert len(lab.containers("primary")) == 1  # the old container is gone, not left running

    with LoadLoop(f"{lab.site('primary')}/health", interval=0.005, verify=lab.tls("primary"), sni=SITE_NAME) as loop:
        broken = ops(lab, "deploy", "--env", "staging", "--version", "lab-broken")
    assert broken.returncode == 7, broken.stderr
    assert "did not become ready" in broken.stderr and "lab-v2 still serving" in broken.stderr
    assert loop.failures == [] and version_on(lab, "standby") == "lab-v2"
    assert len(lab.containers("standby")) == 1  # the broken candidate was discarded

    rolled = ops(lab, "rollback", "--env", "staging", "--json")
    assert rolled.returncode == 0, rolled.stderr
    assert version_on(lab, "primary") == version_on(lab, "standby") == "lab-v1"
    again = ops(lab, "rollback", "--env", "staging")
    assert again.returncode == 5 and "no good version before lab-v1" in again.stderr  # never back to lab-v2


def test_lab_a_second_deploy_while_one_runs_gets_exit_6(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from ops.adapters.cloud.s3_store import S3ObjectStore
    from ops.environment import from_outputs
    from ops.locks import object_lock

    for name in ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, lab.env[name])
    env = from_outputs("staging", json.loads(lab.outputs_file.read_text()))
    with object_lock(S3ObjectStore(env.storage, "backups"), "_ops/staging/deploy.lock", ttl=timedelta(minutes=5),
                     purpose="deploy to staging"):
        blocked = ops(lab, "deploy", "--env", "staging", "--version", "lab-v2")
    assert blocked.returncode == 6 and "deploy to staging is locked by" in blocked.stderr


def stop_primary_host(lab: Lab) -> float:
    """The primary host dies: its Caddy and app containers stop (Cloudflare's edge now gets no answer)."""
    import time

    host = lab.hosts["primary"]
    started = time.monotonic()  # the outage begins as the stop does
    host.stop_process("caddy")
    for name in lab.containers("primary"):
        host.docker("stop", "--time", "1", name)
    return started


def start_primary_host_again(lab: Lab) -> None:
    host = lab.hosts["primary"]
    for name in host.docker("ps", "-a", "--filter", "label=autoenroll.app=1", "--format", "{{.Names}}").stdout.split():
        host.docker("start", name)
    host.start_caddy()


def test_lab_failover_with_neon_pitr_resumes_after_every_step_and_fails_back(lab: Lab) -> None:
    import time
    from datetime import UTC, datetime

    import psycopg

    from ops.failover.usecase import STEPS
    from tests.seed import clear, seed

    deployed = ops(lab, "deploy", "--env", "production", "--yes", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr
    main = lab.owner_url("main")
    clear(main)
    seed(main, tenants=3, employees_per_run=10, tag="lab-pitr")
    moment = datetime.now(UTC)
    lab.neon.snapshot("main", moment)  # Neon's history covers this moment
    time.sleep(1.0)
    with psycopg.connect(main, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (name) VALUES ('written after the restore point Ltd')")

    refused = ops(lab, "failover", "--env", "production", "--db", f"neon-pitr@{moment.isoformat()}", "--json")
    assert refused.returncode == 4 and "no terminal to ask" in refused.stderr  # no --yes, no person: nothing happens
    with LoadLoop(f"{lab.edge_url}/ready", verify=lab.edge_tls()) as loop:
        time.sleep(0.5)
        stopped_at = stop_primary_host(lab)
        args = ("failover", "--env", "production", "--db", f"neon-pitr@{moment.isoformat()}", "--yes",
                "--watch-seconds", "3", "--json")
        for step in STEPS[:-1]:
            crashed = subprocess.run([sys.executable, "-m", "ops", *args], capture_output=True, text=True,
                                     env={**lab.env, "OPS_FAILPOINT": f"failover.after.{step}"}, timeout=600)
            assert crashed.returncode == -9, crashed.stderr
        result = ops(lab, *args)
        done_at = time.monotonic()
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["resumed_after"] == STEPS[-2] and report["steps"] == list(STEPS)

    # DNS (both records) points at the standby, which serves the restored data.
    assert lab.record_contents() == {"app": lab.hosts["standby"].address, "api": lab.hosts["standby"].address}
    with psycopg.connect(main) as conn:
        names = [str(r[0]) for r in conn.execute("SELECT name FROM tenants")]
    assert len(names) == 3 and "written after the restore point Ltd" not in names
    assert lab.neon.restores[0]["source_timestamp"] == moment.isoformat()
    assert report["writes_after_point"]["tenants"] == 1  # counted on the preserved old state, not lost
    assert 0 < report["data_loss_window_seconds"] < 60 and report["recovery_seconds"] > 0
    # A request is stamped when it starts; one through the edge (a fresh TLS connection to the
    # origin) takes up to a second, so one started just before the stop may meet the dead host.
    early = [round(t - stopped_at, 2) for t in loop.failures if t < stopped_at - 1.0]
    assert not early, f"requests failed before the primary was stopped (s relative to the stop): {early}"
    drill_report(f"lab failover (neon-pitr): recovery {report['recovery_seconds']} s, data-loss window "
                 f"{report['data_loss_window_seconds']} s, {len(loop.failures)} of {loop.sent} requests failed, "
                 f"stop -> command done {done_at - stopped_at:.1f} s (6 runs: 5 killed, 1 resumed)")

    start_primary_host_again(lab)
    back = ops(lab, "failback", "--env", "production", "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert lab.record_contents() == {"app": lab.hosts["primary"].address, "api": lab.hosts["primary"].address}
    assert lab.edge_get("/ready").status_code == 200


def test_lab_failover_from_the_latest_backup_when_neon_is_down(lab: Lab) -> None:
    import psycopg

    from ops.pg import with_database


    deployed = ops(lab, "deploy", "--env", "production", "--yes", "--version", "lab-v1", "--json")
    assert deployed.returncode == 0, deployed.stderr
    main = lab.owner_url("main")
    for args in (("backup", "create"), ("backup", "verify", "--latest")):
        done = ops(lab, *args, "--env", "production", "--json")
        assert done.returncode == 0, done.stderr
    with psycopg.connect(main, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants (name) VALUES ('written after the backup Ltd')")
    stop_primary_host(lab)
    result = ops(lab, "failover", "--env", "production", "--db", "latest-backup", "--yes",
                 "--watch-seconds", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["live_database"] == "main_failover" and report["writes_after_point"]["tenants"] == 1
    assert lab.record_contents()["api"] == lab.hosts["standby"].address
    assert lab.edge_get("/version").json()["database"] == "main_failover"
    # The standby's app serves as the app's role, under row-level security, not as the standby
    # server's owner (the URL ops restored with): its pool holds a connection whatever the traffic.
    with psycopg.connect(with_database(lab.env["OPS_STANDBY_DATABASE_URL"], "main_failover")) as conn:
        users = conn.execute("SELECT DISTINCT a.usename, r.rolsuper OR r.rolbypassrls FROM pg_stat_activity a "
                             "JOIN pg_roles r ON r.rolname = a.usename WHERE a.datname = 'main_failover' "
                             "AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()").fetchall()
    assert users == [("autoenroll_app", False)], users
    drill_report(f"lab failover (latest-backup): recovery {report['recovery_seconds']} s, data-loss window "
                 f"{report['data_loss_window_seconds']} s")

    # Recorded state: the next backup is of the database the app now serves from, not the stale main.
    backup = ops(lab, "backup", "create", "--env", "production", "--json")
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["backup"]["database"] == "main_failover"

    start_primary_host_again(lab)
    back = ops(lab, "failback", "--env", "production", "--yes", "--json")
    assert back.returncode == 0, back.stderr
    assert lab.record_contents()["app"] == lab.hosts["primary"].address
    assert lab.edge_get("/version").json()["database"] == "main_failover"
