"""Bad input exits 2 everywhere, confirmations can't be skipped by --json, Ctrl-C says what was left,
and dependency exceptions are mapped at the boundary (no sandbox needed)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import psycopg
import pytest
from botocore.exceptions import EndpointConnectionError
from pydantic import SecretStr
from typer.testing import CliRunner

from ops import __version__, errors
from ops.adapters.cloud.s3_store import S3ObjectStore
from ops.cli import app, base, envcmd
from ops.environment import ObjectStorage

pytestmark = pytest.mark.unit
runner = CliRunner()

OUTPUTS = {
    "environment": "staging",
    "public_url": "https://staging.autoenroll.ie",
    "r2_endpoint": "https://acct.eu.r2.cloudflarestorage.com",
    "buckets": {"backups": "autoenroll-staging-backups"},
    "connection_strings": {"staging": {"direct": "postgresql://o:pw@ep-1.neon.tech/app"}},
    "servers": [{"name": "app-1", "role": "primary", "ipv4": "203.0.113.7"}],
}


@pytest.mark.parametrize("command", [["backup", "verify"], ["backup", "restore"],
                                     ["backup", "fetch", "--out", "x.age"]])
def test_a_backup_needs_an_id_or_latest(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--env", "production"])  # refused before production is resolved
    assert result.exit_code == 2, result.output
    assert "give a backup id or --latest" in result.output


def test_an_id_and_latest_together_are_a_conflict() -> None:
    result = runner.invoke(app, ["backup", "restore", "20260101T000000Z", "--latest", "--env", "production"])
    assert result.exit_code == 2, result.output
    assert "not both" in result.output


def test_an_unknown_sandbox_component_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_SANDBOX_DIR", str(tmp_path))
    result = runner.invoke(app, ["sandbox", "logs", "nosuch"])
    assert result.exit_code == 2, result.output
    assert "unknown component 'nosuch'" in result.output and "app-primary" in result.output


def _outputs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: object) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(path))
    return path


def test_outputs_pointing_at_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(tmp_path))
    result = runner.invoke(app, ["env", "show", "--env", "staging"])
    assert result.exit_code == 2, result.output
    assert "is a folder, not a file" in result.output


def test_a_missing_outputs_file_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(tmp_path / "absent.json"))
    result = runner.invoke(app, ["env", "show", "--env", "staging"])
    assert result.exit_code == 5, result.output  # as runbooks/backups.md says
    assert "does not exist" in result.output and "pulumi stack output" in result.output


@pytest.mark.parametrize(("change", "path"), [
    ({"servers": [{"name": "app-1", "role": "primary", "ipv4": 7}]}, "servers[0].ipv4"),
    ({"servers": [{"name": "app-1", "role": "boss", "ipv4": "203.0.113.7"}]}, "servers[0].role"),
    ({"connection_strings": {"staging": "postgresql://o@h/app"}}, "connection_strings.staging"),
    ({"buckets": ["backups"]}, "buckets"),
])
def test_wrongly_shaped_outputs_name_the_key_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  change: dict[str, object], path: str) -> None:
    _outputs_file(tmp_path, monkeypatch, {**OUTPUTS, **change})
    result = runner.invoke(app, ["env", "show", "--env", "staging"])
    assert result.exit_code == 2, result.output
    assert f"stack outputs for staging: {path}:" in result.output
    assert "pw@" not in result.output


def test_env_show_needs_no_storage_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _outputs_file(tmp_path, monkeypatch, OUTPUTS)
    monkeypatch.delenv("R2_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("R2_SECRET_ACCESS_KEY", raising=False)
    result = runner.invoke(app, ["env", "show", "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["buckets"] == OUTPUTS["buckets"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith(f"ops {__version__} (pg_dump 1")


def test_procurement_takes_json_not_format() -> None:
    result = runner.invoke(app, ["procurement", "--stack", "staging", "--format", "json"])
    assert result.exit_code == 2 and "--format" in result.output


def test_ctrl_c_says_what_was_left_and_how_to_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_name: str) -> None:
        base.on_interrupt("nothing was changed; run it again")
        raise KeyboardInterrupt

    monkeypatch.setattr(envcmd, "resolve", interrupted)
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 130
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("interrupted:")
    assert "env show stopped; nothing was changed; run it again" in lines[0]


def test_ctrl_c_without_a_note_names_the_resume(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(_name: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(envcmd, "resolve", interrupted)
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 130
    assert "run the same command again" in result.output


def test_a_dependency_exception_that_escaped_an_adapter_is_exit_7(monkeypatch: pytest.MonkeyPatch) -> None:
    def down(_name: str) -> None:
        raise psycopg.OperationalError("connection to server at 127.0.0.1 failed: password=hunter22")

    monkeypatch.setattr(envcmd, "resolve", down)
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 7, result.output
    assert "unexpected" not in result.output
    assert "OperationalError: connection to server at 127.0.0.1 failed" in result.output


def test_a_bug_is_still_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def bug(_name: str) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(envcmd, "resolve", bug)
    result = runner.invoke(app, ["env", "show", "--env", "local"])
    assert result.exit_code == 1 and "unexpected KeyError" in result.output


def test_map_exceptions_maps_only_what_it_is_told() -> None:
    with pytest.raises(errors.ExternalError, match=r"^S3 list: boom$"), \
            errors.map_exceptions({ValueError: errors.ExternalError}, "S3 list"):
        raise ValueError("boom\nsecond line")
    with pytest.raises(KeyError), errors.map_exceptions({ValueError: errors.ExternalError}, "x"):
        raise KeyError("a bug passes through")


def test_s3_boundary_maps_botocore_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    storage = ObjectStorage(endpoint_url="http://127.0.0.1:9", region="auto", access_key_id=SecretStr("k"),
                            secret_access_key=SecretStr("s"), buckets={"backups": "b"})
    store = S3ObjectStore(storage, "backups")

    def unreachable(**_kwargs: object) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b")

    for method in ("get_object", "head_object", "put_object", "list_objects_v2"):
        monkeypatch.setattr(store._client, method, unreachable)
    for call in (lambda: store.get_bytes("k"), lambda: store.size("k"), lambda: store.put_bytes("k", b"x"),
                 lambda: store.list_keys(""), lambda: list(store.stream("k"))):
        with pytest.raises(errors.ExternalError, match="Could not connect to the endpoint URL"):
            call()


def test_s3_needs_its_keys_only_when_used() -> None:
    storage = ObjectStorage(endpoint_url=None, region="auto", access_key_id=None, secret_access_key=None,
                            buckets={"backups": "b"})
    with pytest.raises(errors.ConfigError, match="R2_ACCESS_KEY_ID: required to reach object storage"):
        S3ObjectStore(storage, "backups")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_typed_confirmation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("production\n"))
    base.typed_confirmation("production", "replace the database")  # the right name: goes ahead
    monkeypatch.setattr("sys.stdin", _Terminal("prod\n"))
    with pytest.raises(errors.ConfirmationRequired, match="not confirmed"):
        base.typed_confirmation("production", "replace the database")
    monkeypatch.setattr("sys.stdin", io.StringIO("production\n"))  # a pipe is not a person
    with pytest.raises(errors.ConfirmationRequired, match="no terminal"):
        base.typed_confirmation("production", "replace the database")


def test_a_provider_answering_html_is_a_provider_error() -> None:
    from ops.adapters.cloud.clients import JsonApiClient

    transport = httpx.MockTransport(lambda _r: httpx.Response(200, text="<html>gateway</html>"))
    with JsonApiClient("https://api.example.invalid", "t", transport=transport) as client, \
            pytest.raises(errors.ProviderAPIError, match="the answer is not JSON"):
        client.request("GET", "/things")
