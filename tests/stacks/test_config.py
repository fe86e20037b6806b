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


# --------------------------------------------------------------------------- placeholders and prerequisites


PLACEHOLDER_PATHS = {
    "production": ["compute.admin_cidrs[0]", "compute.ssh_keys.oncall", "database.org_id", "edge.account_id",
                   "edge.zone_id", "edge.mailjet_dkim_value", "monitoring.logs_ingest_host"],
    "staging": ["compute.admin_cidrs[0]", "compute.ssh_keys.oncall", "edge.account_id", "edge.zone_id",
                "monitoring.logs_ingest_host"],
}


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_the_program_refuses_every_placeholder_of_the_committed_file_in_one_message(stack: str) -> None:
    """A half-edited stack file must not build hosts nobody can log in to: every placeholder at once,
    each line starting with its path."""
    with pytest.raises(StackConfigError) as error:
        parse_config(namespaced_config(stack), stack, refuse_placeholders=True)
    lines = str(error.value).splitlines()
    named = [line.strip().split(":", 1)[0] for line in lines[:-1]]
    assert named == PLACEHOLDER_PATHS[stack]
    assert f"edit Pulumi.{stack}.yaml" in lines[0] and f"ops doctor --stack {stack}" in lines[-1]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_real_values_pass_the_strict_validation(stack: str) -> None:
    from tests.stack_fixtures import real_looking_config

    assert parse_config(real_looking_config(stack), stack, refuse_placeholders=True).environment == stack


@pytest.mark.parametrize(("section", "key", "value"), [
    ("compute", "admin_cidrs", ["203.0.113.7/32"]),
    ("compute", "admin_cidrs", ["2001:db8::/48"]),
    ("database", "org_id", "org-00000000"),
    ("edge", "zone_id", "0" * 32),
    ("monitoring", "logs_ingest_host", "s0000000.eu-nbg-2.betterstackdata.com"),
])
def test_each_kind_of_placeholder_is_refused_alone(section: str, key: str, value: Any) -> None:
    from tests.stack_fixtures import real_looking_config

    config = real_looking_config("production")
    config[section][key] = value
    with pytest.raises(StackConfigError, match=rf"^{section}\.{key}"):
        parse_config(config, "production", refuse_placeholders=True)


@pytest.fixture()
def engine_config() -> Any:
    """The engine's config map as it was before the test, put back after it."""
    from pulumi.runtime import config as runtime_config

    saved = runtime_config.CONFIG.get(), runtime_config._SECRET_KEYS.get()
    yield
    runtime_config.CONFIG.set(saved[0])
    runtime_config._SECRET_KEYS.set(saved[1])


def _load_under_pulumi(monkeypatch: pytest.MonkeyPatch, stack: str, values: dict[str, Any],
                       secrets: dict[str, str], environ: dict[str, str]) -> Any:
    """stacks.config.load() as `pulumi preview` runs it: config from the engine, the job's environment."""
    import json

    import pulumi

    from stacks import config as stack_config
    from stacks.prerequisites import PREREQUISITES

    for item in PREREQUISITES:
        monkeypatch.delenv(item.name, raising=False)
        if item.alternative:
            monkeypatch.delenv(item.alternative, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)

    # The engine's config map and the stack name are all load() reads from Pulumi (no mocks needed:
    # setting them leaves no pending Output behind for the next test's program run).
    monkeypatch.setattr(pulumi, "get_stack", lambda: stack)
    pulumi.runtime.set_all_config(
        {f"autoenroll:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()} | secrets,
        list(secrets))
    return stack_config.load()


@pytest.mark.usefixtures("engine_config")
def test_load_names_every_missing_secret_and_variable_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """require_secret stopped at the first missing key, and NEON_API_KEY & co. surfaced only inside a
    dynamic provider's create, mid-update: now one error, before any resource, lists them all."""
    with pytest.raises(StackConfigError) as error:
        _load_under_pulumi(monkeypatch, "production", namespaced_config("production"), {}, {})
    message = str(error.value)
    for key in ("autoenroll:redisUrl", "autoenroll:sentryDsn", "autoenroll:r2AccessKeyId",
                "autoenroll:r2SecretAccessKey", "autoenroll:betterstackLogsToken", "autoenroll:authSecret",
                "autoenroll:registryReadToken", "hcloud:token", "cloudflare:apiToken", "NEON_API_KEY",
                "BETTERSTACK_API_TOKEN", "STRIPE_API_KEY", *PLACEHOLDER_PATHS["production"]):
        assert any(line.strip().startswith(f"{key}:") for line in message.splitlines()), key
    assert "pulumi config set --secret redisUrl --stack production" in message


@pytest.mark.usefixtures("engine_config")
def test_load_accepts_a_complete_stack_and_the_providers_environment_variables(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stacks.config import SECRET_KEYS
    from tests.stack_fixtures import real_looking_config

    secrets = {f"autoenroll:{k}": f"value-of-{k}" for k in SECRET_KEYS}
    environ = {"HCLOUD_TOKEN": "h", "CLOUDFLARE_API_TOKEN": "c", "NEON_API_KEY": "n", "BETTERSTACK_API_TOKEN": "b",
               "STRIPE_API_KEY": "s"}
    config = _load_under_pulumi(monkeypatch, "production", real_looking_config("production"), secrets, environ)
    assert config.environment == "production"


def test_the_declared_secret_keys_are_the_documented_stack_secrets() -> None:
    from stacks.config import SECRET_KEYS
    from stacks.prerequisites import PREREQUISITES, STACK_SECRET

    documented = {p.name.split(":", 1)[1] for p in PREREQUISITES
                  if p.kind == STACK_SECRET and p.name.startswith("autoenroll:")}
    assert documented == set(SECRET_KEYS)


@pytest.mark.parametrize(("mutate", "message"), [
    # A section written as `storage:` with nothing under it is YAML's null: named, not an AssertionError.
    (lambda c: c.update(storage=None), r"^storage: must be an object$"),
    # YAML's `yes`/`true` is a bool, which Python counts as an int: not a number of gigabytes.
    (lambda c: c.setdefault("cost", {}).update(r2_storage_gb=True),
     r"^cost\.r2_storage_gb: must be int or float, got bool$"),
])
def test_a_null_section_and_a_bool_for_a_number_fail_naming_the_key(mutate: Any, message: str) -> None:
    config = production()
    mutate(config)
    with pytest.raises(StackConfigError, match=message):
        parse_config(config, "production")


def test_every_component_gets_its_own_section_not_the_whole_config() -> None:
    """The args of each stack component carry one section (and the stack's names), never a StackConfig."""
    import dataclasses

    from stacks import billing, cache, compute, database, edge, monitoring, storage

    for args in (billing.BillingArgs, cache.CacheArgs, compute.ComputeArgs, database.DatabaseArgs, edge.EdgeArgs,
                 monitoring.MonitoringArgs, storage.StorageArgs):
        # The modules use `from __future__ import annotations`: each field's type is its source text.
        types = {f.name: str(f.type) for f in dataclasses.fields(args)}
        assert "names" in types, f"{args.__name__} has no StackNames"
        assert not any("StackConfig" in t for t in types.values()), f"{args.__name__} carries the whole StackConfig"
