"""The CLI's conventions: one error tree, documented exit codes, one red line, --json."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from ops import errors
from ops.cli import app
from ops.secrets import mask_url, scrub_text

pytestmark = pytest.mark.unit
runner = CliRunner()


def test_every_error_class_is_documented_in_the_tree_with_its_exit_code() -> None:
    doc = errors.__doc__ or ""
    for name, code in errors.EXIT_CODES.items():
        assert re.search(rf"{name}\s+exit {code}\b", doc), f"{name} (exit {code}) missing from the drawn tree"


def test_exit_codes_are_distinct_except_the_root() -> None:
    codes = [c for n, c in errors.EXIT_CODES.items() if n != "OpsError"]
    assert len(codes) == len(set(codes))


def test_unknown_environment_is_a_config_error_with_exit_2(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPS_SANDBOX_DIR", str(tmp_path))
    result = runner.invoke(app, ["env", "show", "--env", "prod"])
    assert result.exit_code == 2
    assert "unknown environment 'prod'" in result.output
    assert "Traceback" not in result.output


def test_missing_sandbox_is_not_found_with_a_hint(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPS_SANDBOX_DIR", str(tmp_path / "none"))
    result = runner.invoke(app, ["sandbox", "status"])
    assert result.exit_code == 5
    assert "no sandbox at" in result.output
    assert "ops sandbox up" in result.output


def test_cloud_environment_without_outputs_names_what_to_set(monkeypatch) -> None:
    monkeypatch.delenv("OPS_STACK_OUTPUTS", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")  # no pulumi CLI
    result = runner.invoke(app, ["env", "show", "--env", "staging"])
    assert result.exit_code == 2
    assert "OPS_STACK_OUTPUTS" in result.output


def test_env_show_from_stack_outputs_hides_secrets(tmp_path, monkeypatch) -> None:
    outputs = {
        "environment": "staging",
        "public_url": "https://staging.autoenroll.ie",
        "r2_endpoint": "https://acct.eu.r2.cloudflarestorage.com",
        "buckets": {"uploads": "autoenroll-staging-uploads"},
        "connection_strings": {"staging": {"direct": "postgresql://o:supersecretpw@ep-1.neon.tech/app",
                                           "pooled": "postgresql://o:supersecretpw@ep-1-pooler.neon.tech/app"}},
        "servers": [{"name": "app-1", "role": "primary", "ipv4": "203.0.113.7"}],
    }
    path = tmp_path / "out.json"
    path.write_text(json.dumps(outputs))
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(path))
    monkeypatch.setenv("R2_ACCESS_KEY_ID", "AKIAEXAMPLEKEY")
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", "r2-secret-value-xyz")
    result = runner.invoke(app, ["env", "show", "--env", "staging", "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["branch"] == "staging"
    assert view["app_hosts"][0]["address"] == "203.0.113.7"
    for secret in ("supersecretpw", "r2-secret-value-xyz", "AKIAEXAMPLEKEY"):
        assert secret not in result.output


def test_malformed_stack_outputs_name_the_missing_key(tmp_path, monkeypatch) -> None:
    path = tmp_path / "out.json"
    path.write_text(json.dumps({"environment": "production", "public_url": "https://x"}))
    monkeypatch.setenv("OPS_STACK_OUTPUTS", str(path))
    result = runner.invoke(app, ["env", "show", "--env", "production"])
    assert result.exit_code == 2
    assert "missing key 'connection_strings'" in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p4ss@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("redis://:s3cr3t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("https://example.com/x", "https://example.com/x"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_scrub_text_masks_urls_and_literal_secrets() -> None:
    text = "failed: connection to postgresql://app:hunter22@db/main refused; token=abcd1234"
    out = scrub_text(text, ["abcd1234"])
    assert "hunter22" not in out and "abcd1234" not in out
    assert "postgresql://app:***@db/main" in out
