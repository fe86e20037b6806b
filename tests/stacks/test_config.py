"""Stack config: validated once, unknown keys rejected, every error names its path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks.config import StackConfigError, parse_config
from stacks.plan import namespaced_config

pytestmark = pytest.mark.stacks


def production() -> dict[str, Any]:
    return copy.deepcopy(namespaced_config("production"))


def test_both_stack_files_parse() -> None:
    for stack in ("staging", "production"):
        config = parse_config(namespaced_config(stack), stack)
        assert config.environment == stack


def test_production_defaults_protect_and_standby_in_the_other_location() -> None:
    config = parse_config(production(), "production")
    assert config.protect and config.compute.standby
    assert {config.compute.location, config.compute.standby_location} == {"fsn1", "nbg1"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c["compute"].update(replicas=0), r"^compute\.replicas: must be >= 1$"),
        (lambda c: c["compute"].update(location="hel1"), r"^compute\.location: must be one of fsn1, nbg1"),
        (lambda c: c["compute"].update(admin_cidrs=["0.0.0.0/0"]), r"^compute\.admin_cidrs\[0\]: SSH must never"),
        (lambda c: c["compute"].update(admin_cidrs=["not-a-net"]), r"^compute\.admin_cidrs\[0\]: not a CIDR"),
        (lambda c: c["compute"].update(colour="blue"), r"^compute\.colour: unknown key$"),
        (lambda c: c["compute"].pop("server_type"), r"^compute\.server_type: required$"),
        (lambda c: c["compute"].update(replicas="2"), r"^compute\.replicas: must be int, got str$"),
        (lambda c: c["database"].update(region_id="aws-us-east-2"), r"^database\.region_id: must be one of"),
        (lambda c: c["database"].update(history_retention_seconds=600), r"^database\.history_retention_seconds"),
        (lambda c: c["database"].update(suspend_timeout_seconds=30), r"^database\.suspend_timeout_seconds: must be -1"),
        (lambda c: c["database"].pop("org_id"), r"^database\.org_id: required$"),
        (lambda c: c["database"].update(org_id="My Org"), r"^database\.org_id: 'My Org' is not a Neon"),
        (lambda c: c["monitoring"].pop("logs_ingest_host"), r"^monitoring\.logs_ingest_host: required$"),
        (lambda c: c["compute"]["ssh_keys"].update(bad="ssh-ed25519 not-a-key"), r"^compute\.ssh_keys\.bad: not an"),
        (lambda c: c["compute"]["ssh_keys"].update(bad="ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB x"),
         r"^compute\.ssh_keys\.bad: not an OpenSSH"),
        (lambda c: c["database"].update(autoscaling_max_cu=0.25, autoscaling_min_cu=1),
         r"^database\.autoscaling_max_cu: must be >= database\.autoscaling_min_cu$"),
        (lambda c: c["edge"].update(min_tls_version="1.0"), r"^edge\.min_tls_version: must be one of 1\.2, 1\.3"),
        (lambda c: c["compute"]["ssh_keys"].update(bad="hello"), r"^compute\.ssh_keys\.bad: not an OpenSSH"),
        (lambda c: c.update(environment="staging"), r"^environment: is 'staging' but the stack is 'production'$"),
        (lambda c: c.update(surprise=1), r"^surprise: unknown key$"),
        (lambda c: c["monitoring"].update(regions=["mars"]), r"^monitoring\.regions\[0\]: must be one of"),
    ],
)
def test_bad_values_fail_naming_the_key(mutate: Any, message: str) -> None:
    config = production()
    mutate(config)
    with pytest.raises(StackConfigError, match=message):
        parse_config(config, "production")


def test_a_bad_value_fails_before_any_resource_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    import stacks.plan as plan_module

    def no_program() -> None:
        raise AssertionError("the program ran although the config was invalid")

    monkeypatch.setattr(plan_module, "_import_program", no_program)
    with pytest.raises(StackConfigError, match=r"compute\.replicas"):
        plan_module.run_plan("production", {"compute": {"replicas": -1}})


def test_no_secret_is_written_in_clear_in_the_stack_files() -> None:
    from stacks.config import SECRET_KEYS

    for stack in ("staging", "production"):
        raw = namespaced_config(stack)
        for key in SECRET_KEYS:
            value = raw.get(key)
            assert value is None or (isinstance(value, dict) and "secure" in value), f"{stack}: {key} in clear"


def staging() -> dict[str, Any]:
    return copy.deepcopy(namespaced_config("staging"))


def test_production_cannot_allow_redis_without_tls_and_staging_says_so_explicitly() -> None:
    config = production()
    config["cache"]["allow_plaintext"] = True
    with pytest.raises(StackConfigError, match=r"^cache\.allow_plaintext: not allowed in production"):
        parse_config(config, "production")
    assert parse_config(production(), "production").cache.allow_plaintext is False
    # Staging's free Redis plan has no TLS: Pulumi.staging.yaml opts out, explicitly.
    assert parse_config(staging(), "staging").cache.allow_plaintext is True
    assert parse_config(staging(), "staging").cache.plan == "free"


def test_the_redis_ca_bundle_must_be_pem() -> None:
    config = production()
    config["cache"]["ca_cert"] = "not a certificate"
    with pytest.raises(StackConfigError, match=r"^cache\.ca_cert: must be PEM certificates"):
        parse_config(config, "production")


def test_pulumi_up_refuses_a_plain_redis_url_without_the_opt_out_naming_the_key_not_the_url() -> None:
    from stacks.cache import app_env, require_tls

    url = "redis://:hunter2@redis-1.cloud.redislabs.com:1/0"
    with pytest.raises(StackConfigError, match=r"^redisUrl: must be rediss:// \(TLS\) in production") as refused:
        require_tls(url, parse_config(production(), "production"))
    assert "hunter2" not in str(refused.value)
    assert require_tls(url.replace("redis://", "rediss://"), parse_config(production(), "production"))
    allowed = parse_config(staging(), "staging")
    assert require_tls(url, allowed) == url
    assert app_env(allowed) == {"REDIS_ALLOW_PLAINTEXT": "true"}
    assert app_env(parse_config(production(), "production")) == {}
