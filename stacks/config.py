"""All stack configuration, read once from `Pulumi.<stack>.yaml` and validated into a frozen model.

`parse_config` is pure (a mapping in, a `StackConfig` out) so it is tested without Pulumi;
`load()` is the only place in the program that touches `pulumi.Config`. Unknown keys are
rejected and every error names its path, e.g. `compute.replicas: must be >= 1`.
Secrets are read with `require_secret` and stay `pulumi.Output`s.

Validated with pydantic, as `ops` validates its own files: one model per section (`extra="forbid"`),
validators where a rule crosses fields, and `_message` turns pydantic's first error (its `loc` and
type) into the path-named message above. Defaults that follow the environment or the phase's plans
(standby in production, Neon's history on the phase's plan, ...) reach the sections through the
validation context (`_context_defaults`), so each model still declares every key it accepts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from autoenroll.contract import APP_DATABASE_ROLE, DATABASE_NAME, OWNER_DATABASE_ROLE

if TYPE_CHECKING:
    from stacks.prerequisites import Problem

APP = "autoenroll"
ENVIRONMENTS = ("staging", "production")
GERMAN_LOCATIONS = ("fsn1", "nbg1")  # Falkenstein, Nuremberg
EU_NEON_REGIONS = ("aws-eu-central-1",)  # Frankfurt
PHASES = ("pre-revenue", "growth", "scale")
MONITORING_REGIONS = ("us", "eu", "as", "au")

_M = TypeVar("_M", bound=BaseModel)


class StackConfigError(ValueError):
    """A configuration value is missing or invalid; the message starts with its path."""


# --------------------------------------------------------------------------- errors: pydantic's into ours


def _invalid(message: str, at: str = "") -> PydanticCustomError:
    """A rule of ours broken: `at` extends the error's path below the field or model that raised it
    (`[0]`, `.oncall`, `.org_id`), for rules checked on a whole list, map or section."""
    return PydanticCustomError("stack_config", "{message}", {"message": message, "at": at})


def _type_name(value: Any) -> str:
    return type(value).__name__


# pydantic's error type -> our wording (the old hand-written validator's, which the tests and runbooks quote).
_EXPECTED = {"int_type": "int", "float_type": "int or float", "bool_type": "bool", "string_type": "str",
             "list_type": "list", "tuple_type": "list", "dict_type": "dict"}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _message(error: ErrorDetails) -> str:
    """One pydantic error as `path: what is wrong` (the one place that maps loc and type into our form)."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "stack_config":
        at = str(ctx.get("at", ""))
        path = path + at if path else at.removeprefix(".")
        what = str(ctx["message"])
    elif kind == "missing":
        what = "required"
    elif kind == "extra_forbidden":
        what = "unknown key"
    elif kind in ("model_type", "model_attributes_type"):
        what = "must be an object"
    elif kind in _EXPECTED:
        what = f"must be {_EXPECTED[kind]}, got {_type_name(error['input'])}"
    elif kind == "greater_than_equal":
        what = f"must be >= {_number(ctx['ge'])}"
    elif kind == "less_than_equal":
        what = f"must be <= {_number(ctx['le'])}"
    else:  # a type we have no wording for: pydantic's own
        what = error["msg"]
    return f"{path}: {what}"


def _validate(model: type[_M], raw: Any, context: dict[Any, Any]) -> _M:
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as error:
        # The first error only, as before: each message is one line starting with its path.
        raise StackConfigError(_message(error.errors(include_url=False)[0])) from None


# --------------------------------------------------------------------------- field types


def _not_empty(value: str) -> str:
    if not value.strip():
        raise _invalid("must not be empty")
    return value


Text = Annotated[StrictStr, AfterValidator(_not_empty)]


def _one_of(*options: str, say_got: bool = True) -> BeforeValidator:
    """A string among `options` (before pydantic's own check, so a wrong type and a wrong value read alike)."""

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise _invalid(f"must be str, got {_type_name(value)}")
        if value not in options:
            raise _invalid(f"must be one of {', '.join(options)}" + (f"; got {value!r}" if say_got else ""))
        return value

    return BeforeValidator(check)


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



def _admin_cidrs(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise _invalid(f"must be list, got {_type_name(values)}")
    out = []
    for index, value in enumerate(values):
        try:
            net = ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            raise _invalid(f"not a CIDR: {value!r}", f"[{index}]") from None
        if net.prefixlen == 0:
            raise _invalid(f"SSH must never be open to the world ({value})", f"[{index}]")
        out.append(str(net))
    if not out:
        raise _invalid("at least one admin CIDR is required")
    return tuple(out)


def _ssh_keys(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise _invalid(f"must be dict, got {_type_name(raw)}")
    keys = []
    for name, value in sorted(raw.items()):
        if _key_blob(str(value)) is None:
            raise _invalid(f"not an OpenSSH public key (expected '<{'|'.join(SSH_KEY_TYPES[:2])}|...> <base64 key> "
                           "[comment]')", f".{name}")
        keys.append((str(name), str(value)))
    if not keys:
        raise _invalid("at least one SSH key is required")
    return tuple(keys)


# --------------------------------------------------------------------------- the models


class _Model(BaseModel):
    """A config object: unknown keys rejected, frozen; the defaults that depend on the environment or
    the phase come from the validation context (keyed by the model's class), under the given keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _stack_defaults(cls, data: Any, info: ValidationInfo) -> Any:
        defaults = (info.context or {}).get(cls, {})
        return {**defaults, **data} if isinstance(data, Mapping) else data


class ComputeConfig(_Model):
    server_type: Text
    replicas: Annotated[StrictInt, Field(ge=1, le=20)] = 1
    location: Annotated[str, _one_of(*GERMAN_LOCATIONS)]
    standby: StrictBool  # default: production's
    image: Text = "debian-12"
    admin_cidrs: Annotated[tuple[str, ...], BeforeValidator(_admin_cidrs)]
    ssh_keys: Annotated[tuple[tuple[str, str], ...], BeforeValidator(_ssh_keys)]
    # Hetzner keeps one key per fingerprint in a project: the stack that owns the keys creates them,
    # the other looks them up by fingerprint (two stacks share one project).
    owns_ssh_keys: StrictBool  # default: production's
    backups: StrictBool  # default: production's
    load_balancer_type: Text = "lb11"
    network_ip_range: Text = "10.20.0.0/16"
    app_image: Text
    app_version: Text
    # The account the hosts' read-only registry token (secret `registryReadToken`) belongs to.
    registry_username: Text = "autoenroll-deploy"

    @field_validator("network_ip_range")
    @classmethod
    def _private(cls, value: str) -> str:
        try:
            private = ipaddress.ip_network(value).is_private
        except ValueError:
            raise _invalid(f"not a network range: {value!r}") from None
        if not private:
            raise _invalid("must be a private (RFC 1918) range")
        return value

    @property
    def standby_location(self) -> str:
        """The other German location: a standby must not share the primary's failure domain."""
        return next(loc for loc in GERMAN_LOCATIONS if loc != self.location)


class DatabaseConfig(_Model):
    owns_project: StrictBool  # default: production's
    org_id: StrictStr = ""  # Neon organization: with a personal API key, POST /projects needs it
    project_name: Text = APP
    region_id: Annotated[str, _one_of(*EU_NEON_REGIONS)] = "aws-eu-central-1"
    pg_version: Annotated[StrictInt, Field(ge=14, le=17)] = 17
    history_retention_seconds: Annotated[StrictInt, Field(ge=3600, le=30 * 86400)]  # default: the phase's plan's
    autoscaling_min_cu: Annotated[StrictFloat, Field(ge=0.25)] = 0.25
    autoscaling_max_cu: Annotated[StrictFloat, Field(ge=0.25)] = 1.0
    # Neon's meaning: -1 never, 0 the default (300 s), else 60..604800. None: not sent at all, which is
    # the only thing Neon's Free plan accepts (an explicit value is refused there, even 300).
    suspend_timeout_seconds: Annotated[StrictInt | None, Field(ge=-1, le=604800)] = None
    protect_main: StrictBool  # default: the phase's plan's
    # A read_only compute on `main` (a read replica) for the app's lag-tolerant reads, its URL in the app's
    # DATABASE_REPLICA_URL. Default: on in production where the phase's Neon plan has read replicas
    # (plans.json read_replicas); only the stack that owns `main` (production) can make one.
    read_replica: StrictBool  # default: the phase's plan's
    database_name: Text = DATABASE_NAME
    role_name: Text = APP_DATABASE_ROLE
    owner_role_name: Text = OWNER_DATABASE_ROLE
    # "org/project/stack" read by a StackReference when owns_project is false; "" means the production
    # stack of this project in the running stack's own organization (see database.py).
    production_stack: StrictStr = ""

    @model_validator(mode="before")
    @classmethod
    def _explicit_suspend_is_a_number(cls, data: Any) -> Any:
        # None is only the default (a plan without the setting); written in the file it is a mistake.
        if isinstance(data, Mapping) and "suspend_timeout_seconds" in data and data["suspend_timeout_seconds"] is None:
            raise _invalid("must be int, got NoneType", ".suspend_timeout_seconds")
        return data

    @model_validator(mode="after")
    def _rules(self) -> Self:
        if self.owns_project:
            # The project's owner creates it in an organization: required there, optional elsewhere.
            if "org_id" not in self.model_fields_set:
                raise _invalid("required", ".org_id")
            _not_empty_at(self.org_id, ".org_id")
        if self.org_id and not re.fullmatch(r"[a-z0-9-]{1,60}", self.org_id):
            raise _invalid(f"{self.org_id!r} is not a Neon organization id (e.g. org-cool-41)", ".org_id")
        if self.suspend_timeout_seconds is not None and 0 < self.suspend_timeout_seconds < 60:
            raise _invalid("must be -1 (never), 0 (Neon's default, 300 s) or 60..604800", ".suspend_timeout_seconds")
        if self.autoscaling_max_cu < self.autoscaling_min_cu:
            raise _invalid("must be >= database.autoscaling_min_cu", ".autoscaling_max_cu")
        if self.read_replica and not self.owns_project:
            raise _invalid("needs database.owns_project: the replica is on `main`, which the production stack "
                           "owns", ".read_replica")
        return self


def _not_empty_at(value: str, at: str) -> None:
    if not value.strip():
        raise _invalid("must not be empty", at)


class PagesConfig(_Model):
    project_name: Text
    github_owner: Text
    github_repo: Text
    domain: Text
    production_branch: Text = "main"


class EdgeConfig(_Model):
    account_id: Text
    zone_id: Text
    manage_zone: StrictBool  # default: production's
    app_host: Text
    api_host: Text
    status_host: Text = "status"
    min_tls_version: Annotated[str, _one_of("1.2", "1.3")] = "1.2"
    hsts_max_age: Annotated[StrictInt, Field(ge=86400)] = 31536000
    upload_rate_limit_per_minute: Annotated[StrictInt, Field(ge=1)] = 30
    mailjet_dkim_selector: Text = "mailjet"
    mailjet_dkim_value: Text
    dmarc_policy: Annotated[str, _one_of("none", "quarantine", "reject")] = "quarantine"
    pages: PagesConfig | None = None


class StorageConfig(_Model):
    jurisdiction: Annotated[str, _one_of("eu", "default", "fedramp")] = "eu"
    location_hint: Text = "weur"
    temp_expiry_days: Annotated[StrictInt, Field(ge=1)] = 1
    abort_multipart_days: Annotated[StrictInt, Field(ge=1)] = 1
    backup_retention_days: Annotated[StrictInt, Field(ge=30)] = 400
    cors_origins: tuple[StrictStr, ...] = ()


class CacheConfig(_Model):
    provider: Annotated[str, _one_of("redis-cloud")] = "redis-cloud"
    region: Text = "aws-eu-central-1"
    # The Redis Cloud plan this stack's database is on (stacks/data/plans.json redis_cloud); the
    # phase's by default. Only a plan with TLS fits production (policy fits-the-plan).
    plan: StrictStr = "paid"
    # REDIS_URL may be redis:// (no TLS): never in production; in staging only by this explicit
    # setting (Pulumi.staging.yaml says why). The app gets it as REDIS_ALLOW_PLAINTEXT.
    allow_plaintext: StrictBool = False
    # The PEM bundle of the CA that signs the database's TLS certificate (Redis Cloud console: the
    # database's Security section, "Download CA certificates"; public, not a secret). The app gets it
    # as REDIS_CA_CERT; "" trusts the image's store only.
    ca_cert: Annotated[StrictStr, AfterValidator(str.strip)] = ""

    @field_validator("plan")
    @classmethod
    def _known_plan(cls, value: str) -> str:
        from stacks import plans

        options = tuple(plans.plans_of("redis_cloud"))
        if value not in options:
            raise _invalid(f"must be one of {', '.join(options)}; got {value!r}")
        return value

    @field_validator("ca_cert")
    @classmethod
    def _pem(cls, value: str) -> str:
        if value and "-----BEGIN CERTIFICATE-----" not in value:
            raise _invalid("must be PEM certificates (-----BEGIN CERTIFICATE-----)")
        return value


class MonitoringConfig(_Model):
    # Default: the environment's, at least the phase's plan's minimum.
    check_frequency_seconds: Annotated[StrictInt, Field(ge=30)]
    regions: tuple[Annotated[str, _one_of(*MONITORING_REGIONS, say_got=False)], ...] = ("eu",)
    status_page_company: Text = "AutoEnroll"
    logs_ingest_host: Text
    heartbeat_period_seconds: Annotated[StrictInt, Field(ge=30)] = 86400
    heartbeat_grace_seconds: Annotated[StrictInt, Field(ge=0)] = 7200


class CostConfig(_Model):
    """Usage volumes the cost estimate can't read from resources."""

    r2_storage_gb: Annotated[StrictFloat, Field(ge=0)] = 5.0
    r2_class_a_millions: Annotated[StrictFloat, Field(ge=0)] = 0.2
    r2_class_b_millions: Annotated[StrictFloat, Field(ge=0)] = 2.0
    # CU-hours of the stack's read-write compute (`main` in production, the stack's branch elsewhere).
    neon_compute_hours: Annotated[StrictFloat, Field(ge=0)]  # default: the environment's and the plan's
    # CU-hours of the read replica (database.read_replica), a compute of its own that Neon bills apart
    # (neon.com/docs/introduction/plans: "Each read replica is its own compute and contributes to
    # CU-hours"). None: REPLICA_CU_HOURS when database.read_replica is on, 0 when it is off.
    neon_replica_compute_hours: Annotated[StrictFloat | None, Field(ge=0)] = None
    # Logical data size of the project's root branch, GB-months. Pre-revenue the app's tables (a few
    # employers' enrolment runs) are far below a gigabyte; 0.3 leaves room under Free's 0.5 GB/project.
    neon_storage_gb: Annotated[StrictFloat, Field(ge=0)] = 0.3


# The replica serves the dashboards' lag-tolerant reads and scales to zero 5 minutes after the last one
# (stacks/database.py: 300 s where the plan lets us set it, Free's fixed 5 min elsewhere): at its minimum
# 0.25 CU, ~4 h awake a working day (reading plus each 5-minute tail) x 22 working days = 88 h = 22 CU-hours.
REPLICA_CU_HOURS = 22.0


class StackNames(BaseModel):
    """What every component needs to name, label and protect its resources: the stack's identity,
    without any section (a component's args carry this and their own section only)."""

    model_config = ConfigDict(frozen=True)

    environment: str
    domain: str
    phase: str

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def protect(self) -> bool:
        """Data-bearing resources are protected from deletion in production."""
        return self.is_production

    @property
    def labels(self) -> dict[str, str]:
        # The phase is a label too: the fits-the-plan policy (also run by CrossGuard, which sees only
        # resources) reads the phase's plans from it.
        return {"app": APP, "environment": self.environment, "phase": self.phase, "managed-by": "pulumi"}

    def fqdn(self, host: str) -> str:
        return f"{host}.{self.domain}"


class StackConfig(_Model):
    environment: Annotated[str, _one_of(*ENVIRONMENTS)]
    phase: Annotated[str, _one_of(*PHASES)] = "pre-revenue"
    compute: ComputeConfig
    database: DatabaseConfig
    edge: EdgeConfig
    storage: StorageConfig
    cache: CacheConfig
    monitoring: MonitoringConfig
    cost: CostConfig
    domain: Text

    @model_validator(mode="after")
    def _replica_hours_need_a_replica(self) -> Self:
        hours = self.cost.neon_replica_compute_hours
        if hours and not self.database.read_replica:
            raise _invalid(f"is {hours:g} but database.read_replica is off: there is no replica to run",
                           "cost.neon_replica_compute_hours")
        return self

    @property
    def replica_cu_hours(self) -> float:
        """The read replica's CU-hours a month: the explicit figure, REPLICA_CU_HOURS, or 0 without one."""
        if not self.database.read_replica:
            return 0.0
        explicit = self.cost.neon_replica_compute_hours
        return REPLICA_CU_HOURS if explicit is None else explicit

    @property
    def names(self) -> StackNames:
        """The stack's identity, all a component gets besides its own section."""
        return StackNames(environment=self.environment, domain=self.domain, phase=self.phase)

    # The whole-stack readers (plan, policies, cost, procurement) keep these; each is the names' own.
    @property
    def labels(self) -> dict[str, str]:
        return self.names.labels

    @property
    def is_production(self) -> bool:
        return self.names.is_production

    @property
    def protect(self) -> bool:
        return self.names.protect

    def fqdn(self, host: str) -> str:
        return self.names.fqdn(host)


class _Head(BaseModel):
    """The two top-level keys the other defaults depend on, read first."""

    model_config = ConfigDict(extra="ignore")

    environment: Annotated[str, _one_of(*ENVIRONMENTS)]
    phase: Annotated[str, _one_of(*PHASES)] = "pre-revenue"


def _context_defaults(environment: str, phase: str) -> dict[Any, dict[str, Any]]:
    """The defaults that follow the environment or the phase's plans (stacks/data/plans.json), per model."""
    from stacks import plans

    production = environment == "production"
    # Neon: the seed's 7 days of history where the plan has them (Free keeps 6 hours), production never
    # suspended where the plan allows it (-1; 0 would mean Neon's default of 300 s), `main` protected
    # where the plan has protected branches. An explicit value outside the plan fails the fits-the-plan policy.
    neon_history = int(plans.limit(phase, "neon", "max_history_seconds").value)
    never_suspend = bool(plans.limit(phase, "neon", "can_disable_suspend").value)
    can_set_suspend = bool(plans.limit(phase, "neon", "can_set_suspend_timeout").value)
    database: dict[str, Any] = {
        "owns_project": production,
        "history_retention_seconds": min(7 * 86400, neon_history),
        "protect_main": int(plans.limit(phase, "neon", "protected_branches").value) > 0,
        # null: the plan states no limit; 0 would mean it has none.
        "read_replica": production and plans.limit(phase, "neon", "read_replicas").value != 0,
    }
    if can_set_suspend:
        database["suspend_timeout_seconds"] = -1 if production and never_suspend else 300
    min_check = int(plans.limit(phase, "betterstack", "min_check_frequency_seconds").value)
    return {
        # Sections that may be left out entirely.
        StackConfig: {"storage": {}, "cache": {}, "monitoring": {}, "cost": {}},
        ComputeConfig: {"standby": production, "owns_ssh_keys": production, "backups": production},
        DatabaseConfig: database,
        EdgeConfig: {"manage_zone": production},
        CacheConfig: {"plan": plans.plan_of(phase, "redis_cloud")},
        MonitoringConfig: {"check_frequency_seconds": max(60 if production else 180, min_check)},
        CostConfig: {"neon_compute_hours": _main_cu_hours(production, never_suspend)},
    }


def _main_cu_hours(production: bool, never_suspend: bool) -> float:
    """CU-hours a month of the stack's read-write compute, by what keeps it awake.

    Production on a plan that can disable scale to zero sets suspend -1 (above): always on, at least
    0.25 CU x 730 h = ~183 CU-hours, 190 with some autoscaling. Where it cannot (Free: 5 min, fixed),
    nothing in the stack queries it between users' requests: the BetterStack monitors and Caddy's
    upstream check ask `/health`, which does no I/O (app/autoenroll/main.py), the pool's idle connection
    runs no query (Neon suspends after 5 min without an active query), and the only probe that queries
    (`/ready`) is asked by a load balancer, which stacks/cost.py counts as always on when one is planned.
    So it is awake while used: ~10 h a working day (office hours plus 5-minute tails) x 22 days plus the
    nightly backup's ~0.5 h x 30 = 235 h at 0.25 CU = ~60 CU-hours. Staging's branch: the same ~60."""
    return 190.0 if production and never_suspend else 60.0


# --------------------------------------------------------------------------- the parser


def parse_config(raw: Mapping[str, Any], stack: str, *, refuse_placeholders: bool = False) -> StackConfig:
    """Validate the stack's `autoenroll:*` config (keys without the namespace) into a StackConfig.

    `refuse_placeholders` is what the real program (`load`, run by every pulumi preview/up) passes:
    the committed stack files hold example values (stacks.prerequisites.placeholders) that build hosts
    nobody can log in to. The offline plan and the tests read the committed files as they are and
    leave it off (`ops plan` warns, `ops doctor` lists them)."""
    if stack not in ENVIRONMENTS:
        raise StackConfigError(f"stack: must be one of {', '.join(ENVIRONMENTS)}; got {stack!r}")
    head = _validate(_Head, raw, {})
    if head.environment != stack:
        raise StackConfigError(f"environment: is {head.environment!r} but the stack is {stack!r}")
    config = _validate(StackConfig, raw, _context_defaults(head.environment, head.phase))
    if config.cache.allow_plaintext and config.is_production:
        raise StackConfigError("cache.allow_plaintext: not allowed in production (sessions and the token "
                               "blacklist must reach Redis over TLS: rediss://)")
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
