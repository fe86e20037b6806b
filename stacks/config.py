"""All stack configuration, read once from `Pulumi.<stack>.yaml` and validated into a frozen model.

`parse_config` is pure (a mapping in, a `StackConfig` out) so it is tested without Pulumi;
`load()` is the only place in the program that touches `pulumi.Config`. Unknown keys are
rejected and every error names its path, e.g. `compute.replicas: must be >= 1`.
Secrets are read with `require_secret` and stay `pulumi.Output`s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoenroll.contract import APP_DATABASE_ROLE, DATABASE_NAME, OWNER_DATABASE_ROLE

if TYPE_CHECKING:
    from stacks.prerequisites import Problem

APP = "autoenroll"
ENVIRONMENTS = ("staging", "production")
GERMAN_LOCATIONS = ("fsn1", "nbg1")  # Falkenstein, Nuremberg
EU_NEON_REGIONS = ("aws-eu-central-1",)  # Frankfurt
PHASES = ("pre-revenue", "growth", "scale")


class StackConfigError(ValueError):
    """A configuration value is missing or invalid; the message starts with its path."""


@dataclass(frozen=True)
class ComputeConfig:
    server_type: str
    replicas: int
    location: str
    standby: bool
    image: str
    admin_cidrs: tuple[str, ...]
    ssh_keys: tuple[tuple[str, str], ...]
    # Hetzner keeps one key per fingerprint in a project: the stack that owns the keys creates them,
    # the other looks them up by fingerprint (two stacks share one project).
    owns_ssh_keys: bool
    backups: bool
    load_balancer_type: str
    network_ip_range: str
    app_image: str
    app_version: str
    # The account the hosts' read-only registry token (secret `registryReadToken`) belongs to.
    registry_username: str = "autoenroll-deploy"

    @property
    def standby_location(self) -> str:
        """The other German location: a standby must not share the primary's failure domain."""
        return next(loc for loc in GERMAN_LOCATIONS if loc != self.location)


@dataclass(frozen=True)
class DatabaseConfig:
    owns_project: bool
    org_id: str  # Neon organization: with a personal API key, POST /projects needs it
    project_name: str
    region_id: str
    pg_version: int
    history_retention_seconds: int
    autoscaling_min_cu: float
    autoscaling_max_cu: float
    # Neon's meaning: -1 never, 0 the default (300 s), else 60..604800. None: not sent at all, which is
    # the only thing Neon's Free plan accepts (an explicit value is refused there, even 300).
    suspend_timeout_seconds: int | None
    protect_main: bool
    database_name: str
    role_name: str
    owner_role_name: str
    # "org/project/stack" read by a StackReference when owns_project is false; "" means the production
    # stack of this project in the running stack's own organization (see database.py).
    production_stack: str


@dataclass(frozen=True)
class PagesConfig:
    project_name: str
    github_owner: str
    github_repo: str
    domain: str
    production_branch: str


@dataclass(frozen=True)
class EdgeConfig:
    account_id: str
    zone_id: str
    manage_zone: bool
    app_host: str
    api_host: str
    status_host: str
    min_tls_version: str
    hsts_max_age: int
    upload_rate_limit_per_minute: int
    mailjet_dkim_selector: str
    mailjet_dkim_value: str
    dmarc_policy: str
    pages: PagesConfig | None


@dataclass(frozen=True)
class StorageConfig:
    jurisdiction: str
    location_hint: str
    temp_expiry_days: int
    abort_multipart_days: int
    backup_retention_days: int
    cors_origins: tuple[str, ...]


@dataclass(frozen=True)
class CacheConfig:
    provider: str
    region: str
    # The Redis Cloud plan this stack's database is on (stacks/data/plans.json redis_cloud); the
    # phase's by default. Only a plan with TLS fits production (policy fits-the-plan).
    plan: str = "paid"
    # REDIS_URL may be redis:// (no TLS): never in production; in staging only by this explicit
    # setting (Pulumi.staging.yaml says why). The app gets it as REDIS_ALLOW_PLAINTEXT.
    allow_plaintext: bool = False
    # The PEM bundle of the CA that signs the database's TLS certificate (Redis Cloud console: the
    # database's Security section, "Download CA certificates"; public, not a secret). The app gets it
    # as REDIS_CA_CERT; "" trusts the image's store only.
    ca_cert: str = ""


@dataclass(frozen=True)
class MonitoringConfig:
    check_frequency_seconds: int
    regions: tuple[str, ...]
    status_page_company: str
    logs_ingest_host: str
    heartbeat_period_seconds: int
    heartbeat_grace_seconds: int


@dataclass(frozen=True)
class CostConfig:
    """Usage volumes the cost estimate can't read from resources."""

    r2_storage_gb: float
    r2_class_a_millions: float
    r2_class_b_millions: float
    neon_compute_hours: float


@dataclass(frozen=True)
class StackConfig:
    environment: str
    domain: str
    phase: str
    compute: ComputeConfig
    database: DatabaseConfig
    edge: EdgeConfig
    storage: StorageConfig
    cache: CacheConfig
    monitoring: MonitoringConfig
    cost: CostConfig
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def protect(self) -> bool:
        """Data-bearing resources are protected from deletion in production."""
        return self.is_production

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.domain}"


# --------------------------------------------------------------------------- validation helpers


class _Section:
    """Reads one config object, remembering which keys were used so the rest can be rejected."""

    def __init__(self, path: str, raw: Any) -> None:
        if not isinstance(raw, Mapping):
            raise StackConfigError(f"{path}: must be an object")
        self.path, self.raw, self.used = path, raw, set[str]()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = ..., *, kind: type | tuple[type, ...] = object) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if default is ...:
                raise StackConfigError(f"{self._key(key)}: required")
            return default
        value = self.raw[key]
        if kind is not object and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise StackConfigError(f"{self._key(key)}: must be {names}, got {type(value).__name__}")
        return value

    def integer(self, key: str, default: Any = ..., *, low: int | None = None, high: int | None = None) -> int:
        value = int(self.get(key, default, kind=int))
        if low is not None and value < low:
            raise StackConfigError(f"{self._key(key)}: must be >= {low}")
        if high is not None and value > high:
            raise StackConfigError(f"{self._key(key)}: must be <= {high}")
        return value

    def number(self, key: str, default: Any = ..., *, low: float | None = None) -> float:
        value = float(self.get(key, default, kind=(int, float)))
        if low is not None and value < low:
            raise StackConfigError(f"{self._key(key)}: must be >= {low:g}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: Any = ...) -> str:
        value = str(self.get(key, default, kind=str))
        if value not in options:
            raise StackConfigError(f"{self._key(key)}: must be one of {', '.join(options)}; got {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = str(self.get(key, default, kind=str))
        if not value.strip():
            raise StackConfigError(f"{self._key(key)}: must not be empty")
        return value

    def section(self, key: str, default: Any = ...) -> _Section | None:
        raw = self.get(key, default)
        return None if raw is None else _Section(self._key(key), raw)

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise StackConfigError(f"{self._key(unknown[0])}: unknown key")


def _cidrs(section: _Section, key: str) -> tuple[str, ...]:
    values = section.get(key, kind=list)
    out = []
    for index, value in enumerate(values):
        path = f"{section._key(key)}[{index}]"
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise StackConfigError(f"{path}: not a CIDR: {value!r}") from None
        if net.prefixlen == 0:
            raise StackConfigError(f"{path}: SSH must never be open to the world ({value})")
        out.append(str(net))
    if not out:
        raise StackConfigError(f"{section._key(key)}: at least one admin CIDR is required")
    return tuple(out)


SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


def _key_blob(value: str) -> bytes | None:
    """The decoded key of an OpenSSH public key line, or None when it is not one.

    The base64 blob starts with its own length-prefixed type name, which must match the line's
    type: a prefix check alone accepts any text after `ssh-ed25519 `."""
    parts = value.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return None
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return None
    length = int.from_bytes(blob[:4], "big")
    if len(blob) < 4 + length or blob[4:4 + length] != parts[0].encode() or len(blob) <= 4 + length:
        return None
    return blob


def ssh_fingerprint(public_key: str) -> str:
    """Hetzner's fingerprint of a key: MD5 of the key blob, as colon-separated hex."""
    blob = _key_blob(public_key)
    if blob is None:
        raise ValueError("not an OpenSSH public key")
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _ssh_keys(section: _Section, key: str) -> tuple[tuple[str, str], ...]:
    raw = section.get(key, kind=dict)
    keys = []
    for name, value in sorted(raw.items()):
        if _key_blob(str(value)) is None:
            raise StackConfigError(f"{section._key(key)}.{name}: not an OpenSSH public key "
                                   f"(expected '<{'|'.join(SSH_KEY_TYPES[:2])}|...> <base64 key> [comment]')")
        keys.append((str(name), str(value)))
    if not keys:
        raise StackConfigError(f"{section._key(key)}: at least one SSH key is required")
    return tuple(keys)


# --------------------------------------------------------------------------- the parser


def parse_config(raw: Mapping[str, Any], stack: str, *, refuse_placeholders: bool = False) -> StackConfig:
    """Validate the stack's `autoenroll:*` config (keys without the namespace) into a StackConfig.

    `refuse_placeholders` is what the real program (`load`, run by every pulumi preview/up) passes:
    the committed stack files hold example values (stacks.prerequisites.placeholders) that build hosts
    nobody can log in to. The offline plan and the tests read the committed files as they are and
    leave it off (`ops plan` warns, `ops doctor` lists them)."""
    if stack not in ENVIRONMENTS:
        raise StackConfigError(f"stack: must be one of {', '.join(ENVIRONMENTS)}; got {stack!r}")
    from stacks import plans

    top = _Section("", raw)
    environment = top.choice("environment", ENVIRONMENTS)
    if environment != stack:
        raise StackConfigError(f"environment: is {environment!r} but the stack is {stack!r}")
    production = environment == "production"
    phase = top.choice("phase", PHASES, "pre-revenue")

    c = top.section("compute")
    assert c is not None
    compute = ComputeConfig(
        server_type=c.text("server_type"),
        replicas=c.integer("replicas", 1, low=1, high=20),
        location=c.choice("location", GERMAN_LOCATIONS),
        standby=bool(c.get("standby", production, kind=bool)),
        image=c.text("image", "debian-12"),
        admin_cidrs=_cidrs(c, "admin_cidrs"),
        ssh_keys=_ssh_keys(c, "ssh_keys"),
        owns_ssh_keys=bool(c.get("owns_ssh_keys", production, kind=bool)),
        backups=bool(c.get("backups", production, kind=bool)),
        load_balancer_type=c.text("load_balancer_type", "lb11"),
        network_ip_range=c.text("network_ip_range", "10.20.0.0/16"),
        app_image=c.text("app_image"),
        app_version=c.text("app_version"),
        registry_username=c.text("registry_username", "autoenroll-deploy"),
    )
    c.done()
    if not ipaddress.ip_network(compute.network_ip_range).is_private:
        raise StackConfigError("compute.network_ip_range: must be a private (RFC 1918) range")

    d = top.section("database")
    assert d is not None
    # Defaults follow the phase's Neon plan (stacks/data/plans.json): the seed's 7 days of history
    # where the plan has them (Free keeps 6 hours), production never suspended where the plan
    # allows it (-1; 0 would mean Neon's default of 300 s), `main` protected where the plan has
    # protected branches. An explicit value outside the plan fails the fits-the-plan policy.
    owns_project = bool(d.get("owns_project", production, kind=bool))
    neon_history = int(plans.limit(phase, "neon", "max_history_seconds").value)
    never_suspend = bool(plans.limit(phase, "neon", "can_disable_suspend").value)
    can_set_suspend = bool(plans.limit(phase, "neon", "can_set_suspend_timeout").value)
    suspend_default = (-1 if production and never_suspend else 300) if can_set_suspend else None
    database = DatabaseConfig(
        owns_project=owns_project,
        org_id=d.text("org_id") if owns_project else str(d.get("org_id", "", kind=str)),
        project_name=d.text("project_name", APP),
        region_id=d.choice("region_id", EU_NEON_REGIONS, "aws-eu-central-1"),
        pg_version=d.integer("pg_version", 17, low=14, high=17),
        history_retention_seconds=d.integer("history_retention_seconds", min(7 * 86400, neon_history), low=3600,
                                            high=30 * 86400),
        autoscaling_min_cu=d.number("autoscaling_min_cu", 0.25, low=0.25),
        autoscaling_max_cu=d.number("autoscaling_max_cu", 1.0, low=0.25),
        suspend_timeout_seconds=(d.integer("suspend_timeout_seconds", suspend_default, low=-1, high=604800)
                                 if "suspend_timeout_seconds" in d.raw or suspend_default is not None
                                 else d.get("suspend_timeout_seconds", None)),
        protect_main=bool(d.get("protect_main",
                                int(plans.limit(phase, "neon", "protected_branches").value) > 0, kind=bool)),
        database_name=d.text("database_name", DATABASE_NAME),
        role_name=d.text("role_name", APP_DATABASE_ROLE),
        owner_role_name=d.text("owner_role_name", OWNER_DATABASE_ROLE),
        production_stack=str(d.get("production_stack", "", kind=str)),
    )
    d.done()
    if database.org_id and not re.fullmatch(r"[a-z0-9-]{1,60}", database.org_id):
        raise StackConfigError(f"database.org_id: {database.org_id!r} is not a Neon organization id (e.g. org-cool-41)")
    if database.suspend_timeout_seconds is not None and 0 < database.suspend_timeout_seconds < 60:
        raise StackConfigError("database.suspend_timeout_seconds: must be -1 (never), 0 (Neon's default, 300 s) "
                               "or 60..604800")
    if database.autoscaling_max_cu < database.autoscaling_min_cu:
        raise StackConfigError("database.autoscaling_max_cu: must be >= database.autoscaling_min_cu")

    e = top.section("edge")
    assert e is not None
    p = e.section("pages", None)
    pages = None
    if p is not None:
        pages = PagesConfig(project_name=p.text("project_name"), github_owner=p.text("github_owner"),
                            github_repo=p.text("github_repo"), domain=p.text("domain"),
                            production_branch=p.text("production_branch", "main"))
        p.done()
    edge = EdgeConfig(
        account_id=e.text("account_id"),
        zone_id=e.text("zone_id"),
        manage_zone=bool(e.get("manage_zone", production, kind=bool)),
        app_host=e.text("app_host"),
        api_host=e.text("api_host"),
        status_host=e.text("status_host", "status"),
        min_tls_version=e.choice("min_tls_version", ("1.2", "1.3"), "1.2"),
        hsts_max_age=e.integer("hsts_max_age", 31536000, low=86400),
        upload_rate_limit_per_minute=e.integer("upload_rate_limit_per_minute", 30, low=1),
        mailjet_dkim_selector=e.text("mailjet_dkim_selector", "mailjet"),
        mailjet_dkim_value=e.text("mailjet_dkim_value"),
        dmarc_policy=e.choice("dmarc_policy", ("none", "quarantine", "reject"), "quarantine"),
        pages=pages,
    )
    e.done()

    s = top.section("storage", {})
    assert s is not None
    storage = StorageConfig(
        jurisdiction=s.choice("jurisdiction", ("eu", "default", "fedramp"), "eu"),
        location_hint=s.text("location_hint", "weur"),
        temp_expiry_days=s.integer("temp_expiry_days", 1, low=1),
        abort_multipart_days=s.integer("abort_multipart_days", 1, low=1),
        backup_retention_days=s.integer("backup_retention_days", 400, low=30),
        cors_origins=tuple(s.get("cors_origins", [], kind=list)),
    )
    s.done()

    k = top.section("cache", {})
    assert k is not None
    cache = CacheConfig(provider=k.choice("provider", ("redis-cloud",), "redis-cloud"),
                        region=k.text("region", "aws-eu-central-1"),
                        plan=k.choice("plan", tuple(plans.plans_of("redis_cloud")),
                                      plans.plan_of(phase, "redis_cloud")),
                        allow_plaintext=bool(k.get("allow_plaintext", False, kind=bool)),
                        ca_cert=str(k.get("ca_cert", "", kind=str)).strip())
    k.done()
    if cache.ca_cert and "-----BEGIN CERTIFICATE-----" not in cache.ca_cert:
        raise StackConfigError("cache.ca_cert: must be PEM certificates (-----BEGIN CERTIFICATE-----)")
    if cache.allow_plaintext and production:
        raise StackConfigError("cache.allow_plaintext: not allowed in production (sessions and the token "
                               "blacklist must reach Redis over TLS: rediss://)")

    m = top.section("monitoring", {})
    assert m is not None
    monitoring = MonitoringConfig(
        check_frequency_seconds=m.integer(
            "check_frequency_seconds",
            max(60 if production else 180, int(plans.limit(phase, "betterstack", "min_check_frequency_seconds").value)),
            low=30),
        regions=tuple(m.get("regions", ["eu"], kind=list)),
        status_page_company=m.text("status_page_company", "AutoEnroll"),
        logs_ingest_host=m.text("logs_ingest_host"),
        heartbeat_period_seconds=m.integer("heartbeat_period_seconds", 86400, low=30),
        heartbeat_grace_seconds=m.integer("heartbeat_grace_seconds", 7200, low=0),
    )
    m.done()
    for index, region in enumerate(monitoring.regions):
        if region not in ("us", "eu", "as", "au"):
            raise StackConfigError(f"monitoring.regions[{index}]: must be one of us, eu, as, au")

    v = top.section("cost", {})
    assert v is not None
    cost = CostConfig(
        r2_storage_gb=v.number("r2_storage_gb", 5, low=0),
        r2_class_a_millions=v.number("r2_class_a_millions", 0.2, low=0),
        r2_class_b_millions=v.number("r2_class_b_millions", 2, low=0),
        # One always-on 0.25 CU endpoint is ~183 CU-hours a month; suspended branches add little.
        neon_compute_hours=v.number("neon_compute_hours", 190 if production else 60, low=0),
    )
    v.done()

    config = StackConfig(
        environment=environment,
        domain=top.text("domain"),
        phase=phase,
        compute=compute, database=database, edge=edge, storage=storage, cache=cache, monitoring=monitoring,
        cost=cost,
        # The phase is a label too: the fits-the-plan policy (also run by CrossGuard, which sees only
        # resources) reads the phase's plans from it.
        labels={"app": APP, "environment": environment, "phase": phase, "managed-by": "pulumi"},
    )
    top.done()
    if refuse_placeholders:
        from stacks.prerequisites import placeholders

        found = placeholders(raw, stack)
        if found:
            raise StackConfigError(_all_problems(found, stack))
    return config


def _all_problems(problems: list[Problem], stack: str) -> str:
    """One message for several problems: each line starts with its path or key; the first line too."""
    lines = [p.line() for p in problems]
    return (lines[0] + "".join(f"\n  {line}" for line in lines[1:])
            + f"\n  ({len(lines)} problem(s); `ops doctor --stack {stack}` lists every prerequisite)")


SECRET_KEYS = ("redisUrl", "sentryDsn", "r2AccessKeyId", "r2SecretAccessKey", "betterstackLogsToken", "authSecret",
               "registryReadToken")
SCALAR_KEYS = ("environment", "domain", "phase")
PLAIN_KEYS = ("environment", "domain", "phase", "compute", "database", "edge", "storage", "cache", "monitoring",
              "cost")


def load() -> StackConfig:
    """Read `autoenroll:*` from the running stack (the only pulumi.Config read in the program).

    Before any resource is registered it checks every prerequisite at once: each stack secret, the
    providers' credentials and the variables the dynamic providers read (NEON_API_KEY, ...) only inside
    their `create`, mid-update, and every placeholder value. One error lists them all."""
    import os

    import pulumi

    from stacks.prerequisites import missing, placeholders

    cfg = pulumi.Config(APP)
    raw: dict[str, Any] = {}
    for key in PLAIN_KEYS:
        value = cfg.get(key) if key in SCALAR_KEYS else cfg.get_object(key)
        if value is not None:
            raw[key] = value
    stack = pulumi.get_stack()

    def stack_secret(name: str) -> str | None:
        # Presence only, read from the engine's config map: get_secret would make an Output (a pending
        # task) for each key just to test it, and the value is not kept.
        from pulumi.runtime.config import get_config

        return None if get_config(name) is None else "secure"

    problems = missing(stack, stack_secret, os.environ) + placeholders(raw, stack)
    if problems:
        raise StackConfigError(_all_problems(problems, stack))
    return parse_config(raw, stack, refuse_placeholders=True)


def secret(key: str) -> Any:
    """A required secret config value, as a secret Output (never a plain string)."""
    import pulumi

    if key not in SECRET_KEYS:
        raise StackConfigError(f"{key}: not a declared secret key")
    return pulumi.Config(APP).require_secret(key)
