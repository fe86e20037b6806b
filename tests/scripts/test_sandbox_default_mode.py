"""`ops sandbox up` with neither --containers nor --processes: a new sandbox runs containers when a
Docker engine can be had; an existing one keeps its mode (the suite's sandboxes call `up` directly
and stay on processes, see ops.sandbox.manager.default_containers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops.sandbox import manager


def test_a_new_sandbox_defaults_to_containers_when_an_engine_can_be_had(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPS_SANDBOX_DOCKER_HOST", raising=False)
    monkeypatch.setattr("ops.sandbox.images.missing_lab_tools", lambda: [])
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert manager.default_containers(tmp_path / "new") is True
    monkeypatch.setattr("ops.sandbox.images.missing_lab_tools", lambda: ["dockerd"])
    assert manager.default_containers(tmp_path / "new") is False  # no engine: processes
    monkeypatch.setenv("OPS_SANDBOX_DOCKER_HOST", "unix:///run/other.sock")
    assert manager.default_containers(tmp_path / "new") is True  # someone else's engine


def test_an_existing_sandbox_keeps_its_mode(sandbox_root: Path) -> None:
    assert manager.default_containers(sandbox_root) is None
