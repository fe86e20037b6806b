"""`Environment`: everything a use-case needs to know about where it acts, resolved once.

- `local`: read from the sandbox's state file (ops.sandbox.state.environment turns it into one).
- `development` / `staging` / `production`: the stack's outputs (a JSON file named by
  `OPS_STACK_OUTPUTS`, or `pulumi stack output --json --show-secrets` when the Pulumi CLI is
  present) plus credentials from environment variables. The outputs' shape is documented
  in docs/stack-outputs.md and produced by stacks/__main__.py.

No use-case hard-codes an id, a hostname or a bucket name: they all come from here. This module
is the model and its loaders only; `--env NAME` becomes an Environment through ops.wiring.resolve,
the one way in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from autoenroll.contract import APP_DATABASE_ROLE, BRANCH_OF_ENV, DATABASE_NAME, OWNER_DATABASE_ROLE
from ops.errors import ConfigError, NotFoundError

EnvName = Literal["local", "development", "staging", "production"]
ENV_NAMES: tuple[str, ...] = ("local", "development", "staging", "production")


class ObjectStorage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoint_url: str | None
    region: str
    # None until a command that touches storage needs them (the adapter then names the variable):
    # a read-only diagnostic such as `ops health` or `ops env show` needs no R2 keys.
    access_key_id: SecretStr | None
    secret_access_key: SecretStr | None
    buckets: dict[str, str]
    credential_variables: tuple[str, str] = ("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY")


class AppHost(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    role: Literal["primary", "standby"]
    url: str  # where the app answers on that host (sandbox: the process; Hetzner: via its private IP)
    address: str | None = None  # public IPv4 of a real server (SSH, DNS records)
    private_ip: str | None = None


class DnsRecords(BaseModel):
    """The Cloudflare zone and the ids of the records `ops` moves (app and api point at the same host)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    zone_id: str
    app_record_name: str
    record_ids: dict[str, str]  # app, api, and the stack's other records

    def switched(self) -> dict[str, str]:
        """The records that follow the serving host at a failover: app and api."""
        missing = [k for k in ("app", "api") if k not in self.record_ids]
        if missing:
            raise ConfigError(f"stack outputs: dns.records has no {' or '.join(missing)} record id")
        return {k: self.record_ids[k] for k in ("app", "api")}


class NeonIds(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    project_id: str
    branch_ids: dict[str, str]  # branch name -> Neon branch id


class StripeWebhook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoint_id: str | None  # None in the sandbox: it has no Stripe account
    secret: SecretStr  # the app's STRIPE_WEBHOOK_SECRET


class OriginTls(BaseModel):
    """The hosts' Cloudflare Origin CA certificate and its key (stack output `origin_tls`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    certificate: str
    private_key: SecretStr

    def pem(self) -> str:
        """Certificate then key, what the deploy script's `tls` verb reads on stdin."""
        cert = self.certificate if self.certificate.endswith("\n") else self.certificate + "\n"
        return cert + self.private_key.get_secret_value()


class RegistryLogin(BaseModel):
    """How the hosts log in to the image registry: a read-only token (stack output `registry_login`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    username: str
    token: SecretStr  # for the registry the hosts' image names (the deploy script derives it)


class Environment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: EnvName
    branch: str
    database_urls: dict[str, SecretStr]  # branch -> owner connection URL (ops work: dump, restore, mask)
    app_database_url: SecretStr | None
    redis_url: SecretStr | None
    storage: ObjectStorage
    app_hosts: tuple[AppHost, ...]
    public_url: str
    caddy_admin_url: str | None = None
    heartbeat_url: SecretStr | None = None
    backup_recipient: str | None = None  # age public key backups are encrypted to
    backup_identity_file: str | None = None  # age private key file, for verify and restore
    scratch_database_url: SecretStr | None = None  # a server where `backup verify` may create scratch databases
    masking_key: SecretStr | None = None  # key of the deterministic masking in branch refreshes
    stripe_webhook: StripeWebhook | None = None
    dns: DnsRecords | None = None
    neon: NeonIds | None = None
    monitor_ids: dict[str, str] = {}
    load_balancer_ipv4: str | None = None
    load_balancer_id: str | None = None  # replicas > 1: the Hetzner load balancer whose targets a deploy rotates
    firewall_id: str | None = None  # the Hetzner firewall CI opens SSH on for one deploy
    app_env: dict[str, SecretStr] = {}  # the app's secret environment, written to each host's env file by deploys
    origin_tls: OriginTls | None = None  # written to each host's Caddy by deploys
    registry_login: RegistryLogin | None = None  # each host's `docker login`, done by deploys before a pull
    logs_token: SecretStr | None = None  # Vector's BetterStack token, written to each host by deploys
    database_name: str = DATABASE_NAME
    owner_role: str = OWNER_DATABASE_ROLE
    app_role: str = APP_DATABASE_ROLE

    @property
    def is_production(self) -> bool:
        return self.name == "production"

    def database_url(self, branch: str | None = None) -> str:
        """Owner URL of `branch` (default: this environment's own branch)."""
        wanted = branch or self.branch
        if wanted not in self.database_urls:
            raise NotFoundError(f"environment {self.name}: no database for branch {wanted!r}",
                                hint=f"known branches: {', '.join(sorted(self.database_urls))}")
        return self.database_urls[wanted].get_secret_value()

    def public_view(self) -> dict[str, Any]:
        """The environment without secrets, for `ops env show` (which adds what wiring picks for it:
        the traffic switch)."""
        return {
            "name": self.name,
            "branch": self.branch,
            "branches": sorted(self.database_urls),
            "public_url": self.public_url,
            "buckets": self.storage.buckets,
            "storage_endpoint": self.storage.endpoint_url,
            "app_hosts": [h.model_dump() for h in self.app_hosts],
            "heartbeat": self.heartbeat_url is not None,
        }


def read_outputs(name: str) -> dict[str, Any]:
    """The stack's outputs: the file named by OPS_STACK_OUTPUTS[_<ENV>], else the Pulumi CLI."""
    path = os.environ.get(f"OPS_STACK_OUTPUTS_{name.upper()}") or os.environ.get("OPS_STACK_OUTPUTS")
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise NotFoundError(f"OPS_STACK_OUTPUTS: {path} does not exist",
                                hint=f"write it with: pulumi stack output --json --show-secrets --stack {name} > {path}"
                                ) from None
        except IsADirectoryError:
            raise ConfigError(f"OPS_STACK_OUTPUTS: {path} is a folder, not a file",
                              hint="point it at the JSON file `pulumi stack output --json --show-secrets` wrote"
                              ) from None
        except (PermissionError, UnicodeDecodeError) as exc:
            raise ConfigError(f"OPS_STACK_OUTPUTS: {path} can't be read ({exc.__class__.__name__})") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"OPS_STACK_OUTPUTS: {path} is not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"OPS_STACK_OUTPUTS: {path} must hold a JSON object")
        return data
    if shutil.which("pulumi"):
        out = subprocess.run(["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", name],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0:
            try:
                parsed = json.loads(out.stdout)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"pulumi stack output --stack {name}: not JSON ({exc.msg})") from None
            if not isinstance(parsed, dict):
                raise ConfigError(f"pulumi stack output --stack {name}: not a JSON object")
            return parsed
        raise ConfigError(f"pulumi stack output --stack {name} failed: {out.stderr.strip()[:200]}")
    raise ConfigError(
        f"environment {name}: no stack outputs",
        hint="set OPS_STACK_OUTPUTS to a file holding `pulumi stack output --json --show-secrets`",
    )


def _optional_secret(var: str) -> SecretStr | None:
    value = os.environ.get(var, "")
    return SecretStr(value) if value else None


class _ConnectionStrings(BaseModel):
    direct: str
    pooled: str | None = None


class _Server(BaseModel):
    name: str
    ipv4: str
    role: Literal["primary", "standby"] = "primary"
    private_ip: str | None = None


class _OutputsShape(BaseModel):
    """The shape of the outputs `from_outputs` reads (others pass through), so errors name the key path."""

    model_config = ConfigDict(extra="allow")
    connection_strings: dict[str, _ConnectionStrings]
    r2_endpoint: str
    buckets: dict[str, str]
    public_url: str
    servers: list[_Server] = []
    heartbeat_url: str | None = None
    origin_tls: OriginTls | None = None
    registry_login: RegistryLogin | None = None


def _path_of(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".")


def check_outputs_shape(name: str, outputs: dict[str, Any]) -> None:
    """Raise ConfigError naming the first wrongly shaped or missing key, e.g. `servers[0].ipv4`."""
    try:
        _OutputsShape.model_validate(outputs)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _path_of(tuple(first["loc"]))
        if first["type"] == "missing":
            raise ConfigError(f"stack outputs for {name}: missing key {where!r}") from None
        raise ConfigError(f"stack outputs for {name}: {where}: {first['msg'].lower()}") from None


def from_outputs(name: EnvName, outputs: dict[str, Any]) -> Environment:
    """Build a cloud Environment from stack outputs; errors name the missing output key.

    The outputs name their stack: a production file handed to `--env staging` is refused
    (exit 2) rather than deploying to production's hosts without production's safeguards.
    """
    check_outputs_shape(name, outputs)
    carried = outputs.get("environment")
    if carried != name:
        raise ConfigError(f"stack outputs are for environment {carried!r}, not --env {name}",
                          hint="point OPS_STACK_OUTPUTS at this environment's `pulumi stack output --json` file")
    try:
        conn = outputs["connection_strings"]
        branch = BRANCH_OF_ENV[name]
        database_urls = {b: SecretStr(v["direct"]) for b, v in conn.items()}
        app_url = conn.get(branch, {}).get("pooled")
        servers = outputs.get("servers", [])
        hosts = tuple(
            AppHost(name=s["name"], role=s.get("role", "primary"),
                    url=f"http://{s.get('private_ip') or s['ipv4']}:8000", address=s.get("ipv4"),
                    private_ip=s.get("private_ip"))
            for s in servers
        )
        storage = ObjectStorage(
            endpoint_url=outputs["r2_endpoint"], region="auto",
            access_key_id=_optional_secret("R2_ACCESS_KEY_ID"),
            secret_access_key=_optional_secret("R2_SECRET_ACCESS_KEY"),
            buckets=dict(outputs["buckets"]),
        )
        heartbeat = outputs.get("heartbeat_url")
        stripe = outputs.get("stripe_webhook")
        dns = outputs.get("dns")
        project = outputs.get("neon_project_id")
        return Environment(
            name=name, branch=branch, database_urls=database_urls,
            app_database_url=SecretStr(app_url) if app_url else None,
            redis_url=SecretStr(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None,
            storage=storage, app_hosts=hosts, public_url=outputs["public_url"],
            heartbeat_url=SecretStr(heartbeat) if heartbeat else None,
            backup_recipient=os.environ.get("BACKUP_AGE_RECIPIENT") or None,
            backup_identity_file=os.environ.get("BACKUP_AGE_IDENTITY_FILE") or None,
            scratch_database_url=(SecretStr(os.environ["OPS_SCRATCH_DATABASE_URL"])
                                  if os.environ.get("OPS_SCRATCH_DATABASE_URL") else None),
            masking_key=SecretStr(os.environ["MASKING_KEY"]) if os.environ.get("MASKING_KEY") else None,
            stripe_webhook=StripeWebhook(endpoint_id=stripe["endpoint_id"], secret=SecretStr(stripe["secret"]))
            if stripe else None,
            dns=DnsRecords(zone_id=dns["zone_id"], app_record_name=dns["app_record_name"],
                           record_ids=dict(dns.get("records") or {})) if dns else None,
            neon=NeonIds(project_id=str(project), branch_ids={b: str(v["id"]) for b, v in
                                                              (outputs.get("neon_branches") or {}).items()})
            if project else None,
            monitor_ids={str(k): str(v) for k, v in (outputs.get("monitor_ids") or {}).items()},
            load_balancer_ipv4=outputs.get("load_balancer_ipv4"),
            load_balancer_id=str(outputs["load_balancer_id"]) if outputs.get("load_balancer_id") is not None else None,
            firewall_id=str(outputs["firewall_id"]) if outputs.get("firewall_id") is not None else None,
            app_env={str(k): SecretStr(str(v)) for k, v in (outputs.get("app_env") or {}).items()},
            origin_tls=OriginTls.model_validate(outputs["origin_tls"]) if outputs.get("origin_tls") else None,
            registry_login=(RegistryLogin.model_validate(outputs["registry_login"])
                            if outputs.get("registry_login") else None),
            logs_token=(SecretStr(str(outputs["betterstack_logs_token"]))
                        if outputs.get("betterstack_logs_token") else None),
        )
    except KeyError as exc:
        raise ConfigError(f"stack outputs for {name}: missing key {exc.args[0]!r}") from None
    except (ValidationError, TypeError, AttributeError) as exc:
        raise ConfigError(f"stack outputs for {name}: malformed ({exc.__class__.__name__})") from None
