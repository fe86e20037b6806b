"""The sandbox's commands as data: argv builders, the state file, process identity."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.processes import ProcRef, is_running, start_process, stop_process
from ops.sandbox import components as c
from ops.sandbox.manager import _new_state
from ops.sandbox.state import load_state, save_state

pytestmark = pytest.mark.unit


def test_app_is_started_with_the_container_images_cmd() -> None:
    argv = c.image_start_command()
    assert argv == ["python", "-m", "autoenroll.serve"]
    assert c.app_argv()[1:] == argv[1:]
    assert c.app_argv()[0] == sys.executable


def test_image_cmd_parser_rejects_a_dockerfile_without_exec_form_cmd(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM scratch\nCMD python -m x\n")
    with pytest.raises(Exception, match="no exec-form CMD"):
        c.image_start_command(dockerfile)


def test_state_file_is_private_and_round_trips(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    save_state(tmp_path, state)
    mode = stat.S_IMODE(os.stat(tmp_path / "state.json").st_mode)
    assert mode == 0o600
    again = load_state(tmp_path)
    assert again == state
    assert state.postgres.superuser_password not in str(state.public_view())
    assert state.redis.password not in str(state.public_view())


def test_every_component_gets_its_own_port(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    ports = [p for comp in c.COMPONENTS for p in comp.ports(state)]
    assert len(ports) == len(set(ports))


def test_free_ports_are_never_handed_out_twice() -> None:
    from ops.tcp_ports import free_port

    # Left to the kernel alone, 2,000 asks repeated 143 ports on this machine.
    ports = [free_port() for _ in range(2000)]
    assert len(set(ports)) == len(ports)


def test_weed_argv_pins_every_port_and_disables_side_services(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    argv = c.weed_argv(state, tmp_path, tmp_path / "ids.json")
    for name, port in state.s3.ports.items():
        assert any(a.endswith(f"={port}") for a in argv), name
    assert "-s3.port.iceberg=0" in argv and "-s3.port.lance=0" in argv
    assert all("127.0.0.1" in a for a in argv if a.startswith("-ip"))


def test_redis_password_is_in_a_private_file_not_on_argv(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    conf = c.write_redis_conf(state, tmp_path)
    assert state.redis.password not in " ".join(c.redis_argv(conf))
    assert stat.S_IMODE(os.stat(conf).st_mode) == 0o600
    assert f"requirepass {state.redis.password}" in conf.read_text()


def test_postgres_runs_as_the_postgres_user_when_root(tmp_path: Path) -> None:
    state = _new_state(tmp_path)
    argv = c.postgres_argv(state)
    if os.geteuid() == 0:
        assert argv[:2] == ["setpriv", "--reuid=postgres"]
    assert "listen_addresses=127.0.0.1" in argv


def test_process_identity_survives_only_for_the_process_we_started(tmp_path: Path) -> None:
    ref = start_process(["sleep", "30"], log_file=tmp_path / "x.log")
    assert is_running(ref)
    impostor = ProcRef(pid=ref.pid, start_ticks=ref.start_ticks + 1)  # a recycled pid
    assert not is_running(impostor)
    assert not stop_process(impostor)  # never signal what isn't ours
    assert is_running(ref)
    assert stop_process(ref)
    assert not is_running(ref)


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    ref = start_process([sys.executable, "-c", script], log_file=tmp_path / "x.log")
    time.sleep(0.3)
    assert stop_process(ref, timeout=0.5)
    assert not is_running(ref)
    subprocess.run(["true"], check=True)
